"""Files: listing, lookups, download helpers and deletion."""

import hashlib
import json
import logging
import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from domain.errors import FileNotFound
from domain.files.paths import enclosing_folders
from domain.files.repository import FileRepository
from domain.files.schemas import FileList, FileOut, decode_cursor, encode_cursor
from domain.folders.repository import FolderRepository
from domain.models import File, User
from domain.trash import service as trash
from domain.trash.service import Retention
from infra.cache import Cache
from infra.db import Database

log = logging.getLogger(__name__)


class FileRecord(FileOut):
    """A file as cached for lookups: the public fields plus where its bytes are."""

    object_key: str

    @classmethod
    def of(cls, file: File) -> "FileRecord":
        assert file.object_key is not None
        return cls(**FileOut.of(file).model_dump(), object_key=file.object_key)


def cache_name(kind: str, *parts: object) -> str:
    digest = hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()[:32]
    return f"{kind}:{digest}"


async def list_files(
    database: Database,
    cache: Cache,
    user: User,
    prefix: str | None,
    cursor: str | None,
    limit: int,
) -> bytes:
    """A page as JSON bytes: a cache hit goes from the cache to the socket without being parsed,
    and opens no database session."""
    key = Cache.key(user.id, user.generation, cache_name("list", prefix, cursor, limit))
    cached = await cache.get_raw(key)
    if cached is not None:
        return cached
    after = decode_cursor(cursor) if cursor else None
    async with database.reading() as session:
        rows = await FileRepository(session, user.id).page(prefix, after, limit + 1)
    page = (
        FileList(
            account=user.login,
            files=[FileOut.of(row) for row in rows[:limit]],
            next_cursor=encode_cursor(rows[limit - 1].path) if len(rows) > limit else None,
        )
        .model_dump_json()
        .encode()
    )
    await cache.set_raw(key, page)
    return page


async def find_file(
    database: Database,
    cache: Cache,
    user: User,
    reference: uuid.UUID | str,
) -> FileRecord:
    """A file with content; a cache hit opens no database session."""
    key = Cache.key(user.id, user.generation, cache_name("file", reference))
    cached = await cache.get_raw(key)
    if cached is not None:
        return FileRecord.model_validate_json(cached)
    async with database.reading() as session:
        file = await FileRepository(session, user.id).find(reference)
        if file is None:
            raise FileNotFound()
        record = FileRecord.of(file)
    await cache.set_raw(key, record.model_dump_json().encode())
    return record


async def delete_file(
    session: AsyncSession, user: User, reference: uuid.UUID | str, retention: Retention
) -> None:
    """The file leaves its path, to the trash (or with no retention for good: its object, and
    its versions', through the outbox, whose drain keeps any a copy still references), in the
    caller's transaction; lock order: the owner's paths, the file, then (by the cascade)
    uploads, then user. Folders that held only this file go with it."""
    files = FileRepository(session, user.id)
    await files.lock_paths()
    found = await files.find(reference)
    file = await files.lock(found.id) if found else None
    if file is None or file.object_key is None:
        raise FileNotFound()
    await trash.remove_file(session, file, retention, "file deleted")
    await FolderRepository(session, user.id).prune(enclosing_folders(file.path))
