"""Share links for anyone holding one, no account (§15): ``/s/{token}``, mounted at the root.

A browser gets pages (``api.shares.page``); a client asking for JSON gets JSON and the usual
error bodies. Every answer under ``/s/`` carries ``Cache-Control: no-store``
(``NoStoreMiddleware``): a link's page, its redirects and its errors are never kept by a cache,
so a revoked link is dead everywhere at once.
"""

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response, status
from fastapi.responses import JSONResponse, RedirectResponse
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.body import JsonBody, validate
from api.deps import DatabaseDep, DownloadTallyDep, QueueDep, SettingsDep, StorageDep
from api.files.router import zip_answer
from api.head import is_head
from api.shares import page
from domain.errors import (
    AppError,
    FileNotFound,
    InvalidCursor,
    InvalidPath,
    ShareLocked,
    ShareNotFound,
    TooManyAttempts,
    ValidationFailed,
    WrongSharePassword,
    responses,
)
from domain.files import content
from domain.files.paths import last_segment
from domain.folders.archive import folder_zip
from domain.shares import service, tokens
from domain.shares.repository import Target
from domain.shares.schemas import (
    PublicFileShare,
    PublicFolderShare,
    PublicUploadShare,
    UnlockIn,
)
from domain.text import RULE, find_unclean_text
from infra.config import Settings
from infra.ratelimit import AuthThrottle

PREFIX = "/s"
FORM = "application/x-www-form-urlencoded"
_UNLOCK_FORM = {
    "type": "object",
    "required": ["password"],
    "properties": {"password": {"type": "string", "format": "password"}},
}

router = APIRouter(prefix=PREFIX, tags=["share links"])

UnlockBody = Annotated[UnlockIn | None, Depends(JsonBody(UnlockIn, others={FORM: _UNLOCK_FORM}))]
Answer = Callable[[Target], Awaitable[Response]]


class NoStoreMiddleware:
    """``Cache-Control: no-store`` on every answer under ``/s/``, errors included."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(PREFIX + "/"):
            await self.app(scope, receive, send)
            return

        async def send_no_store(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)["Cache-Control"] = "no-store"
            await send(message)

        await self.app(scope, receive, send_no_store)


def _wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "")


def _wants_page(request: Request) -> bool:
    """Downloads answer pages only to browsers (they ask for HTML); curl gets JSON errors."""
    return "text/html" in request.headers.get("accept", "") and not _wants_json(request)


def _address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def _public(
    request: Request,
    database: DatabaseDep,
    settings: Settings,
    token: str,
    answer: Answer,
    pages: bool,
) -> Response:
    """Open the link and run ``answer`` once it is unlocked; for a browser (``pages``), a
    locked share is the password form and an error a page."""
    try:
        target = await service.open_share(database, token)
        if not service.is_unlocked(target, request.cookies.get(tokens.COOKIE), settings):
            if not pages:
                raise ShareLocked()
            return page.locked(settings, token)
        return await answer(target)
    except AppError as error:
        if not pages:
            raise
        return page.failed(settings, error)


@router.get(
    "/{token}",
    response_model=PublicFileShare | PublicFolderShare | PublicUploadShare,
    responses={
        200: {"content": {"text/html": {}}, "description": "The page, or JSON (Accept)."},
        **responses(ShareNotFound, ShareLocked, InvalidCursor, InvalidPath),
    },
)
async def open_link(
    request: Request,
    token: str,
    database: DatabaseDep,
    settings: SettingsDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(max_length=8192)] = None,
) -> Response:
    """The shared file (name and size) or the folder's files, a page at a time: JSON when
    asked for (``Accept: application/json``), else a page with download links. An upload link
    shows its folder's name only (the page: a form that uploads a file)."""
    as_json = _wants_json(request)

    async def answer(target: Target) -> Response:
        shown = await service.view(database, target, cursor, limit)
        if as_json:
            return JSONResponse(shown.model_dump(mode="json"))
        return page.shared(settings, token, shown)

    return await _public(request, database, settings, token, answer, pages=not as_json)


