"""``/readyz`` checks PostgreSQL, Redis and S3; ``/healthz`` checks nothing."""

import time
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from api.main import create_app
from infra.config import Settings
from scripts.seaweed import free_port
from tests.helpers import OwnRedis
from tests.scripts.test_compose import _config as _compose_config


async def _client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            yield http


@pytest.fixture
async def own_redis_client(
    settings: Settings, own_redis: OwnRedis
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings.with_changes(**{"redis_url": own_redis.url}))
    async for http in _client(app):
        yield http


async def test_readyz_turns_503_when_redis_dies(
    own_redis_client: httpx.AsyncClient, own_redis: OwnRedis
) -> None:
    ready = await own_redis_client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {
        "status": "ready",
        "checks": {"postgres": "ok", "redis": "ok", "s3": "ok"},
    }
    own_redis.stop()
    started = time.monotonic()
    down = await own_redis_client.get("/readyz")
    assert time.monotonic() - started < 3  # short timeouts: a probe never hangs
    assert down.status_code == 503
    assert down.json() == {
        "status": "unready",
        "checks": {"postgres": "ok", "redis": "fail", "s3": "ok"},
        "failing": ["redis"],
    }
    assert (await own_redis_client.get("/healthz")).status_code == 200  # liveness only


async def test_readyz_names_dead_storage(settings: Settings, app: FastAPI) -> None:
    dead = create_app(
        settings.with_changes(**{"s3_endpoint_url": f"http://127.0.0.1:{free_port()}"})
    )
    async for http in _client(dead):
        response = await http.get("/readyz")
        assert response.status_code == 503
        assert response.json()["failing"] == ["s3"]


def test_compose_healthchecks_use_readiness_and_the_worker_metrics() -> None:
    services = _compose_config()["services"]
    api_check = " ".join(services["api"]["healthcheck"]["test"])
    assert "/readyz" in api_check
    worker_check = " ".join(services["worker"]["healthcheck"]["test"])
    assert ":9101/metrics" in worker_check
    environment = services["worker"]["environment"]
    assert environment["FILESTORE_WORKER_METRICS_PORT"] == "9101"
    # The compose file's own settings must be valid ones (token access needs a token).
    Settings(
        **{
            key.removeprefix("FILESTORE_").lower(): value
            for key, value in environment.items()
            if key.startswith(("FILESTORE_METRICS", "FILESTORE_WORKER_METRICS"))
        }
    )
