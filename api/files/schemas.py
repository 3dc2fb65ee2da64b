import base64
import binascii
import json
import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from api.errors import InvalidCursor
from api.models import File


class FileOut(BaseModel):
    id: uuid.UUID
    name: str
    created_ad: datetime = Field(description="Creation time (the seed contract's field name).")
    path: str
    size: int | None
    content_type: str | None
    etag: str | None
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
    try:
        after = json.loads(base64.urlsafe_b64decode(cursor.encode("ascii")))["after"]
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeError):
        raise InvalidCursor() from None
    if not isinstance(after, str):
        raise InvalidCursor()
    return after
