"""Folder routes: a folder's direct children, and explicit (empty-listable) folders."""

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response, status
from fastapi.responses import JSONResponse

from api.body import JsonBody
from api.deps import CacheDep, CurrentUser, DatabaseDep
from domain.errors import (
    FolderNotFound,
    InvalidCursor,
    InvalidPath,
    PathTaken,
    Unauthorized,
    ValidationFailed,
    responses,
)
from domain.files.paths import folder_prefix
from domain.folders import service
from domain.folders.schemas import FolderOut, FolderView, NewFolderIn

router = APIRouter(prefix="/folders", tags=["folders"])

NewFolderBody = Annotated[NewFolderIn, Depends(JsonBody(NewFolderIn))]


@router.get(
    "",
    response_model=FolderView,
    responses=responses(Unauthorized, InvalidPath, InvalidCursor, FolderNotFound, ValidationFailed),
)
async def view_folder(
    user: CurrentUser,
    database: DatabaseDep,
    cache: CacheDep,
    path: Annotated[str, Query(description="The folder, e.g. /docs/", max_length=4096)] = "/",
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(max_length=8192)] = None,
) -> Response:
    """A folder's direct children: its folders by name, then its files by name, a page at a
    time (pass ``next_cursor`` back). The cost does not grow with what lies deeper."""
    page = await service.view_folder(database, cache, user, folder_prefix(path), cursor, limit)
    return Response(page, media_type="application/json")


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=FolderOut,
    responses={
        200: {"model": FolderOut, "description": "The folder existed already."},
        **responses(Unauthorized, InvalidPath, PathTaken, ValidationFailed),
    },
)
async def make_folder(user: CurrentUser, database: DatabaseDep, body: NewFolderBody) -> Response:
    """An explicit folder: listed even while empty, until deleted."""
    folder, created = await database.transaction(
        lambda session: service.make_folder(session, user, body.path)
    )
    code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    return JSONResponse(folder.model_dump(mode="json"), status_code=code)
