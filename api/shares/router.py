"""Share routes for the owner: make a link, list them, revoke one (§15)."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status

from api.body import JsonBody
from api.deps import CurrentUser, DatabaseDep, DownloadTallyDep, SettingsDep
from domain.errors import (
    FileNotFound,
    FolderNotFound,
    InvalidPath,
    PathTaken,
    ShareNotFound,
    Unauthorized,
    UploadLinkNeedsFolder,
    ValidationFailed,
    responses,
)
from domain.shares import service
from domain.shares.schemas import ShareIn, ShareList, ShareOut
from infra.config import Settings

router = APIRouter(prefix="/shares", tags=["shares"])

ShareBody = Annotated[ShareIn, Depends(JsonBody(ShareIn))]


def base_url(request: Request, settings: Settings) -> str:
    """Where links point: ``FILESTORE_PUBLIC_URL``, else the address this request came to."""
    return settings.shares.public_url or str(request.base_url)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ShareOut,
    responses=responses(
        Unauthorized,
        InvalidPath,
        FileNotFound,
        FolderNotFound,
        PathTaken,
        UploadLinkNeedsFolder,
        ValidationFailed,
    ),
)
async def create_share(
    request: Request,
    user: CurrentUser,
    database: DatabaseDep,
    settings: SettingsDep,
    body: ShareBody,
) -> ShareOut:
    """A link to a file or a folder that anyone holding it may open (``/s/{token}``), until it
    expires, is used up or revoked. The answer's ``url`` is the only time the link is shown.

    With ``upload: true``, an upload link (a file request) to the folder ``path`` (ending with
    ``/``; made if missing): anyone holding it may add files there (``POST /s/{token}/upload``)
    and sees nothing of what the folder holds."""
    root = base_url(request, settings)
    return await database.transaction(
        lambda session: service.create(session, user, body, settings, root)
    )


@router.get("", response_model=ShareList, responses=responses(Unauthorized))
async def list_shares(
    user: CurrentUser, database: DatabaseDep, tally: DownloadTallyDep
) -> ShareList:
    """The caller's links, newest first, each with where its target is now."""
    return await service.list_shares(database, tally, user)


@router.delete(
    "/{share_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=responses(Unauthorized, ShareNotFound),
)
async def revoke_share(user: CurrentUser, database: DatabaseDep, share_id: uuid.UUID) -> Response:
    """Revoke a link: it answers 404 from the next request on."""
    await database.transaction(lambda session: service.revoke(session, user, share_id))
    return Response(status_code=status.HTTP_204_NO_CONTENT)
