"""One error family: every failure the API reports is an ``AppError`` with a stable code.

This module only defines the errors; ``api.error_handlers`` renders them (and turns every other
exception into one), ``api.openapi`` documents them.
"""

from typing import Any, ClassVar

from pydantic import BaseModel


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


class ClientDisconnected(AppError):
    code = "client_disconnected"
    default_detail = "The request body was cut short."


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


class MethodNotAllowed(AppError):
    status_code = 405
    code = "method_not_allowed"
    default_detail = "Method not allowed."


class FileNotFound(NotFound):
    code = "file_not_found"
    default_detail = "No such file."


class FolderNotFound(NotFound):
    code = "folder_not_found"
    default_detail = "No such folder."


class TrashNotFound(NotFound):
    code = "trash_not_found"
    default_detail = "No such trash entry (restored or purged already?)."


class VersionNotFound(NotFound):
    code = "version_not_found"
    default_detail = "No such version of this file."


class UploadNotFound(NotFound):
    code = "upload_not_found"
    default_detail = "No such upload."


class ShareNotFound(NotFound):
    """The same answer for a share that never existed, expired, was revoked, used up its
    downloads or lost its target: nothing tells them apart."""

    code = "share_not_found"
    default_detail = "No such share (expired, revoked or used up?)."


class ShareLocked(AppError):
    status_code = 401
    code = "share_locked"
    default_detail = "This share needs its password: POST it to /s/{token}/unlock first."


class WrongSharePassword(AppError):
    status_code = 401
    code = "wrong_share_password"
    default_detail = "Wrong password for this share."


class UploadLinkNeedsFolder(AppError):
    status_code = 422
    code = "upload_link_needs_folder"
    default_detail = "An upload link names a folder: a path ending with '/'."


class ShareUploadsThrottled(AppError):
    """An upload link took its intents of the minute (``FILESTORE_SHARE_UPLOADS_PER_MINUTE``)."""

    status_code = 429
    code = "share_uploads_throttled"
    default_detail = "This upload link has taken as many files as it may this minute; retry later."

    def __init__(self, retry_after: int) -> None:
        super().__init__(headers={"Retry-After": str(max(retry_after, 1))})


class Conflict(AppError):
    status_code = 409
    code = "conflict"


class LoginTaken(Conflict):
    code = "login_taken"
    default_detail = "This login is already registered."


class UploadClosed(Conflict):
    code = "upload_closed"
    default_detail = "The upload was rejected or has expired."


class PartsMissing(Conflict):
    code = "parts_missing"
    default_detail = "Storage does not hold every part of the upload."


class NotMultipart(Conflict):
    code = "not_multipart"
    default_detail = "This upload is a single PUT, not a multipart upload."


class UploadIdMismatch(Conflict):
    code = "upload_id_mismatch"
    default_detail = "This upload already has another multipart upload id."


class PathTaken(Conflict):
    code = "path_taken"
    default_detail = "Something else has that path."


class InvalidMove(AppError):
    code = "invalid_move"
    default_detail = "A folder cannot be moved or copied into itself."


class LengthRequired(AppError):
    status_code = 411
    code = "length_required"
    default_detail = "Send Content-Length or a chunked body."


class PayloadTooLarge(AppError):
    status_code = 413
    code = "payload_too_large"
    default_detail = "The file is larger than the upload limit."

    @classmethod
    def over(cls, limit: int) -> "PayloadTooLarge":
        return cls(f"The file is larger than the upload limit of {limit} bytes.")


class QuotaExceeded(PayloadTooLarge):
    code = "quota_exceeded"
    default_detail = "The file does not fit in the remaining quota."

    @classmethod
    def over(cls, limit: int, reserved: int = 0, freeable: str = "") -> "PayloadTooLarge":
        pending = (
            f" ({reserved} bytes more are reserved by uploads in progress)" if reserved else ""
        )
        return cls(
            f"The file does not fit in the remaining quota of {max(limit, 0)} bytes{pending}."
            + freeable
        )


class TooManyUploads(AppError):
    """Too many uploads open at once: the caller finishes, aborts or waits out some first."""

    status_code = 429
    code = "too_many_uploads"
    default_detail = "Too many uploads are open; finish or abort some first."

    def __init__(self, detail: str | None = None, retry_after: int = 1) -> None:
        super().__init__(detail, headers={"Retry-After": str(max(retry_after, 1))})


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


class InternalError(AppError):
    status_code = 500
    code = "internal_error"
    default_detail = "Internal server error."


class ServiceUnavailable(AppError):
    status_code = 503
    code = "service_unavailable"
    default_detail = "A backing service is unavailable; retry later."

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail, headers={"Retry-After": "1"})


class DatabaseUnavailable(ServiceUnavailable):
    code = "database_unavailable"
    default_detail = "The database is unavailable or busy; retry later."


class StorageUnavailable(ServiceUnavailable):
    code = "storage_unavailable"
    default_detail = "Object storage is unavailable; retry later."


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


# Answered by every route: a backing service down, or a bug.
COMMON_ERRORS: tuple[type[AppError], ...] = (
    InternalError,
    ServiceUnavailable,
    DatabaseUnavailable,
    StorageUnavailable,
)


# Request limits (issue 17): slow bodies, oversized headers, proxied uploads streaming at once
# (their per-user 429 is TooManyUploads, above, shared with the cap on open uploads).
# Kept together at the end of the module.


class RequestTimeout(AppError):
    status_code = 408
    code = "request_timeout"
    default_detail = "The request body arrived too slowly."

    def __init__(self, detail: str | None = None) -> None:
        # The rest of the body is never read, so the connection cannot carry another request.
        super().__init__(detail, headers={"Connection": "close"})


class HeadersTooLarge(AppError):
    """Answered by the HTTP protocol (``api.http_protocol``) before any route is matched."""

    status_code = 431
    code = "headers_too_large"
    default_detail = "The request line and headers are too large."


class ServerBusy(AppError):
    status_code = 503
    code = "server_busy"
    default_detail = "This server is streaming as many uploads as it can; retry later."
