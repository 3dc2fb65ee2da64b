"""The trash: a deleted file, or a deleted folder as one entry, kept until its retention ends.

Deleting moves rows, never bytes: the objects stay where they are, referenced by
``trashed_files`` rows (and a trashed file's versions by theirs), so a restore is rows too.
The trash counts against the quota (``users.trash_bytes``, part of ``used_bytes``). Purging
(``DELETE /trash``, or the worker once ``purge_at`` passes) sends the objects through the
outbox, whose drain deletes each once nothing references it.

Races, decided: a restore and a purge of one entry both lock its row, so one of them finds it
gone (404 ``trash_not_found``, or nothing to purge). A restore whose path a newer file took is
409 ``path_taken`` (pass ``to``); a folder restored under a parent that was moved or deleted
recreates the parent as it was (implicit folders), unless a file holds a path above it (409).
Restoring never needs quota: the trash is counted already.
"""

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, delete
from sqlalchemy.ext.asyncio import AsyncSession

from domain.errors import InvalidCursor, TrashNotFound
from domain.files.paths import enclosing_folders, is_folder, last_segment
from domain.files.repository import FileRepository
from domain.files.schemas import decode_cursor, encode_cursor
from domain.folders import targets
from domain.folders.repository import FolderRepository, Subtree, below
from domain.models import File, TrashEntry, User
from domain.objects.outbox import Outbox
from domain.trash.repository import TrashRepository, due_entries
from domain.trash.schemas import Purged, Restored, TrashEntryOut, TrashPage
from domain.versions.repository import VersionRepository
from infra.config import Settings
from infra.db import Database

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Retention:
    """How long the trash keeps an entry (0: a delete is final) and how many earlier contents
    an overwrite keeps (0: none)."""

    trash_seconds: int
    versions_kept: int

    @classmethod
    def of(cls, settings: Settings) -> "Retention":
        return cls(settings.retention.trash_retention_seconds, settings.retention.versions_kept)


async def _remove(
    session: AsyncSession,
    owner_id: uuid.UUID,
    path: str,
    files: ColumnElement[bool],
    retention: Retention,
    reason: str,
) -> Subtree:
    """The owner's files matching ``files`` (and for a folder ``path``, its folders) leave
    their paths: into one trash entry, or with no retention, for good with their versions."""
    accounts = FileRepository(session, owner_id)
    ids = {"user_id": str(owner_id), "path": path, "reason": reason}
    kind = "folder" if is_folder(path) else "file"
    if retention.trash_seconds:
        taken = await TrashRepository(session, owner_id).put(path, files, retention.trash_seconds)
        await accounts.account_change(0, trash=taken.bytes)
        log.info(
            f"{kind} moved to the trash", extra={**ids, "files": taken.files, "size": taken.bytes}
        )
        return Subtree(taken.files, taken.bytes)
    _, version_bytes = await VersionRepository(session, owner_id).drop_of_files(files, reason)
    gone = (
        delete(File).where(File.owner_id == owner_id, files).returning(File.object_key, File.size)
    )
    count, size = await Outbox(session).add_deleted(gone, reason)
    if is_folder(path):
        await FolderRepository(session, owner_id).drop(path)
    freed = size + version_bytes
    await accounts.account_change(-freed, versions=-version_bytes)
    log.info(
        f"{kind} deleted", extra={**ids, "files": count, "size": size, "versions": version_bytes}
    )
    return Subtree(count, size)


async def remove_file(session: AsyncSession, file: File, retention: Retention, reason: str) -> None:
    """``file`` (locked, under the path lock) leaves its path: to the trash, or for good."""
    await _remove(session, file.owner_id, file.path, File.id == file.id, retention, reason)


async def remove_folder(
    session: AsyncSession, owner_id: uuid.UUID, folder: str, retention: Retention, reason: str
) -> Subtree:
    """``folder`` and everything below it leave (under the path lock), as one trash entry."""
    return await _remove(session, owner_id, folder, below(File.path, folder), retention, reason)


