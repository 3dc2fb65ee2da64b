# Two commands do everything on a fresh machine: `make run` and `make test`.
UV := $(shell ./scripts/ensure-uv.sh)
RUN := $(UV) run --frozen

.PHONY: run test lint sync bench

sync:
	$(UV) sync --frozen

run: sync
	$(RUN) python -m scripts.run

test: sync
	$(RUN) pytest

lint: sync
	$(RUN) ruff check .
	$(RUN) ruff format --check .
	$(RUN) mypy
