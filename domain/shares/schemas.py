"""Share links: request and response bodies (§15)."""

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from domain.models import UploadStatus
from domain.uploads.schemas import ContentIntent, MultipartTicket, UploadTicket

Kind = Literal["file", "folder"]


class ShareIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str = Field(
        max_length=4096,
        description="The file (its path or id) or the folder (ending with '/', or naming an "
        "existing folder) to share.",
    )
    expires_in: int | None = Field(
        default=None,
        ge=1,
        description="Seconds the link lives: 7 days by default, at most "
        "FILESTORE_SHARE_MAX_SECONDS.",
    )
    password: str | None = Field(
        default=None,
        min_length=1,
        max_length=1024,
        description="Needed (POST /s/{token}/unlock) before anything is shown.",
    )
    max_downloads: int | None = Field(
        default=None,
        ge=1,
        le=2**31 - 1,
        description="Downloads (a file, or a folder's zip) after which the link is used up; "
        "not for an upload link.",
    )
    upload: bool = Field(
        default=False,
        description="An upload link (a file request): anyone holding it may add files to the "
        "folder ``path`` (ending with '/'; made if missing) through POST /s/{token}/upload, "
        "never overwriting, and sees nothing of what it holds.",
    )


class ShareOut(BaseModel):
    id: uuid.UUID
    url: str | None = Field(
        description="The link (absolute). Only the answer to POST /shares carries it: the "
        "token is stored as a hash, so it cannot be shown again."
    )
    path: str = Field(description="The target's current path (it follows moves).")
    kind: Kind
    expires_at: datetime
    has_password: bool
    max_downloads: int | None
    downloads: int
    upload: bool = Field(description="An upload link: it takes files and shows nothing.")
    created_at: datetime


class ShareList(BaseModel):
    shares: list[ShareOut] = Field(description="Newest first, expired and used up ones too.")


class PublicFile(BaseModel):
    path: str = Field(description="Relative to the shared folder: what download?path= takes.")
    name: str
    size: int


class PublicFileShare(BaseModel):
    kind: Literal["file"] = "file"
    name: str
    size: int
    has_password: bool


class PublicFolderShare(BaseModel):
    kind: Literal["folder"] = "folder"
    name: str
    files: list[PublicFile] = Field(description="Every file below the folder, by path, paged.")
    next_cursor: str | None
    has_password: bool


class PublicUploadShare(BaseModel):
    """An upload link shows its folder's name, never what the folder holds."""

    kind: Literal["upload"] = "upload"
    name: str
    has_password: bool


class UnlockIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    password: str = Field(min_length=1, max_length=1024)


# -- uploads through an upload link ----------------------------------------------------------


class LinkUploadIn(ContentIntent):
    """The owner's JSON intent, with ``name`` for ``path``: the file goes below the link's
    folder, and a name already taken gets a suffix (``report (1).pdf``)."""

    name: str = Field(
        max_length=1024,
        description="The file's name, or a path relative to the shared folder (sub/report.pdf).",
    )


class LinkUploadOut(BaseModel):
    name: str = Field(description="The name the file took: the one asked for, or suffixed.")
    path: str = Field(description="Where the file goes, relative to the shared folder.")
    status: Literal["pending"] = "pending"
    upload: UploadTicket | MultipartTicket = Field(
        description="Send the bytes as the owner would, then POST "
        "/s/{token}/uploads/{id}/complete (a multipart upload signs its parts with POST "
        "/s/{token}/uploads/{id}/parts first)."
    )


class LinkUploadState(BaseModel):
    id: uuid.UUID
    status: UploadStatus
    reason: str | None
    expires_at: datetime
    completed_at: datetime | None
    multipart: bool
    part_size: int | None
    part_count: int | None
    name: str | None = Field(description="The file's name, once there is one.")
    path: str | None = Field(description="Relative to the shared folder, while it is below it.")
    size: int | None
