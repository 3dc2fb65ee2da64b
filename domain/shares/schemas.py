"""Share links: request and response bodies (§15)."""

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

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
        description="Downloads (a file, or a folder's zip) after which the link is used up.",
    )
    upload: Literal[False] = Field(
        default=False, description="Upload links (file requests) are not available yet."
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


class UnlockIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    password: str = Field(min_length=1, max_length=1024)
