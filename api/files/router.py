from email.utils import format_datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.responses import RedirectResponse, StreamingResponse

from api.deps import (
    CacheDep,
    CurrentUser,
    DatabaseDep,
    SettingsDep,
    StorageDep,
)
from api.files import conditional
from api.head import is_head
from domain.errors import (
    FileNotFound,
    InvalidCursor,
    InvalidPath,
    RangeNotSatisfiable,
    Unauthorized,
    ValidationFailed,
    responses,
)
from domain.files import content, service
from domain.files.paths import folder_prefix, parse_reference
from domain.files.schemas import FileList
from infra import metrics
from infra.storage.adapter import RangeRefused

router = APIRouter(prefix="/files", tags=["files"])

PathRef = Annotated[str, Query(description="A file's absolute path, or its id.", max_length=4096)]


@router.get(
    "",
    response_model=FileList,
    responses=responses(Unauthorized, InvalidPath, InvalidCursor, ValidationFailed),
)
async def list_files(
    user: CurrentUser,
    database: DatabaseDep,
    cache: CacheDep,
    path: Annotated[str | None, Query(description="Folder to list, e.g. /docs/")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(max_length=8192)] = None,
) -> Response:
    """The user's files ordered by path, a page at a time (pass ``next_cursor`` back)."""
    prefix = folder_prefix(path) if path else None
    page = await service.list_files(database, cache, user, prefix, cursor, limit)
    return Response(page, media_type="application/json")


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
    database: DatabaseDep,
    cache: CacheDep,
    storage: StorageDep,
    settings: SettingsDep,
    path: PathRef,
    proxy: Annotated[bool | None, Query(description="Stream through the API.")] = None,
) -> Response:
    """Redirect to a short-lived presigned URL, or stream the bytes (``proxy=true``, Range)."""
    record = await service.find_file(database, cache, user, parse_reference(path))
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
async def delete(user: CurrentUser, database: DatabaseDep, path: PathRef) -> Response:
    """Delete a file by path or id; its object is removed from storage by the worker."""
    reference = parse_reference(path)
    await database.transaction(lambda session: service.delete_file(session, user, reference))
    return Response(status_code=status.HTTP_204_NO_CONTENT)
