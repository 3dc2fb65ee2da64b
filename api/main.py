"""The FastAPI application: clients open in the lifespan and close on shutdown."""

import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import APIRouter, FastAPI

from api import prometheus as metrics_http
from api.browser_security import SecurityHeadersMiddleware
from api.cors import install_cors
from api.deadlines import BodyDeadlineMiddleware
from api.error_handlers import install_error_handlers
from api.files.router import router as files_router
from api.folders.router import router as folders_router
from api.head import HeadMiddleware
from api.health.readiness import router as readiness_router
from api.health.router import liveness_router
from api.health.router import router as health_router
from api.limits import BodyLimitMiddleware
from api.openapi import document_error_bodies
from api.pages import install_pages
from api.request_context import RequestContextMiddleware
from api.shares.public import NoStoreMiddleware
from api.shares.public import router as public_shares_router
from api.shares.router import router as shares_router
from api.shares.uploads import router as share_uploads_router
from api.storage_events.router import router as storage_events_router
from api.trash.router import router as trash_router
from api.uploads.router import router as uploads_router
from api.users.router import router as users_router
from domain.shares.tally import running_tally
from domain.uploads.slots import UploadSlots
from domain.users.security import TokenReader
from infra.cache import Cache
from infra.config import Settings, get_settings
from infra.db import open_database
from infra.logging import configure_logging
from infra.redis import create_redis
from infra.storage.adapter import open_storage

log = logging.getLogger(__name__)

API_PREFIX = "/api/v1"


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings.observability.log_level)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine, database = open_database(settings)
        redis = create_redis(settings)
        async with open_storage(settings) as storage:
            app.state.settings = settings
            app.state.engine = engine
            app.state.database = database
            app.state.sessionmaker = database.sessionmaker
            app.state.redis = redis
            app.state.cache = Cache(
                redis, settings.redis.cache_ttl_seconds, settings.redis.cache_memory_bytes
            )
            app.state.storage = storage
            app.state.tokens = TokenReader(settings)
            app.state.upload_slots = UploadSlots(redis, settings)
            log.info("api started", extra={"environment": settings.environment})
            try:
                interval = settings.shares.count_flush_seconds
                async with running_tally(database, interval) as app.state.download_tally:
                    yield
            finally:
                await redis.aclose()
                await engine.dispose()
                log.info("api stopped")

    app = FastAPI(
        title="filestore",
        version="0.1.0",
        description="Authenticates users, signs S3 URLs and keeps file metadata.",
        lifespan=lifespan,
        # Not persisted: Swagger UI would keep the token in this origin's localStorage.
        swagger_ui_parameters={"persistAuthorization": False},
        docs_url=None,  # served from the project's own copy by api.pages (no CDN)
        redoc_url=None,
    )
    install_error_handlers(app)
    document_error_bodies(app)
    app.add_middleware(HeadMiddleware)  # innermost: everything outside sees the HEAD
    app.add_middleware(
        BodyLimitMiddleware,
        limit=settings.requests.max_request_body_bytes,
        streaming_paths=frozenset({f"{API_PREFIX}/files/upload"}),
    )
    app.add_middleware(
        BodyDeadlineMiddleware,
        idle_seconds=settings.requests.request_body_idle_seconds,
        min_rate_bytes=settings.requests.request_body_min_rate_bytes,
        window_seconds=settings.requests.request_body_rate_window_seconds,
    )
    install_cors(app, settings)  # inside the request context: preflights get an id too
    app.add_middleware(NoStoreMiddleware)  # share links' answers, errors included
    app.add_middleware(SecurityHeadersMiddleware)  # preflights and errors carry them too
    app.add_middleware(RequestContextMiddleware)
    metrics_http.install(app, settings)
    _include_routes(app)
    install_pages(app, settings)
    return app


def _include_routes(app: FastAPI) -> None:
    v1 = APIRouter(prefix=API_PREFIX)
    v1.include_router(users_router)
    v1.include_router(health_router)
    v1.include_router(files_router)
    v1.include_router(folders_router)
    v1.include_router(trash_router)
    v1.include_router(shares_router)
    v1.include_router(uploads_router)
    v1.include_router(storage_events_router)
    app.include_router(v1)
    app.include_router(public_shares_router)
    app.include_router(share_uploads_router)
    app.include_router(liveness_router)
    app.include_router(readiness_router)


def __getattr__(name: str) -> FastAPI:
    """``uvicorn api.main:app`` builds the app on first access, never at import."""
    if name == "app":
        return create_app()
    raise AttributeError(name)
