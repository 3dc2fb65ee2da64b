"""``GET /metrics`` and the middleware that times every request.

Access (``FILESTORE_METRICS_ACCESS``): ``off`` (no route, no request timing), ``open``, or
``token`` (``Authorization: Bearer <FILESTORE_METRICS_TOKEN>``, compared in constant time).

Depths are sampled when scraped, from the one place that knows them: the arq queue's length in
Redis, the outbox's rows and the pending uploads in PostgreSQL, each bounded by a short timeout;
a source that does not answer leaves its gauge out of that scrape (and logs why).
"""

import asyncio
import hmac
import logging
import time
from collections.abc import Awaitable, Callable

from arq.constants import default_queue_name
from fastapi import APIRouter, FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from redis.asyncio import Redis
from sqlalchemy import TextClause, text
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from domain.errors import Unauthorized
from infra import metrics
from infra.config import Settings

log = logging.getLogger(__name__)

SAMPLE_TIMEOUT_SECONDS = 1.0
# Rows counted exactly: the outbox drains every few seconds, pending uploads are few (an index
# covers them), so both counts stay small.
OUTBOX_DEPTH = text("SELECT count(*) FROM object_deletions")
PENDING_UPLOADS = text("SELECT count(*) FROM uploads WHERE status = 'pending'")

router = APIRouter()


class HttpMetricsMiddleware:
    """Observes ``http_server_request_duration_seconds`` for every HTTP request, labelled with
    the matched route's template (never the raw path) or ``unmatched``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = route_template(scope)
            metrics.http_request(scope["method"], route, status, time.perf_counter() - started)


def route_template(scope: Scope) -> str:
    """The matched route's full template (``/api/v1/files/uploads/{upload_id}``), or
    ``unmatched``. FastAPI 0.165 keeps included routers nested: ``scope["route"]`` is the route
    as its own router declared it (no include prefix), and the full template is kept in its
    per-request routing context; older versions flatten routes, so the route's path is full."""
    fastapi_scope = scope.get("fastapi")
    context = (
        fastapi_scope.get("effective_route_context") if isinstance(fastapi_scope, dict) else None
    )
    template = getattr(context, "path_format", None) or getattr(scope.get("route"), "path", None)
    return template if isinstance(template, str) and template else "unmatched"


def install(app: FastAPI, settings: Settings) -> None:
    """Record metrics in this process and, unless access is off, serve and time requests."""
    metrics.configure(settings)
    if settings.observability.access != "off":
        app.add_middleware(HttpMetricsMiddleware)
        app.include_router(router)


@router.get("/metrics", include_in_schema=False)
async def scrape(request: Request) -> Response:
    """Prometheus text format: every process's metrics (multiprocess mode) and sampled depths."""
    settings: Settings = request.app.state.settings
    if settings.observability.access == "token":
        token = (
            settings.observability.token.get_secret_value() if settings.observability.token else ""
        )
        expected = f"Bearer {token}".encode()
        given = request.headers.get("authorization", "").encode()
        if not hmac.compare_digest(given, expected):
            raise Unauthorized("Missing or wrong metrics token.")
    sampled = await sample_depths(request.app.state.engine, request.app.state.redis)
    body = generate_latest(metrics.exposition_registry()) + generate_latest(sampled)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


async def sample_depths(engine: AsyncEngine, redis: Redis) -> CollectorRegistry:
    """A registry of this scrape's gauges: queue depth, outbox depth, pending uploads."""

    async def scalar(statement: TextClause) -> int:
        async with engine.connect() as connection:
            return int((await connection.execute(statement)).scalar_one())

    async def queue_depth() -> int:
        return int(await redis.zcard(default_queue_name))

    gauges: list[tuple[str, str, Callable[[], Awaitable[int]]]] = [
        ("filestore_queue_depth", "Jobs waiting in the arq queue.", queue_depth),
        (
            "filestore_outbox_depth",
            "Object deletions waiting in the outbox.",
            lambda: scalar(OUTBOX_DEPTH),
        ),
        ("filestore_uploads_pending", "Uploads open now.", lambda: scalar(PENDING_UPLOADS)),
    ]
    results = await asyncio.gather(
        *(asyncio.wait_for(probe(), SAMPLE_TIMEOUT_SECONDS) for _, _, probe in gauges),
        return_exceptions=True,
    )
    families: list[Metric] = []
    for (name, documentation, _), result in zip(gauges, results, strict=True):
        if isinstance(result, BaseException):
            log.warning("metric not sampled", extra={"metric": name, "error": repr(result)})
            continue
        families.append(GaugeMetricFamily(name, documentation, value=result))
    registry = CollectorRegistry()
    registry.register(_Sampled(families))
    return registry


class _Sampled:
    """Values read at this scrape: never written to the multiprocess files."""

    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> list[Metric]:
        return self.families