@router.get(
    "/{token}/download",
    status_code=status.HTTP_307_TEMPORARY_REDIRECT,
    response_class=Response,
    responses=responses(ShareNotFound, ShareLocked, InvalidPath, FileNotFound),
)
async def download(
    request: Request,
    token: str,
    database: DatabaseDep,
    tally: DownloadTallyDep,
    storage: StorageDep,
    settings: SettingsDep,
    path: Annotated[
        str | None,
        Query(max_length=4096, description="A file relative to the shared folder: sub/2.txt."),
    ] = None,
) -> Response:
    """Redirect to a short-lived presigned URL of the file (Range works there), counted
    against ``max_downloads``; a ``HEAD`` checks without counting. 404 for an upload link."""

    def redirect(name: str, object_key: str, content_type: str | None) -> Response:
        disposition = content.content_disposition(name)
        url = storage.presign_get(object_key, disposition, content_type)
        return RedirectResponse(url, status_code=status.HTTP_307_TEMPORARY_REDIRECT)

    if path is None and not is_head(request):
        cookie = request.cookies.get(tokens.COOKIE)
        shared = await service.file_download(
            database, tally, token, cookie, settings, _address(request)
        )
        if shared is not None:
            return redirect(shared.name, shared.object_key, shared.content_type)

    async def answer(target: Target) -> Response:
        file = await service.file_to_download(database, target, path)
        if not is_head(request):
            await service.count_download(database, tally, target, "file", _address(request))
        assert file.object_key is not None
        return redirect(file.name, file.object_key, file.content_type)

    return await _public(request, database, settings, token, answer, _wants_page(request))


@router.get(
    "/{token}/zip",
    response_class=Response,
    responses={
        200: {"content": {"application/zip": {}}, "description": "The folder as a zip."},
        **responses(ShareNotFound, ShareLocked, InvalidPath),
    },
)
async def zip_folder(
    request: Request,
    token: str,
    database: DatabaseDep,
    tally: DownloadTallyDep,
    storage: StorageDep,
    settings: SettingsDep,
) -> Response:
    """The shared folder as a zip streamed as it is read (names relative to the folder),
    counted as one download. 404 for an upload link."""

    async def answer(target: Target) -> Response:
        folder = service.folder_of(target)
        if not is_head(request):
            await service.count_download(database, tally, target, "zip", _address(request))
        archive = await folder_zip(
            database, storage, target.share.owner_id, folder, settings.files.zip_page_files
        )
        return await zip_answer(request, archive, last_segment(folder) + ".zip")

    return await _public(request, database, settings, token, answer, _wants_page(request))


async def _password(request: Request, body: UnlockIn | None) -> str:
    if body is not None:
        return body.password
    if not request.headers.get("content-type", "").startswith(FORM):
        raise ValidationFailed('Send {"password"} as JSON, or a form with a password field.')
    form = await request.form()
    fields = {"password": str(form.get("password", ""))}
    where = find_unclean_text(fields)
    if where is not None:
        raise ValidationFailed(f"{where}: {RULE}")
    return validate(UnlockIn, fields).password


@router.post(
    "/{token}/unlock",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses={
        303: {"description": "A form's answer: back to the share's page, unlocked."},
        **responses(ShareNotFound, WrongSharePassword, TooManyAttempts, ValidationFailed),
    },
)
async def unlock(
    request: Request,
    token: str,
    database: DatabaseDep,
    settings: SettingsDep,
    redis: QueueDep,
    body: UnlockBody,
) -> Response:
    """Give a password share's password (JSON ``{"password"}``, or the page's form): a cookie
    for this share alone, valid ``FILESTORE_SHARE_UNLOCK_SECONDS``. Throttled as logins are."""
    from_form = body is None
    try:
        target = await service.open_share(database, token)
        password = await _password(request, body)
        throttle = AuthThrottle(redis, settings, prefix=service.THROTTLE_PREFIX)
        proof = await service.unlock(target, password, throttle, _address(request), settings)
    except (WrongSharePassword, TooManyAttempts) as error:
        if not from_form:
            raise
        locked = page.locked(settings, token, error.detail, error.status_code)
        for name, value in (error.headers or {}).items():
            locked.headers[name] = value
        return locked
    except AppError as error:
        if not from_form:
            raise
        return page.failed(settings, error)
    answer: Response = (
        RedirectResponse(f"{PREFIX}/{token}", status_code=status.HTTP_303_SEE_OTHER)
        if from_form
        else Response(status_code=status.HTTP_204_NO_CONTENT)
    )
    if proof is not None:
        secure = request.url.scheme == "https" or (settings.shares.public_url or "").startswith(
            "https:"
        )
        answer.set_cookie(
            tokens.COOKIE,
            proof,
            max_age=settings.shares.unlock_seconds,
            path=f"{PREFIX}/{token}",
            secure=secure,
            httponly=True,
            samesite="lax",
        )
    return answer
