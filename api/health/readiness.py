"""``GET /readyz``: can this process serve? PostgreSQL, Redis and S3 each answer in time.

Liveness (``/healthz``) asks only whether the process answers; an orchestrator restarts a
process that fails it. Readiness asks whether the process can do its work; one that fails it is
taken out of rotation until its dependencies come back, not restarted.
"""

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from api.health import service
from infra.config import Settings

router = APIRouter()

# service.ping's names, spelled as an operator reads them.
DEPENDENCIES = {"db": "postgres", "cache": "redis", "storage": "s3"}


@router.get("/readyz", include_in_schema=False)
async def readyz(request: Request) -> JSONResponse:
    """200 ``{"status": "ready", "checks": {...}}`` when every dependency answered within
    ``FILESTORE_READY_TIMEOUT_SECONDS``; else 503 with ``failing`` naming the ones that did not."""
    state = request.app.state
    settings: Settings = state.settings
    latencies = await service.ping(
        state.engine, state.redis, state.storage, settings.observability.ready_timeout_seconds
    )
    checks = {
        DEPENDENCIES[name]: "ok" if ms is not None else "fail" for name, ms in latencies.items()
    }
    failing = [name for name, result in checks.items() if result != "ok"]
    body: dict[str, object] = {"status": "unready" if failing else "ready", "checks": checks}
    if failing:
        body["failing"] = failing
    return JSONResponse(body, status_code=503 if failing else 200)
