"""One error family: every failure the API reports is an ``AppError`` with a stable code."""

import logging
from collections.abc import Sequence
from typing import Any, ClassVar

import asyncpg
from botocore.exceptions import BotoCoreError, ClientError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from redis.exceptions import RedisError
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from api.transient import Backend, classify

log = logging.getLogger(__name__)


class ErrorBody(BaseModel):
    error: str
    detail: str


class AppError(Exception):
    status_code: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"
    default_detail: ClassVar[str] = "The request is not valid."

    def __init__(self, detail: str | None = None, headers: dict[str, str] | None = None) -> None:
        self.detail = detail or self.default_detail
        self.headers = headers
        super().__init__(self.detail)


class InvalidPath(AppError):
    code = "invalid_path"
    default_detail = "The path is not valid."


class InvalidCursor(AppError):
    code = "invalid_cursor"
    default_detail = "The cursor is not valid."


class MissingPart(AppError):
    code = "missing_part"
    default_detail = "The multipart body has no 'file' part."


class EmptyFile(AppError):
    code = "empty_file"
    default_detail = "The uploaded file is empty."


class MalformedBody(AppError):
    code = "malformed_body"
    default_detail = "The request body could not be parsed."


class MalformedJson(AppError):
    code = "malformed_json"
    default_detail = "The body is not valid JSON."


class ValidationFailed(AppError):
    status_code = 422
    code = "validation_error"
    default_detail = "The request is not valid."


class Unauthorized(AppError):
    status_code = 401
    code = "not_authenticated"
    default_detail = "Missing or invalid bearer token."

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": "Bearer"})


class InvalidCredentials(Unauthorized):
    code = "invalid_credentials"
    default_detail = "Wrong login or password."


class NotFound(AppError):
    status_code = 404
    code = "not_found"
    default_detail = "Not found."


class FileNotFound(NotFound):
    code = "file_not_found"
    default_detail = "No such file."


class UploadNotFound(NotFound):
    code = "upload_not_found"
    default_detail = "No such upload."


class Conflict(AppError):
    status_code = 409
    code = "conflict"


class LoginTaken(Conflict):
    code = "login_taken"
    default_detail = "This login is already registered."


class UploadClosed(Conflict):
    code = "upload_closed"
    default_detail = "The upload was rejected or has expired."


class LengthRequired(AppError):
    status_code = 411
    code = "length_required"
    default_detail = "Send Content-Length or a chunked body."


class PayloadTooLarge(AppError):
    status_code = 413
    code = "payload_too_large"
    default_detail = "The file is larger than the upload limit."


class QuotaExceeded(PayloadTooLarge):
    code = "quota_exceeded"
    default_detail = "The file does not fit in the remaining quota."


class RangeNotSatisfiable(AppError):
    status_code = 416
    code = "range_not_satisfiable"
    default_detail = "The requested range is not satisfiable."


class TooManyAttempts(AppError):
    status_code = 429
    code = "too_many_attempts"
    default_detail = "Too many failed attempts; retry later."

    def __init__(self, retry_after: int) -> None:
        super().__init__(headers={"Retry-After": str(max(retry_after, 1))})


class ServiceUnavailable(AppError):
    status_code = 503
    code = "service_unavailable"
    default_detail = "A backing service is unavailable."


class QueueUnavailable(ServiceUnavailable):
    code = "queue_unavailable"
    default_detail = "The job queue is unreachable; retry later."


def responses(*errors: type[AppError]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` for a route: every error it can answer, by status code."""
    by_status: dict[int, list[str]] = {}
    for error in errors:
        by_status.setdefault(error.status_code, []).append(error.code)
    return {
        status: {"model": ErrorBody, "description": "Error codes: " + ", ".join(sorted(codes))}
        for status, codes in by_status.items()
    }


def _body(code: str, detail: str) -> dict[str, str]:
    return {"error": code, "detail": detail}


def error_response(error: AppError) -> JSONResponse:
    """The error's response, for a route that must answer with it and still commit."""
    return JSONResponse(_body(error.code, error.detail), error.status_code, headers=error.headers)


async def _app_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AppError)
    return error_response(exc)


def describe_validation(errors: Sequence[Any]) -> str:
    return "; ".join(_describe(error) for error in errors) or "Invalid request."


def _describe(error: dict[str, Any]) -> str:
    where = ".".join(str(part) for part in error.get("loc", ()) if part != "body")
    return f"{where}: {error.get('msg', 'invalid')}" if where else str(error.get("msg", "invalid"))


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    if any(error.get("type") == "json_invalid" for error in errors):
        return JSONResponse(_body(MalformedJson.code, MalformedJson.default_detail), 400)
    return JSONResponse(_body("validation_error", describe_validation(errors)), 422)


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    return JSONResponse(_body(code, str(exc.detail)), exc.status_code, headers=exc.headers)


_UNAVAILABLE = {
    Backend.database: ("database_unavailable", "The database is unavailable or busy"),
    Backend.storage: ("storage_unavailable", "Object storage is unavailable"),
    Backend.redis: ("service_unavailable", "A backing service is unavailable"),
    Backend.network: ("service_unavailable", "A backing service is unavailable"),
}


async def _client_gone(request: Request, _: Exception) -> JSONResponse:
    """The client hung up mid-body; whatever it started has been cleaned up by then."""
    log.info("client disconnected", extra={"path": request.url.path})
    return JSONResponse(_body("client_disconnected", "The request body was cut short."), 400)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    backend = classify(exc)
    if backend is not None:
        code, what = _UNAVAILABLE[backend]
        log.error("backing service unavailable", extra={"error": repr(exc), "code": code})
        return JSONResponse(_body(code, f"{what}; retry later."), 503, headers={"Retry-After": "1"})
    log.exception("unhandled error", extra={"path": request.url.path})
    return JSONResponse(_body("internal_error", "Internal server error."), 500)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AppError, _app_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(ClientDisconnect, _client_gone)
    # Outages get handlers of their own: a handler for ``Exception`` answers, then re-raises.
    outages = (DBAPIError, PoolTimeout, asyncpg.PostgresError, asyncpg.InterfaceError, RedisError)
    for outage in (*outages, BotoCoreError, ClientError, OSError, TimeoutError):
        app.add_exception_handler(outage, _unexpected)
    app.add_exception_handler(Exception, _unexpected)


def document_error_bodies(app: FastAPI) -> None:
    """Make the OpenAPI document describe the 422 bodies this API really sends.

    FastAPI declares its own ``HTTPValidationError`` (a list of details) for every 422; the
    handler above answers ``{"error", "detail"}`` like every other error.
    """

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components["ErrorBody"] = ErrorBody.model_json_schema()
        components.pop("HTTPValidationError", None)
        components.pop("ValidationError", None)
        error_ref = {"$ref": "#/components/schemas/ErrorBody"}
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                invalid = operation.get("responses", {}).get("422")
                if invalid is not None:
                    invalid["content"] = {"application/json": {"schema": error_ref}}
                    invalid["description"] = "Error codes: validation_error"
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
