import base64
import binascii
import json
import re
import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from api.body import nesting_exceeds
from api.errors import InvalidCursor
from api.media_types import DESCRIPTION as MEDIA_TYPE
from api.media_types import MAX_MEDIA_TYPE_LENGTH, is_media_type
from api.models import File, UploadStatus
from api.text import is_clean_text


class FileOut(BaseModel):
    id: uuid.UUID
    name: str
    created_ad: datetime = Field(description="Creation time (the seed contract's field name).")
    path: str
    size: int | None
    content_type: str | None
    etag: str | None
    sha256: str | None = Field(
        default=None, description="Hex SHA-256 of the content, when storage verified one."
    )
    modified_at: datetime

    @classmethod
    def of(cls, file: File) -> "FileOut":
        return cls(
            id=file.id,
            name=file.name,
            created_ad=file.created_at,
            path=file.path,
            size=file.size,
            content_type=file.content_type,
            etag=file.etag,
            sha256=file.sha256,
            modified_at=file.modified_at,
        )


class StoredFile(FileOut):
    status: Literal["ready"] = "ready"


class FileList(BaseModel):
    account: str
    files: list[FileOut]
    next_cursor: str | None


def encode_cursor(last_path: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": last_path}).encode()).decode()


def decode_cursor(cursor: str) -> str:
    """The path a cursor continues after; a forged one is ``InvalidCursor``, never a 500."""
    try:
        text = base64.urlsafe_b64decode(cursor.encode("ascii")).decode("utf-8")
        if nesting_exceeds(text, 1):
            raise InvalidCursor()
        after = json.loads(text)["after"]
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeError):
        raise InvalidCursor() from None
    if not isinstance(after, str) or not is_clean_text(after):
        raise InvalidCursor()
    return after


SHA256_HEX = re.compile(r"^[0-9a-fA-F]{64}$")


class UploadIntentIn(BaseModel):
    """A direct upload: the API signs, the client sends the bytes to storage."""

    model_config = ConfigDict(extra="forbid")

    path: str = Field(max_length=4096, description="Target path; a trailing '/' is a folder.")
    name: str | None = Field(default=None, max_length=1024, description="File name for a folder.")
    size: int | None = Field(
        default=None, ge=1, description="Exact size; signed as Content-Length."
    )
    content_type: str | None = Field(
        default=None,
        max_length=MAX_MEDIA_TYPE_LENGTH,
        description=f"The file's type, {MEDIA_TYPE}; guessed from the name if absent.",
    )
    sha256: str | None = Field(
        default=None, description="Hex or base64 SHA-256 of the body; signed as a checksum."
    )

    @field_validator("content_type")
    @classmethod
    def media_type(cls, value: str | None) -> str | None:
        if value is not None and not is_media_type(value):
            raise ValueError(f"content_type must be {MEDIA_TYPE}")
        return value

    @field_validator("sha256")
    @classmethod
    def sha256_digest(cls, value: str | None) -> str | None:
        """Normalise to lower-case hex."""
        if value is None:
            return None
        if SHA256_HEX.match(value):
            return value.lower()
        try:
            digest = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            digest = b""
        if len(digest) != 32:
            raise ValueError("sha256 must be 64 hex digits or the base64 of 32 bytes")
        return digest.hex()


class PresignedPostOut(BaseModel):
    url: str
    fields: dict[str, str]


class UploadTicket(BaseModel):
    id: uuid.UUID
    url: str
    method: Literal["PUT"] = "PUT"
    headers: dict[str, str]
    expires_at: datetime
    post: PresignedPostOut | None = Field(
        description="A browser form upload; absent when a sha256 was declared (a POST policy "
        "cannot make storage check it)."
    )


class PendingFile(FileOut):
    status: Literal["pending"] = "pending"
    upload: UploadTicket


class UploadState(BaseModel):
    id: uuid.UUID
    status: UploadStatus
    reason: str | None
    created_at: datetime
    expires_at: datetime
    completed_at: datetime | None
    file: FileOut | None
