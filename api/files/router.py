import uuid
from email.utils import format_datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response, status
from fastapi.responses import JSONResponse, RedirectResponse, StreamingResponse

from api.body import JsonBody
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
    FolderNotFound,
    InvalidCursor,
    InvalidMove,
    InvalidPath,
    PathTaken,
    QuotaExceeded,
    RangeNotSatisfiable,
    Unauthorized,
    ValidationFailed,
    VersionNotFound,
    responses,
)
from domain.files import content, service
from domain.files.paths import folder_prefix, is_folder, last_segment, parse_reference
from domain.files.schemas import FileList, FileOut
from domain.folders import service as folders
from domain.folders.archive import FolderZip, folder_zip
from domain.folders.schemas import FolderCopied, FolderDeleted, FolderMoved, TransferIn
from domain.models import User
from domain.trash.service import Retention
from domain.versions import service as versions
from domain.versions.schemas import VersionList
from infra import metrics
from infra.config import Settings
from infra.db import Database
from infra.storage.adapter import RangeRefused, Storage

router = APIRouter(prefix="/files", tags=["files"])

PathRef = Annotated[str, Query(description="A file's absolute path, or its id.", max_length=4096)]
TransferBody = Annotated[TransferIn, Depends(JsonBody(TransferIn))]


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
        **responses(Unauthorized, InvalidPath, FileNotFound, VersionNotFound, RangeNotSatisfiable),
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
    version: Annotated[
        uuid.UUID | None, Query(description="An earlier content (GET /files/versions).")
    ] = None,
    format: Annotated[
        Literal["zip"] | None, Query(description="`zip`: the folder `path` as a streamed zip.")
    ] = None,
) -> Response:
    """Redirect to a short-lived presigned URL, or stream the bytes (``proxy=true``, Range);
    a folder with ``format=zip`` streams as a zip."""
    if format == "zip":
        return await _folder_zip(request, user, database, storage, settings, path)
    record = await service.find_file(database, cache, user, parse_reference(path))
    if version is not None:
        record = await versions.version_record(database, user, record, version)
    disposition = content.content_disposition(record.name)
    use_proxy = settings.files.download_proxy_default if proxy is None else proxy
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


async def _folder_zip(
    request: Request,
    user: User,
    database: Database,
    storage: Storage,
    settings: Settings,
    path: str,
) -> Response:
    if not path.startswith("/"):
        raise InvalidPath("format=zip takes a folder's path, e.g. /docs/.")
    folder = folder_prefix(path)
    archive = await folder_zip(database, storage, user.id, folder, settings.files.zip_page_files)
    name = (last_segment(folder) if folder != "/" else user.login) + ".zip"
    return await zip_answer(request, archive, name)


async def zip_answer(request: Request, archive: FolderZip, name: str) -> Response:
    """A folder zip as the answer: streamed, sized when its length is known, headers alone for
    a ``HEAD`` (the body is closed unread)."""
    headers = {"Content-Disposition": content.content_disposition(name)}
    if archive.length is not None:
        headers["Content-Length"] = str(archive.length)
    if is_head(request):
        await archive.body.aclose()
        return Response(media_type="application/zip", headers=headers)
    return StreamingResponse(
        metrics.count_bytes(archive.body, "out"), media_type="application/zip", headers=headers
    )


