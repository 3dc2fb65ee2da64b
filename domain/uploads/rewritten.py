"""A presigned PUT used again after its upload was confirmed rewrites the object in place, under
every row that recorded its earlier bytes.

Live files (the upload's file and its copies) may take the new bytes: confirmation checks them
like a new upload, and either they all hold the new version or they all lose the content (a
file that loses its content loses its versions too: nothing can reach them any more). What is
*kept* recorded content that no longer exists: a version, or a file in the trash, holding the
object with another etag goes (a trashed file with its versions, and an entry left with no
file and no folder with it), whatever becomes of the new bytes. Nothing may claim a size and
an etag its object does not have.

Locks, before the upload's (files → trash entries → uploads → users): the live files whose
versions hold the object, then the trash entries holding it or a version of one of their files.
"""

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Select, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from domain.files.repository import FileRepository
from domain.models import File, FileVersion, TrashedFile, TrashEntry
from domain.objects.outbox import Outbox
from domain.versions.repository import VersionRepository

log = logging.getLogger(__name__)
T = TypeVar("T")
REASON = "its object was rewritten through a reused URL"


@dataclass(frozen=True, slots=True)
class Kept:
    """The rows locked so that what keeps the object can be dropped."""

    owner_id: uuid.UUID
    object_key: str
    files: Sequence[File]
    entries: Sequence[TrashEntry]


async def _locked(session: AsyncSession, query: Select[T], order: Any) -> Sequence[T]:
    """The rows of ``query``, locked in ``order``."""
    locking = query.order_by(order).with_for_update().execution_options(populate_existing=True)
    return (await session.execute(locking)).scalars().all()


async def lock_kept(
    session: AsyncSession, owner_id: uuid.UUID, object_key: str, locked: set[uuid.UUID]
) -> Kept:
    """Lock the owner's live files whose versions hold ``object_key`` (but those in ``locked``,
    held already), then the trash entries that hold it, in id order."""
    of_key = select(FileVersion.file_id).where(
        FileVersion.owner_id == owner_id, FileVersion.object_key == object_key
    )
    files_query = select(File).where(File.owner_id == owner_id, File.id.in_(of_key))
    files = [f for f in await _locked(session, files_query, File.id) if f.id not in locked]
    entry_ids = select(TrashedFile.entry_id).where(
        TrashedFile.owner_id == owner_id,
        or_(TrashedFile.object_key == object_key, TrashedFile.id.in_(of_key)),
    )
    entries_query = select(TrashEntry).where(
        TrashEntry.owner_id == owner_id, TrashEntry.id.in_(entry_ids)
    )
    entries = await _locked(session, entries_query, TrashEntry.id)
    return Kept(owner_id, object_key, files, entries)


async def drop_stale(session: AsyncSession, kept: Kept, etag: str | None) -> int:
    """Drop the versions and trashed files holding the object with another etag than ``etag``
    (what storage holds now), with the versions of the trashed files dropped; the bytes freed.
    The caller holds the locks of ``lock_kept`` and the owner's."""
    versions = VersionRepository(session, kept.owner_id)
    stale_versions = FileVersion.object_key == kept.object_key
    stale_versions &= FileVersion.etag.is_distinct_from(etag)
    _, version_bytes = await versions.drop_matching(stale_versions, REASON)
    trashed = (
        (
            await session.execute(
                select(TrashedFile).where(
                    TrashedFile.owner_id == kept.owner_id,
                    TrashedFile.object_key == kept.object_key,
                    TrashedFile.etag.is_distinct_from(etag),
                )
            )
        )
        .scalars()
        .all()
    )
    trash_bytes = 0
    if trashed:
        ids = [file.id for file in trashed]
        _, more = await versions.drop_matching(FileVersion.file_id.in_(ids), REASON)
        version_bytes += more
        gone = (
            delete(TrashedFile)
            .where(TrashedFile.id.in_(ids))
            .returning(TrashedFile.object_key, TrashedFile.size)
        )
        _, trash_bytes = await Outbox(session).add_deleted(gone, REASON)
        entries = {entry.id: entry for entry in kept.entries}  # locked by lock_kept
        left = {entry_id: (entry.files, entry.size) for entry_id, entry in entries.items()}
        for file in trashed:
            count, size = left[file.entry_id]
            left[file.entry_id] = (count - 1, size - file.size)
        for entry_id in {file.entry_id for file in trashed}:
            count, size = left[entry_id]
            if count <= 0 and not entries[entry_id].folders:
                await session.execute(delete(TrashEntry).where(TrashEntry.id == entry_id))
            else:
                await session.execute(
                    update(TrashEntry)
                    .where(TrashEntry.id == entry_id)
                    .values(files=count, size=size)
                    .execution_options(synchronize_session=False)
                )
    freed = version_bytes + trash_bytes
    if trashed or version_bytes:
        log.info(
            "kept content of a rewritten object dropped",
            extra={
                "object_key": kept.object_key,
                "trashed_files": len(trashed),
                "version_bytes": version_bytes,
                "trash_bytes": trash_bytes,
            },
        )
    if freed:
        await FileRepository(session, kept.owner_id).account_change(
            -freed, versions=-version_bytes, trash=-trash_bytes
        )
    return freed


async def lose_content(files: FileRepository, holders: Sequence[File], reason: str) -> int:
    """The live ``holders`` (locked) have no content any more, nor versions; the rows go unless
    an upload is pending for them. The bytes freed (accounted here)."""
    if not holders:
        return 0
    ids = [holder.id for holder in holders]
    versions = VersionRepository(files.session, files.owner_id)
    _, version_bytes = await versions.drop_of_files(File.id.in_(ids), reason)
    lost = 0
    for holder in holders:
        lost += holder.size or 0
        holder.object_key, holder.size, holder.etag, holder.sha256 = None, None, None, None
    await files.session.flush()
    await files.account_change(-(lost + version_bytes), versions=-version_bytes)
    for holder in holders:
        await files.delete_if_empty(holder.id)
    return lost + version_bytes
