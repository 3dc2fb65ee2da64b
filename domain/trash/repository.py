"""Queries on one owner's trash: entries (a file, or a folder as one entry) and their files.

A file goes to the trash as its row, moved into ``trashed_files`` with the same id (its versions,
keyed by that id, wait where they are); a folder's files move in one statement, its folders
into the entry's arrays. Restoring rebases the paths and moves the rows back.
"""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, Text, delete, func, insert, literal, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert as upsert
from sqlalchemy.ext.asyncio import AsyncSession

from domain.folders.repository import below, rebased
from domain.models import File, Folder, TrashedFile, TrashEntry
from domain.objects.outbox import Outbox

# The columns a trashed file keeps of its row, in both tables.
_KEPT = (
    *("id", "path", "name", "object_key", "size"),
    *("etag", "content_type", "sha256", "created_at", "modified_at"),
)


@dataclass(frozen=True, slots=True)
class Taken:
    files: int
    bytes: int


class TrashRepository:
    def __init__(self, session: AsyncSession, owner_id: uuid.UUID) -> None:
        self.session = session
        self.owner_id = owner_id

    async def put(self, path: str, files: ColumnElement[bool], retention_seconds: int) -> Taken:
        """A new entry for ``path`` holding the owner's files matching ``files`` (their rows
        leave ``files``; rows without content go for good: an upload still pending for one is
        rejected when it lands) and, for a folder, the folders below it."""
        entry_id = uuid.uuid4()
        purge_at = func.now() + func.make_interval(0, 0, 0, 0, 0, 0, retention_seconds)
        await self.session.execute(
            insert(TrashEntry).values(
                id=entry_id,
                owner_id=self.owner_id,
                path=path,
                files=0,
                size=0,
                purge_at=purge_at,
            )
        )
        gone = (
            delete(File)
            .where(File.owner_id == self.owner_id, files)
            .returning(*(File.__table__.c[name] for name in _KEPT))
            .cte("gone")
        )
        kept = (
            insert(TrashedFile)
            .from_select(
                ["entry_id", "owner_id", *_KEPT],
                select(
                    literal(entry_id), literal(self.owner_id), *(gone.c[name] for name in _KEPT)
                ).where(gone.c.object_key.is_not(None)),
                include_defaults=False,
            )
            .returning(TrashedFile.size)
            .cte("kept")
        )
        totals = select(func.count(kept.c.size), func.coalesce(func.sum(kept.c.size), 0))
        count, size = (await self.session.execute(totals)).one()
        values: dict[str, object] = {"files": count, "size": size}
        if path.endswith("/"):
            folders = (
                await self.session.execute(
                    delete(Folder)
                    .where(Folder.owner_id == self.owner_id, below(Folder.path, path))
                    .returning(Folder.path, Folder.explicit)
                )
            ).all()
            if folders:  # else the column's empty default stays
                values["folders"] = [row.path for row in folders]
                values["explicit_folders"] = [row.path for row in folders if row.explicit]
        await self.session.execute(
            update(TrashEntry).where(TrashEntry.id == entry_id).values(**values)
        )
        return Taken(int(count), int(size))

    async def page(
        self, after: tuple[datetime, uuid.UUID] | None, limit: int
    ) -> Sequence[TrashEntry]:
        """Entries newest first."""
        query = select(TrashEntry).where(TrashEntry.owner_id == self.owner_id)
        if after is not None:
            query = query.where(tuple_(TrashEntry.deleted_at, TrashEntry.id) < tuple_(*after))
        query = query.order_by(TrashEntry.deleted_at.desc(), TrashEntry.id.desc()).limit(limit)
        return (await self.session.execute(query)).scalars().all()

    async def lock(self, entry_id: uuid.UUID) -> TrashEntry | None:
        query = (
            select(TrashEntry)
            .where(TrashEntry.owner_id == self.owner_id, TrashEntry.id == entry_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        return (await self.session.execute(query)).scalar_one_or_none()

    async def lock_all(self) -> Sequence[TrashEntry]:
        query = (
            select(TrashEntry)
            .where(TrashEntry.owner_id == self.owner_id)
            .order_by(TrashEntry.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        return (await self.session.execute(query)).scalars().all()

    async def restore(self, entry: TrashEntry, target: str) -> int:
        """Put the entry's files back, rebased from its path onto ``target`` (a file entry takes
        ``target``'s name), and its folders; the entry goes. The files restored."""
        folder = entry.path.endswith("/")
        name = TrashedFile.name if folder else literal(target.rsplit("/", 1)[-1], Text)
        path = rebased(TrashedFile.path, entry.path, target) if folder else literal(target, Text)
        source = select(
            TrashedFile.owner_id,
            path,
            name,
            *(
                TrashedFile.__table__.c[column]
                for column in _KEPT
                if column not in {"path", "name"}
            ),
        ).where(TrashedFile.entry_id == entry.id)
        columns = ["owner_id", "path", "name", *(c for c in _KEPT if c not in {"path", "name"})]
        back = insert(File).from_select(columns, source, include_defaults=False)
        restored = (await self.session.execute(back)).rowcount  # type: ignore[attr-defined]
        if entry.folders:
            explicit = set(entry.explicit_folders)
            rows = [
                {
                    "owner_id": self.owner_id,
                    "path": target + path[len(entry.path) :],
                    "explicit": path in explicit,
                }
                for path in entry.folders
            ]
            statement = upsert(Folder).values(rows)
            statement = statement.on_conflict_do_update(
                index_elements=[Folder.owner_id, Folder.path],
                set_={"explicit": Folder.explicit | statement.excluded.explicit},
            )
            await self.session.execute(statement)
        await self.session.execute(delete(TrashEntry).where(TrashEntry.id == entry.id))
        return int(restored)

    async def purge(self, entry: TrashEntry, reason: str) -> None:
        """Delete the entry and its files; their objects go through the outbox (versions are
        the caller's: ``VersionRepository.drop_of_entry``, first)."""
        files = (
            delete(TrashedFile)
            .where(TrashedFile.entry_id == entry.id)
            .returning(TrashedFile.object_key, TrashedFile.size)
        )
        await Outbox(self.session).add_deleted(files, reason)
        await self.session.execute(delete(TrashEntry).where(TrashEntry.id == entry.id))


async def due_entries(session: AsyncSession, limit: int) -> Sequence[TrashEntry]:
    """Entries past their retention, any owner's, oldest first, locked; entries another
    transaction holds (a restore, another purge) are skipped."""
    query = (
        select(TrashEntry)
        .where(TrashEntry.purge_at <= func.now())
        .order_by(TrashEntry.purge_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .execution_options(populate_existing=True)
    )
    return (await session.execute(query)).scalars().all()
