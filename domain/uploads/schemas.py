"""The upload protocols' request and response bodies, and S3's multipart limits."""

import base64
import binascii
import re
import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from domain.files.schemas import FileOut
from domain.media_types import DESCRIPTION as MEDIA_TYPE
from domain.media_types import MAX_MEDIA_TYPE_LENGTH, is_media_type
from domain.models import UploadStatus

SHA256_HEX = re.compile(r"^[0-9a-fA-F]{64}$")
# S3's multipart rules: parts of 5 MiB..5 GiB (the last may be smaller), numbered 1..10,000.
MIN_PART_SIZE = 5 * 1024 * 1024
MAX_PART_SIZE = 5 * 1024 * 1024 * 1024
MAX_PARTS = 10_000
# S3 refuses a single PUT (or POST) above 5 GiB: anything larger must be a multipart upload.
MAX_SINGLE_PUT_BYTES = 5 * 1024 * 1024 * 1024
# Parts signed per call.
MAX_PARTS_PER_CALL = 1000


class ContentIntent(BaseModel):
    """What a direct upload's intent says of its bytes (the owner's intent and an upload link's
    share it)."""

    model_config = ConfigDict(extra="forbid")

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
    multipart: bool | None = Field(
        default=None,
        strict=True,
        description="A presigned multipart upload (``size`` required); by default, when "
        "``size`` is above FILESTORE_MULTIPART_THRESHOLD_BYTES.",
    )
    part_size: int | None = Field(
        default=None,
        ge=MIN_PART_SIZE,
        le=MAX_PART_SIZE,
        description="Multipart part size in bytes (5 MiB..5 GiB, at most 10,000 parts); "
        "chosen from ``size`` if absent.",
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
        return sha256_hex(value)


class UploadIntentIn(ContentIntent):
    """A direct upload: the API signs, the client sends the bytes to storage."""

    path: str = Field(max_length=4096, description="Target path; a trailing '/' is a folder.")
    name: str | None = Field(default=None, max_length=1024, description="File name for a folder.")


def sha256_hex(value: str | None) -> str | None:
    """A hex or base64 SHA-256, normalised to lower-case hex."""
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


class MultipartTicket(BaseModel):
    """A presigned multipart upload: sign parts with ``POST /files/uploads/{id}/parts``."""

    id: uuid.UUID
    method: Literal["multipart"] = "multipart"
    part_size: int = Field(description="Every part but the last has exactly this size.")
    part_count: int
    expires_at: datetime = Field(description="Complete before this, or the upload is aborted.")


class PendingFile(FileOut):
    status: Literal["pending"] = "pending"
    upload: UploadTicket | MultipartTicket


class UploadState(BaseModel):
    id: uuid.UUID
    status: UploadStatus
    reason: str | None
    created_at: datetime
    expires_at: datetime = Field(
        description="When its URLs stop working (the ticket's expires_at); for an upload through "
        "the API, when its lease runs out unless renewed."
    )
    closes_at: datetime = Field(
        description="When reconcile closes it if it is still unfinished: expires_at plus the "
        "grace period allowed to an upload still in flight."
    )
    multipart: bool = Field(default=False, description="A presigned multipart upload.")
    part_size: int | None = Field(
        default=None, description="Multipart: every part but the last has this size (resuming)."
    )
    part_count: int | None = None
    completed_at: datetime | None
    file: FileOut | None


class PartIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    number: int = Field(ge=1, le=MAX_PARTS)
    sha256: str | None = Field(
        default=None, description="Hex or base64 SHA-256 of the part; signed as a checksum."
    )

    @field_validator("sha256")
    @classmethod
    def sha256_digest(cls, value: str | None) -> str | None:
        return sha256_hex(value)


class PartsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    parts: list[PartIn] = Field(min_length=1, max_length=MAX_PARTS_PER_CALL)


class SignedPart(BaseModel):
    number: int
    url: str
    method: Literal["PUT"] = "PUT"
    headers: dict[str, str] = Field(description="Send exactly these (Content-Length included).")
    expires_at: datetime


class SignedParts(BaseModel):
    parts: list[SignedPart]


class StoredPartOut(BaseModel):
    number: int
    size: int
    etag: str


class StoredParts(BaseModel):
    parts: list[StoredPartOut]


class CompletedPartIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    number: int = Field(ge=1, le=MAX_PARTS)
    etag: str = Field(min_length=1, max_length=256)


class CompleteIn(BaseModel):
    """The parts to assemble; without them, the parts storage holds."""

    model_config = ConfigDict(extra="forbid")

    parts: list[CompletedPartIn] | None = Field(default=None, max_length=MAX_PARTS)
