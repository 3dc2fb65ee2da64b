import uuid
from email.utils import format_datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.responses import JSONResponse, RedirectResponse, StreamingResponse

from api import metrics
from api.body import read_json as _read_json
from api.deps import (
    CacheDep,
    CurrentUser,
    CurrentUserId,
    SessionDep,
    SessionmakerDep,
    SettingsDep,
    StorageDep,
    UploadSlotsDep,
)
from api.error_handlers import error_response
from api.errors import (
    EmptyFile,
    FileNotFound,
    InvalidCursor,
    InvalidPath,
    LengthRequired,
    MalformedBody,
    MalformedJson,
    MissingPart,
    PartsMissing,
    PathTaken,
    PayloadTooLarge,
    QuotaExceeded,
    RangeNotSatisfiable,
    ServerBusy,
    TooManyUploads,
    Unauthorized,
    UploadClosed,
    UploadNotFound,
    ValidationFailed,
    responses,
)
from api.files import (
    conditional,
    content,
    direct,
    multipart_routes,
    multipart_uploads,
    proxied,
    service,
)
from api.files.multipart import boundary_of, read_multipart
from api.files.schemas import (
    FileList,
    FileOut,
    PendingFile,
    StoredFile,
    UploadIntentIn,
    UploadState,
)
from api.head import is_head
from api.models import UploadStatus
from api.paths import folder_prefix, parse_reference
from api.storage import RangeRefused

router = APIRouter(prefix="/files", tags=["files"])

MULTIPART_OVERHEAD_BYTES = 64 * 1024
PathRef = Annotated[str, Query(description="A file's absolute path, or its id.", max_length=4096)]

_UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": UploadIntentIn.model_json_schema(),
                "examples": {
                    "single PUT": {
                        "summary": "A small file: one presigned PUT",
                        "value": {"path": "/docs/", "name": "report.pdf", "size": 2016},
                    },
                    "multipart": {
                        "summary": "A large file: presigned parts",
                        "value": {"path": "/big/disk.img", "size": 1073741824, "multipart": True},
                    },
                },
            },
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "path": {"type": "string", "description": "Before the file part."},
                        "file": {"type": "string", "format": "binary"},
                    },
                }
            },
        },
    }
}


@router.get(
    "",
    response_model=FileList,
    responses=responses(Unauthorized, InvalidPath, InvalidCursor, ValidationFailed),
)
async def list_files(
    user: CurrentUser,
    sessionmaker: SessionmakerDep,
    cache: CacheDep,
    path: Annotated[str | None, Query(description="Folder to list, e.g. /docs/")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(max_length=8192)] = None,
) -> Response:
    """The user's files ordered by path, a page at a time (pass ``next_cursor`` back)."""
    prefix = folder_prefix(path) if path else None
    page = await service.list_files(sessionmaker, cache, user, prefix, cursor, limit)
    return Response(page, media_type="application/json")


@router.post(
    "/upload",
    status_code=status.HTTP_201_CREATED,
    response_model=PendingFile | StoredFile,
    responses=responses(
        Unauthorized,
        InvalidPath,
        MissingPart,
        EmptyFile,
        MalformedBody,
        LengthRequired,
        PayloadTooLarge,
        QuotaExceeded,
        TooManyUploads,
        PathTaken,
        UploadClosed,
        ValidationFailed,
        TooManyUploads,
        ServerBusy,
    ),
    openapi_extra=_UPLOAD_BODY,
)
async def upload(
    request: Request,
    owner_id: CurrentUserId,
    session: SessionDep,
    sessionmaker: SessionmakerDep,
    settings: SettingsDep,
    storage: StorageDep,
    slots: UploadSlotsDep,
    path: Annotated[str | None, Query(description="Target path, if not a form field.")] = None,
) -> PendingFile | StoredFile:
    """Upload a file.

    With a JSON body ``{path, name?, size?, content_type?, sha256?}``: a pending file and a
    presigned PUT (and a browser POST); storage's notification confirms it. With
    ``multipart/form-data``: the ``file`` part is streamed to storage through the API.
    A path ending in ``/`` is a folder and the file keeps its own name; an existing path is
    overwritten and keeps its id.
    """
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("application/json"):
        intent = await _read_json(request, UploadIntentIn, settings.max_request_body_bytes)
        if multipart_uploads.wants_multipart(intent, settings):
            return await multipart_uploads.issue_multipart(
                session, storage, settings, owner_id, intent
            )
        return await direct.issue_upload(session, storage, settings, owner_id, intent)
    boundary = boundary_of(content_type)
    if boundary is None:
        if content_type.startswith("application/x-www-form-urlencoded"):
            raise MissingPart("A urlencoded form has no file: send multipart/form-data.")
        raise MalformedBody("Send JSON (a direct upload) or multipart/form-data with 'file'.")
    declared = request.headers.get("content-length")
    if declared is None and "chunked" not in request.headers.get("transfer-encoding", ""):
        raise LengthRequired()
    too_long = settings.max_upload_bytes + MULTIPART_OVERHEAD_BYTES
    if declared is not None and declared.isdigit() and int(declared) > too_long:
        raise PayloadTooLarge()
    ctx = proxied.UploadContext(sessionmaker, storage, settings)
    async with slots.hold(owner_id):
        events = read_multipart(request.stream(), boundary)
        length = int(declared) if declared is not None and declared.isdigit() else None
        file = await proxied.upload_proxied(ctx, owner_id, events, path, length)
    return StoredFile(**FileOut.of(file).model_dump())


