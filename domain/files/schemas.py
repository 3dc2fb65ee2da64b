import base64
import binascii
import json
import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from domain.errors import InvalidCursor
from domain.models import File
from domain.text import is_clean_text, nesting_exceeds


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
