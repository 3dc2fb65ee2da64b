# Two commands do everything on a fresh machine: `make run` and `make test`.
UV := $(shell ./scripts/ensure-uv.sh)
RUN := $(UV) run --frozen

.PHONY: run test lint sync bench bench-smoke bench-metadata bench-zip bench-share soak browser quota-repro

sync:
	$(UV) sync --frozen

# Quiet: every line `make run` prints is a JSON log line (make's echo and uv's summary are not).
run:
	@$(UV) sync --frozen --quiet
	@$(RUN) python -m scripts.run

test: sync browser
	$(RUN) pytest

# What the browser test needs (Debian's chromium, the built Uppy example), installed if missing.
browser:
	./scripts/ensure-browser.sh

lint: sync
	$(RUN) ruff check .
	$(RUN) ruff format --check .
	$(RUN) mypy

# The benchmark against the stack of `make run` (started if not running); QUICK=1 for a smoke run,
# UPDATE=1 to rewrite the committed bench/results/latest.json (else the results go to /tmp).
bench: sync
	QUICK=$(QUICK) UPDATE=$(UPDATE) $(RUN) python -m bench.run

bench-smoke: sync
	$(RUN) pytest -p no:cacheprovider -o testpaths=bench bench/test_smoke.py

# The integrity soak: its own stack under mixed load and faults, then every invariant and a JSON
# report; non-zero on any violation. QUICK=1 (CI) takes under 3 minutes, the full run 10 of load.
soak: sync
	QUICK=$(QUICK) $(RUN) python -m soak.run

# The audit's quota repros (issue 17) against a stack of their own with a 1 MiB quota.
quota-repro: sync
	$(RUN) python -m bench.quota_repro

# Metadata at scale (issue 19): folder views, listing, search, moves and deletes at 10^4-10^6
# files, on a database and an API of its own (no storage needed); QUICK=1: 10^3 and 10^4 files.
bench-metadata: sync
	QUICK=$(QUICK) $(RUN) python -m bench.metadata

# A folder zip against proxied downloads of the same bytes (issue 21): MB/s and the API's peak
# RSS, against the stack of `make run` (started if not running); FILES= and MIB= per file.
bench-zip: sync
	$(RUN) python -m bench.folder_zip --files $(or $(FILES),5) --mib $(or $(MIB),1024)

# A share link's download redirect against the owner's, side by side (issue 21).
bench-share: sync
	$(RUN) python -m bench.share_redirects