@router.get("/uploads/{upload_id}", responses=responses(Unauthorized, UploadNotFound))
async def upload_state(
    upload_id: uuid.UUID, user: CurrentUser, session: SessionDep, settings: SettingsDep
) -> UploadState:
    """An upload's state (pending, completed, rejected with a reason, expired, failed, aborted)
    and its file."""
    return await direct.upload_state(session, settings, user, upload_id)


@router.post(
    "/uploads/{upload_id}/complete",
    response_model=UploadState,
    responses={
        202: {"model": UploadState, "description": "The object has not arrived yet."},
        **responses(
            Unauthorized,
            UploadNotFound,
            UploadClosed,
            PartsMissing,
            MalformedJson,
            PayloadTooLarge,
            ValidationFailed,
        ),
    },
    openapi_extra=multipart_routes.COMPLETE_BODY,
)
async def complete_upload(
    request: Request,
    upload_id: uuid.UUID,
    user: CurrentUser,
    session: SessionDep,
    storage: StorageDep,
    settings: SettingsDep,
    response: Response,
) -> UploadState | JSONResponse:
    """Confirm a direct upload now: 200 once confirmed, 202 while the object has not arrived,
    409 when it was rejected (the reason says why), has expired or was aborted.

    A multipart upload is assembled first (CompleteMultipartUpload) from the optional body
    ``{"parts": [{"number", "etag"}]}`` or, without it, from the parts storage holds, which
    must be 1..part_count: 409 ``parts_missing`` names the gaps."""
    parts = await multipart_routes.read_complete_body(request, settings)
    state = await multipart_uploads.complete_multipart(
        session, storage, settings, user, upload_id, parts
    )
    if state.status in {UploadStatus.rejected, UploadStatus.expired, UploadStatus.aborted}:
        detail = f"The upload is {state.status}: {state.reason or 'no reason given'}."
        return error_response(UploadClosed(detail))
    if state.status == UploadStatus.pending:
        response.status_code = status.HTTP_202_ACCEPTED
        response.headers["Retry-After"] = "1"
    return state


@router.get(
    "/download",
    status_code=status.HTTP_307_TEMPORARY_REDIRECT,
    responses={
        200: {"description": "The file (proxy mode)", "content": {"application/octet-stream": {}}},
        206: {"description": "Part of the file (proxy mode with Range)"},
        304: {"description": "Not modified (proxy mode)"},
        **responses(Unauthorized, InvalidPath, FileNotFound, RangeNotSatisfiable),
    },
    response_class=Response,
)
async def download(
    request: Request,
    user: CurrentUser,
    sessionmaker: SessionmakerDep,
    cache: CacheDep,
    storage: StorageDep,
    settings: SettingsDep,
    path: PathRef,
    proxy: Annotated[bool | None, Query(description="Stream through the API.")] = None,
) -> Response:
    """Redirect to a short-lived presigned URL, or stream the bytes (``proxy=true``, Range)."""
    record = await service.find_file(sessionmaker, cache, user, parse_reference(path))
    disposition = content.content_disposition(record.name)
    use_proxy = settings.download_proxy_default if proxy is None else proxy
    if not use_proxy:
        url = storage.presign_get(record.object_key, disposition, record.content_type)
        return RedirectResponse(url, status_code=status.HTTP_307_TEMPORARY_REDIRECT)

    etag = record.etag or ""
    validators = {
        "ETag": f'"{etag}"',
        "Last-Modified": format_datetime(record.modified_at, usegmt=True),
        "Accept-Ranges": "bytes",
        "Content-Disposition": disposition,
    }
    asked = request.headers
    if conditional.not_modified(
        asked.get("if-none-match"), asked.get("if-modified-since"), etag, record.modified_at
    ):
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=validators)
    try:
        stream = await storage.open(record.object_key, conditional.single_range(asked.get("range")))
    except RangeRefused:
        raise RangeNotSatisfiable(headers={"Content-Range": f"bytes */{record.size}"}) from None
    if stream is None:
        raise FileNotFound()
    headers = {**validators, "Content-Length": str(stream.info.size)}
    if stream.content_range:
        headers["Content-Range"] = stream.content_range
    status_code = 206 if stream.content_range else 200
    if is_head(request):
        stream.close()
        media_type = record.content_type or content.DEFAULT_CONTENT_TYPE
        return Response(status_code=status_code, media_type=media_type, headers=headers)
    return StreamingResponse(
        metrics.count_bytes(stream.body, "out"),
        status_code=status_code,
        media_type=record.content_type or content.DEFAULT_CONTENT_TYPE,
        headers=headers,
    )


@router.delete(
    "",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=responses(Unauthorized, InvalidPath, FileNotFound),
)
async def delete(user: CurrentUser, session: SessionDep, path: PathRef) -> Response:
    """Delete a file by path or id; its object is removed from storage by the worker."""
    await service.delete_file(session, user, parse_reference(path))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


router.include_router(multipart_routes.router)
