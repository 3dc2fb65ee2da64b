"""Trash routes: what was deleted, restoring it, and deleting it for good (§14)."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from api.body import JsonBody
from api.deps import CurrentUser, DatabaseDep
from domain.errors import (
    InvalidCursor,
    InvalidMove,
    InvalidPath,
    PathTaken,
    TrashNotFound,
    Unauthorized,
    ValidationFailed,
    responses,
)
from domain.trash import service
from domain.trash.schemas import Purged, Restored, RestoreIn, TrashPage

router = APIRouter(prefix="/trash", tags=["trash"])

RestoreBody = Annotated[RestoreIn | None, Depends(JsonBody(RestoreIn, optional=True))]


@router.get("", response_model=TrashPage, responses=responses(Unauthorized, InvalidCursor))
async def list_trash(
    user: CurrentUser,
    database: DatabaseDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(max_length=8192)] = None,
) -> TrashPage:
    """Deleted files and folders (a folder is one entry), newest first, with when each is
    deleted for good."""
    return await service.list_trash(database, user, cursor, limit)


@router.post(
    "/{entry_id}/restore",
    response_model=Restored,
    responses=responses(
        Unauthorized, TrashNotFound, InvalidPath, InvalidMove, PathTaken, ValidationFailed
    ),
)
async def restore(
    user: CurrentUser, database: DatabaseDep, entry_id: uuid.UUID, body: RestoreBody
) -> Restored:
    """Put an entry back where it was (or at ``to``), with its ids, dates and versions; 409
    ``path_taken`` when something holds that path now."""
    return await database.transaction(
        lambda session: service.restore(session, user, entry_id, body.to if body else None)
    )


@router.delete(
    "/{entry_id}", response_model=Purged, responses=responses(Unauthorized, TrashNotFound)
)
async def purge_entry(user: CurrentUser, database: DatabaseDep, entry_id: uuid.UUID) -> Purged:
    """Delete one entry for good (and its files' versions), freeing its bytes."""
    return await database.transaction(lambda session: service.purge(session, user, entry_id))


@router.delete("", response_model=Purged, responses=responses(Unauthorized))
async def empty_trash(user: CurrentUser, database: DatabaseDep) -> Purged:
    """Empty the trash: every entry deleted for good."""
    return await database.transaction(lambda session: service.purge(session, user, None))
