from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from api.deps import CurrentUser, QueueDep, SettingsDep, StorageDep
from api.health import service
from api.health.schemas import Ping
from domain.errors import Unauthorized, responses

router = APIRouter(tags=["health"])


@router.get(
    "/files/ping",
    response_model=Ping,
    responses={
        503: {"model": Ping, "description": "A service is down (its value is null)."},
        **responses(Unauthorized),
    },
)
async def ping(
    request: Request, _: CurrentUser, redis: QueueDep, storage: StorageDep, settings: SettingsDep
) -> JSONResponse:
    """Latency of PostgreSQL, Redis and S3 in milliseconds; 503 names the dead one with null."""
    result = await service.ping(
        request.app.state.engine, redis, storage, settings.observability.ping_timeout_seconds
    )
    status = 503 if any(value is None for value in result.values()) else 200
    return JSONResponse(result, status_code=status)


liveness_router = APIRouter()


@liveness_router.get("/healthz", tags=["health"])
async def healthz() -> dict[str, str]:
    """Liveness for orchestrators: the process answers (no dependencies checked, no auth)."""
    return {"status": "ok"}
