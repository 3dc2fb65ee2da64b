"""A folder as a zip, streamed as its objects are read (DESIGN §15, folder zip).

Built on zipstream-ng: it writes stored entries with data descriptors, so an entry's bytes go
out as they arrive from storage, never buffered whole (stream-zip buffers a stored entry to
learn its CRC first), switches to ZIP64 past 4 GiB, and can tell the archive's length before
the first byte, which lets a browser show progress. It is synchronous, so each step of the zip
runs in a worker thread and reads storage back on the event loop; the memory held is a chunk
per step plus the central directory, whatever the folder's size.

The listing is read a page at a time, each page in a session of its own: a download that takes
an hour holds no transaction. Up to ``page_files`` files the archive is sized (all entries
known before the first byte); a bigger folder is streamed without a length.
"""

import logging
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Iterator, Sequence
from dataclasses import dataclass

import anyio
import anyio.from_thread
import anyio.to_thread
from sqlalchemy import select
from zipstream import ZipStream

from domain.errors import FolderNotFound
from domain.folders.repository import FolderRepository, below
from domain.models import File
from infra.db import Database
from infra.storage.adapter import ObjectStream, Storage

log = logging.getLogger(__name__)


class ObjectGone(Exception):
    """A member's object vanished while the zip was being written (purged meanwhile)."""


@dataclass(frozen=True, slots=True)
class Member:
    path: str
    name: str
    object_key: str
    size: int


@dataclass(frozen=True, slots=True)
class FolderZip:
    """What the route needs before the first byte: the length if known, and the bytes."""

    files: int | None
    length: int | None
    body: AsyncGenerator[bytes, None]


async def _members(
    database: Database, owner_id: uuid.UUID, folder: str, after: str | None, limit: int
) -> list[Member]:
    query = (
        select(File.path, File.object_key, File.size)
        .where(File.owner_id == owner_id, File.object_key.is_not(None))
        .order_by(File.path)
        .limit(limit)
    )
    if folder != "/":
        query = query.where(below(File.path, folder))
    if after is not None:
        query = query.where(File.path > after)
    async with database.reading() as session:
        rows = (await session.execute(query)).all()
    return [
        Member(path, path.removeprefix(folder).lstrip("/"), key, size or 0)
        for path, key, size in rows
        if key is not None
    ]


class _ObjectChunks:
    """An object's bytes for zipstream-ng, read when the entry is written, not when added.

    Iterated in a worker thread: each chunk is awaited on the event loop.
    """

    def __init__(self, storage: Storage, object_key: str) -> None:
        self.storage = storage
        self.object_key = object_key

    def __iter__(self) -> Iterator[bytes]:
        stream = anyio.from_thread.run(self.storage.open, self.object_key)
        if stream is None:
            raise ObjectGone(self.object_key)
        try:
            while (chunk := anyio.from_thread.run(_next_chunk, stream)) is not None:
                yield chunk
        finally:
            anyio.from_thread.run_sync(stream.close)


async def _next_chunk(stream: ObjectStream) -> bytes | None:
    return await anext(stream.body, None)


def _add(archive: ZipStream, storage: Storage, members: Sequence[Member]) -> None:
    for member in members:
        archive.add(_ObjectChunks(storage, member.object_key), member.name, size=member.size)


async def _drain(steps: Iterator[bytes]) -> AsyncIterator[bytes]:
    """Run a zipstream-ng generator a step at a time in a worker thread; when the consumer
    stops (the client went away), close it there too, so the open object is released."""
    done = object()
    try:
        while (chunk := await anyio.to_thread.run_sync(next, steps, done)) is not done:
            assert isinstance(chunk, bytes)
            yield chunk
    finally:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(_close, steps)


def _close(steps: Iterator[bytes]) -> None:
    close = getattr(steps, "close", None)
    if close is not None:
        close()


async def folder_zip(
    database: Database,
    storage: Storage,
    owner_id: uuid.UUID,
    folder: str,
    page_files: int,
) -> FolderZip:
    """The zip of ``folder`` (a normalised folder path; ``/`` is everything), names relative
    to it; 404 ``folder_not_found`` when no such folder is listed."""
    if folder != "/":
        async with database.reading() as session:
            if await FolderRepository(session, owner_id).find_listed(folder) is None:
                raise FolderNotFound()
    first = await _members(database, owner_id, folder, None, page_files + 1)
    sized = len(first) <= page_files
    archive = ZipStream(sized=sized)  # type: ignore[no-untyped-call]
    _add(archive, storage, first[:page_files])
    length = len(archive) if sized else None
    files = len(first) if sized else None

    log.info(
        "folder zip started",
        extra={"owner_id": str(owner_id), "folder": folder, "files": files, "bytes": length},
    )

    async def body() -> AsyncGenerator[bytes, None]:
        started = time.monotonic()
        sent = 0
        written = 0
        page = first[:page_files]
        finished = False
        try:
            while True:
                async for chunk in _drain(archive.all_files()):  # type: ignore[no-untyped-call]
                    sent += len(chunk)
                    yield chunk
                written += len(page)
                if sized or len(page) < page_files:
                    break
                page = await _members(database, owner_id, folder, page[-1].path, page_files)
                _add(archive, storage, page)
            for chunk in archive.footer():  # type: ignore[no-untyped-call]
                sent += len(chunk)
                yield chunk
            finished = True
        finally:
            log.info(
                "folder zip sent" if finished else "folder zip stopped",
                extra={
                    "owner_id": str(owner_id),
                    "folder": folder,
                    "files": written,
                    "bytes": sent,
                    "seconds": round(time.monotonic() - started, 3),
                },
            )

    return FolderZip(files, length, body())
