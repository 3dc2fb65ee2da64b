"""Every exception the API lets out becomes an ``AppError`` answered as ``{"error", "detail"}``."""

import logging
from collections.abc import Sequence
from typing import Any

import asyncpg
from botocore.exceptions import BotoCoreError, ClientError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from redis.exceptions import RedisError
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from domain.errors import (
    AppError,
    ClientDisconnected,
    DatabaseUnavailable,
    InternalError,
    MalformedJson,
    MethodNotAllowed,
    NotFound,
    ServiceUnavailable,
    StorageUnavailable,
    ValidationFailed,
)
from infra.transient import NO_SUCH_BUCKET, Backend, classify, storage_fields

log = logging.getLogger(__name__)

UNAVAILABLE: dict[Backend, type[ServiceUnavailable]] = {
    Backend.database: DatabaseUnavailable,
    Backend.storage: StorageUnavailable,
    Backend.redis: ServiceUnavailable,
    Backend.network: ServiceUnavailable,
}


def error_body(error: AppError) -> dict[str, str]:
    return {"error": error.code, "detail": error.detail}


def error_response(error: AppError) -> JSONResponse:
    """The error's response, for a route that must answer with it and still commit."""
    return JSONResponse(error_body(error), error.status_code, headers=error.headers)


def describe_validation(errors: Sequence[Any]) -> str:
    return "; ".join(_describe(error) for error in errors) or "Invalid request."


def _describe(error: dict[str, Any]) -> str:
    where = ".".join(str(part) for part in error.get("loc", ()) if part != "body")
    return f"{where}: {error.get('msg', 'invalid')}" if where else str(error.get("msg", "invalid"))


def as_app_error(exc: Exception, request: Request) -> AppError:
    """The ``AppError`` an exception is answered with; logs what is not the client's doing."""
    if isinstance(exc, AppError):
        return exc
    if isinstance(exc, RequestValidationError):
        errors = list(exc.errors())
        if any(error.get("type") == "json_invalid" for error in errors):
            return MalformedJson()
        return ValidationFailed(describe_validation(errors))
    if isinstance(exc, StarletteHTTPException):
        if exc.status_code == 405:
            return MethodNotAllowed(str(exc.detail))
        if exc.status_code == 404:
            return NotFound(str(exc.detail))
        # What else the framework raises is a body it could not parse.
        return AppError(str(exc.detail))
    if isinstance(exc, ClientDisconnect):
        # Whatever the request had started has been cleaned up by then.
        log.info("client disconnected", extra={"path": request.url.path})
        return ClientDisconnected()
    backend = classify(exc)
    if backend is not None:
        unavailable = UNAVAILABLE[backend]()
        fields = storage_fields(exc) if backend is Backend.storage else {}
        missing_bucket = fields.get("s3_code") == NO_SUCH_BUCKET
        settings = getattr(request.app.state, "settings", None)
        if missing_bucket and settings is not None:
            fields.setdefault("bucket", settings.storage.bucket)  # storage's answer did not name it
        message = "storage bucket missing" if missing_bucket else "backing service unavailable"
        log.error(message, extra={"error": repr(exc), "code": unavailable.code, **fields})
        return unavailable
    log.exception("unhandled error", extra={"path": request.url.path})
    return InternalError()


async def _handle(request: Request, exc: Exception) -> JSONResponse:
    return error_response(as_app_error(exc, request))


def install_error_handlers(app: FastAPI) -> None:
    handled: tuple[type[Exception], ...] = (
        AppError,
        RequestValidationError,
        StarletteHTTPException,
        ClientDisconnect,
        # Outages get handlers of their own: a handler for ``Exception`` answers, then re-raises.
        DBAPIError,
        PoolTimeout,
        asyncpg.PostgresError,
        asyncpg.InterfaceError,
        RedisError,
        BotoCoreError,
        ClientError,
        OSError,
        TimeoutError,
        Exception,
    )
    for kind in handled:
        app.add_exception_handler(kind, _handle)
