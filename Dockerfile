# syntax=docker/dockerfile:1
# One image for every filestore process: the API (default CMD), the arq worker
# (`python -m worker`), migrations (`alembic upgrade head`) and the bucket's setup and check
# (`python -m scripts.setup_storage`).

# ---- builder: resolve the locked dependencies into /app/.venv -------------------------------
FROM python:3.11-slim AS builder

# uv comes from PyPI (the only registry reachable from the build machines).
RUN pip install --no-cache-dir uv

# The venv lives at the same path in both stages: its scripts' shebangs point there.
ENV UV_PROJECT_ENVIRONMENT=/app/.venv \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=/usr/local/bin/python3.11

WORKDIR /app

# Dependencies first, so code changes do not invalidate this layer.
COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-dev --no-install-project

COPY alembic.ini ./
COPY migrations/ ./migrations/
COPY worker/ ./worker/
COPY infra/ ./infra/
COPY domain/ ./domain/
COPY api/ ./api/
# Only the storage setup from scripts/ (the rest is make run's and the tests' tooling).
COPY scripts/__init__.py scripts/setup_storage.py ./scripts/

# ---- runtime: the venv and the code, run as an unprivileged user ----------------------------
FROM python:3.11-slim AS runtime

ENV PATH="/app/.venv/bin:${PATH}" \
    VIRTUAL_ENV=/app/.venv \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    FILESTORE_RUN_HOST=0.0.0.0

RUN groupadd --system --gid 10001 filestore \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin filestore

WORKDIR /app

# Owned by root and only readable by the service user: a compromised process cannot rewrite code.
COPY --from=builder /app/.venv /app/.venv
COPY --from=builder /app/alembic.ini /app/alembic.ini
COPY --from=builder /app/migrations /app/migrations
COPY --from=builder /app/worker /app/worker
COPY --from=builder /app/api /app/api
COPY --from=builder /app/scripts /app/scripts

USER 10001:10001

EXPOSE 8080

# uvicorn with FILESTORE_API_PROCESSES processes (default: the cores), JSON logs from the first
# line (infra/log_config.json), on 0.0.0.0:8080.
CMD ["python", "-m", "api.serve"]
