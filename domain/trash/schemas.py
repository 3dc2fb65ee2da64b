"""Trash: response and request bodies (§14)."""

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from domain.models import TrashEntry


class TrashEntryOut(BaseModel):
    id: uuid.UUID
    path: str = Field(description="Where it was; a folder's path ends with '/'.")
    kind: Literal["file", "folder"]
    files: int = Field(description="Files it holds (1 for a file).")
    size: int = Field(description="Bytes of those files (their versions are counted apart).")
    deleted_at: datetime
    purge_at: datetime = Field(description="When the worker deletes it for good.")

    @classmethod
    def of(cls, entry: TrashEntry) -> "TrashEntryOut":
        return cls(
            id=entry.id,
            path=entry.path,
            kind="folder" if entry.path.endswith("/") else "file",
            files=entry.files,
            size=entry.size,
            deleted_at=entry.deleted_at,
            purge_at=entry.purge_at,
        )


class TrashPage(BaseModel):
    entries: list[TrashEntryOut] = Field(description="Newest first.")
    next_cursor: str | None


class RestoreIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    to: str | None = Field(
        default=None,
        max_length=4096,
        description="Where to put it instead of where it was: a full path, or a folder "
        "(ending with '/', or naming an existing folder) to put it in under its own name.",
    )


class Restored(BaseModel):
    path: str
    files: int = Field(description="Files restored.")


class Purged(BaseModel):
    purged: int = Field(description="Trash entries deleted for good.")
