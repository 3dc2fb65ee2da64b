"""Folder views, moves, copies, folder deletes and search: request and response bodies."""

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from domain.files.schemas import FileOut
from domain.models import Folder

PATH_FIELD = Field(max_length=4096)


class FolderOut(BaseModel):
    name: str
    path: str = Field(description="The folder's path, ending with '/'.")
    modified_at: datetime

    @classmethod
    def of(cls, folder: Folder) -> "FolderOut":
        return cls(name=folder.name, path=folder.path, modified_at=folder.modified_at)


class FolderView(BaseModel):
    account: str
    path: str
    folders: list[FolderOut] = Field(description="Direct child folders, by name.")
    files: list[FileOut] = Field(description="Direct child files, by name, after the folders.")
    next_cursor: str | None


class NewFolderIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str = Field(max_length=4096, description="The folder's path, ending with '/'.")


class TransferIn(BaseModel):
    """A move or a copy."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    source: str = Field(
        alias="from",
        max_length=4096,
        description="A file's path or id, or a folder's path (ending with '/').",
    )
    to: str = Field(
        max_length=4096,
        description="The full new path, or a folder's path (ending with '/', or naming an "
        "existing folder) to put it in under its own name.",
    )
    overwrite: bool = Field(
        default=False, strict=True, description="Replace a file at the target (files only)."
    )


class FolderMoved(BaseModel):
    moved: int = Field(description="Files moved.")
    path: str


class FolderCopied(BaseModel):
    copied: int = Field(description="Files copied.")
    path: str


class FolderDeleted(BaseModel):
    deleted: int = Field(description="Files deleted.")