def _trash_cursor(entry: TrashEntry) -> str:
    return encode_cursor(f"{entry.deleted_at.isoformat()}|{entry.id}")


def _after(cursor: str) -> tuple[datetime, uuid.UUID]:
    moment, _, entry_id = decode_cursor(cursor).partition("|")
    try:
        return datetime.fromisoformat(moment), uuid.UUID(entry_id)
    except ValueError:
        raise InvalidCursor() from None


async def list_trash(database: Database, user: User, cursor: str | None, limit: int) -> TrashPage:
    after = _after(cursor) if cursor else None
    async with database.reading() as session:
        entries = await TrashRepository(session, user.id).page(after, limit + 1)
    more = len(entries) > limit
    return TrashPage(
        entries=[TrashEntryOut.of(entry) for entry in entries[:limit]],
        next_cursor=_trash_cursor(entries[limit - 1]) if more else None,
    )


async def _target(files: FileRepository, entry: TrashEntry, to: str | None) -> str:
    """Where the entry goes back: where it was, or ``to`` (as a move reads it); 409 when a
    file or folder holds that path now, or a file holds a path above it."""
    folder = is_folder(entry.path)
    if to is None:
        target = entry.path
    else:
        target = await targets.resolve(files, to, last_segment(entry.path), folder=folder)
    if folder:
        await targets.free_folder(files, FolderRepository(files.session, files.owner_id), target)
    else:
        await targets.free_file(files, target, overwrite=False)
    return target


async def restore(
    session: AsyncSession, user: User, entry_id: uuid.UUID, to: str | None
) -> Restored:
    """Put an entry back, with the ids, dates, contents and versions its files had."""
    files = FileRepository(session, user.id)
    await files.lock_paths()
    trash = TrashRepository(session, user.id)
    entry = await trash.lock(entry_id)
    if entry is None:
        raise TrashNotFound()
    target = await _target(files, entry, to)
    restored = await trash.restore(entry, target)
    await FolderRepository(session, user.id).ensure(enclosing_folders(target))
    await files.account_change(0, trash=-entry.size)
    log.info(
        "restored from the trash",
        extra={
            "user_id": str(user.id),
            "entry_id": str(entry.id),
            "from": entry.path,
            "to": target,
            "files": restored,
        },
    )
    return Restored(path=target, files=restored)


async def purge_entry(session: AsyncSession, entry: TrashEntry, reason: str) -> None:
    """Delete a locked entry for good: its files, their versions, and (through the outbox)
    every object nothing else references."""
    versions = VersionRepository(session, entry.owner_id)
    _, version_bytes = await versions.drop_of_entry(entry.id, reason)
    await TrashRepository(session, entry.owner_id).purge(entry, reason)
    freed = entry.size + version_bytes
    await FileRepository(session, entry.owner_id).account_change(
        -freed, versions=-version_bytes, trash=-entry.size
    )
    log.info(
        "trash entry purged",
        extra={
            "user_id": str(entry.owner_id),
            "entry_id": str(entry.id),
            "path": entry.path,
            "files": entry.files,
            "size": entry.size,
            "versions": version_bytes,
            "reason": reason,
        },
    )


async def purge(session: AsyncSession, user: User, entry_id: uuid.UUID | None) -> Purged:
    """Delete one entry (``entry_id``) or the whole trash for good."""
    trash = TrashRepository(session, user.id)
    if entry_id is None:
        entries = list(await trash.lock_all())
    else:
        entry = await trash.lock(entry_id)
        if entry is None:
            raise TrashNotFound()
        entries = [entry]
    for entry in entries:
        await purge_entry(session, entry, "deleted from the trash")
    if not entries:
        await FileRepository(session, user.id).account_change(0)
    return Purged(purged=len(entries))


async def purge_due(session: AsyncSession, limit: int) -> int:
    """Entries past their retention, up to ``limit``: the worker's purge."""
    entries = await due_entries(session, limit)
    for entry in entries:
        await purge_entry(session, entry, "retention ended")
    return len(entries)
