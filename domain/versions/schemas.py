"""File versions: response bodies (§14)."""

import uuid
from datetime import datetime

from pydantic import BaseModel, Field

from domain.models import File, FileVersion


class VersionOut(BaseModel):
    id: uuid.UUID = Field(description="The version's id; the current content's is the file's.")
    size: int
    etag: str | None
    sha256: str | None
    modified_at: datetime = Field(description="When this content was stored.")
    current: bool

    @classmethod
    def of(cls, version: FileVersion) -> "VersionOut":
        return cls(
            id=version.id,
            size=version.size,
            etag=version.etag,
            sha256=version.sha256,
            modified_at=version.modified_at,
            current=False,
        )

    @classmethod
    def current_of(cls, file: File) -> "VersionOut":
        return cls(
            id=file.id,
            size=file.size or 0,
            etag=file.etag,
            sha256=file.sha256,
            modified_at=file.modified_at,
            current=True,
        )


class VersionList(BaseModel):
    path: str
    versions: list[VersionOut] = Field(description="The current content first, then newest first.")