@router.get(
    "/search",
    response_model=FileList,
    responses=responses(Unauthorized, InvalidPath, InvalidCursor, ValidationFailed),
)
async def search(
    user: CurrentUser,
    database: DatabaseDep,
    cache: CacheDep,
    settings: SettingsDep,
    q: Annotated[str, Query(min_length=1, max_length=200, description="Part of a name.")],
    path: Annotated[str | None, Query(description="Search below this folder.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(max_length=8192)] = None,
) -> Response:
    """Files whose name contains ``q``, case-insensitive, by path (a trigram index)."""
    prefix = folder_prefix(path) if path else None
    page = await folders.search(
        database, cache, user, q, prefix, cursor, limit, settings.files.search_scan_rows
    )
    return Response(page, media_type="application/json")


@router.post(
    "/move",
    response_model=FileOut | FolderMoved,
    responses=responses(
        Unauthorized,
        InvalidPath,
        InvalidMove,
        FileNotFound,
        FolderNotFound,
        PathTaken,
        ValidationFailed,
    ),
)
async def move(
    user: CurrentUser, database: DatabaseDep, settings: SettingsDep, body: TransferBody
) -> Response:
    """Move or rename a file or a folder (``from`` ending with ``/``): paths change; ids,
    ``created_ad`` and content stay, and nothing is copied in storage. All or nothing. A file
    an ``overwrite`` replaces goes to the trash."""
    retention = Retention.of(settings)
    moved = await database.transaction(lambda session: folders.move(session, user, body, retention))
    return JSONResponse(moved.model_dump(mode="json"))


@router.post(
    "/copy",
    status_code=status.HTTP_201_CREATED,
    response_model=FileOut | FolderCopied,
    responses=responses(
        Unauthorized,
        InvalidPath,
        InvalidMove,
        FileNotFound,
        FolderNotFound,
        PathTaken,
        QuotaExceeded,
        ValidationFailed,
    ),
)
async def copy(
    user: CurrentUser, database: DatabaseDep, settings: SettingsDep, body: TransferBody
) -> Response:
    """Copy a file or a folder: new ids, the same bytes (shared, immutable objects: no storage
    round trip), counted against the quota."""
    copied = await database.transaction(lambda session: folders.copy(session, user, body, settings))
    return JSONResponse(copied.model_dump(mode="json"), status_code=status.HTTP_201_CREATED)


@router.delete(
    "",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={
        200: {"model": FolderDeleted, "description": "A folder and everything below it."},
        **responses(Unauthorized, InvalidPath, FileNotFound, FolderNotFound),
    },
)
async def delete(
    user: CurrentUser, database: DatabaseDep, settings: SettingsDep, path: PathRef
) -> Response:
    """Delete a file by path or id, or a folder (a path ending with ``/``) and everything below
    it in one transaction: to the trash (``GET /trash``) for ``FILESTORE_TRASH_RETENTION_SECONDS``,
    then for good (the worker removes the objects)."""
    reference = parse_reference(path)
    retention = Retention.of(settings)
    if isinstance(reference, str) and is_folder(reference):
        deleted = await database.transaction(
            lambda session: folders.delete_folder(session, user, reference, retention)
        )
        return JSONResponse(deleted.model_dump(mode="json"))
    await database.transaction(
        lambda session: service.delete_file(session, user, reference, retention)
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/versions",
    response_model=VersionList,
    responses=responses(Unauthorized, InvalidPath, FileNotFound),
)
async def list_versions(user: CurrentUser, database: DatabaseDep, path: PathRef) -> VersionList:
    """A file's contents: the current one first, then the earlier ones an overwrite kept,
    newest first (up to ``FILESTORE_VERSIONS_KEPT``)."""
    return await versions.list_versions(database, user, parse_reference(path))


@router.post(
    "/versions/{version_id}/restore",
    response_model=FileOut,
    responses=responses(Unauthorized, VersionNotFound),
)
async def restore_version(
    user: CurrentUser, database: DatabaseDep, version_id: uuid.UUID
) -> FileOut:
    """Make an earlier content current again; the content it replaces becomes a version."""
    return await database.transaction(
        lambda session: versions.restore_version(session, user, version_id)
    )


@router.delete(
    "/versions/{version_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=responses(Unauthorized, VersionNotFound),
)
async def delete_version(
    user: CurrentUser, database: DatabaseDep, version_id: uuid.UUID
) -> Response:
    """Delete an earlier content for good, freeing its bytes."""
    await database.transaction(lambda session: versions.delete_version(session, user, version_id))
    return Response(status_code=status.HTTP_204_NO_CONTENT)
