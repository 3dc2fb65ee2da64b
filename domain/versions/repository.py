"""Queries on one owner's file versions: the earlier contents of a file, newest first.

Rows are written only under their file's lock (a trashed file's: its trash entry's). Versions
leave through ``Outbox.add_deleted``, so their objects are deleted once nothing else holds them.
"""

import uuid
from collections.abc import Sequence

from sqlalchemy import ColumnElement, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.models import File, FileVersion, TrashedFile
from domain.objects.outbox import Outbox

_NEWEST_FIRST = (FileVersion.replaced_at.desc(), FileVersion.id.desc())


class VersionRepository:
    def __init__(self, session: AsyncSession, owner_id: uuid.UUID) -> None:
        self.session = session
        self.owner_id = owner_id

    async def of_file(self, file_id: uuid.UUID) -> Sequence[FileVersion]:
        query = (
            select(FileVersion)
            .where(FileVersion.owner_id == self.owner_id, FileVersion.file_id == file_id)
            .order_by(*_NEWEST_FIRST)
        )
        return (await self.session.execute(query)).scalars().all()

    async def get(self, version_id: uuid.UUID, *, lock: bool = False) -> FileVersion | None:
        query = select(FileVersion).where(
            FileVersion.owner_id == self.owner_id, FileVersion.id == version_id
        )
        if lock:
            query = query.with_for_update().execution_options(populate_existing=True)
        return (await self.session.execute(query)).scalar_one_or_none()

    async def keep(self, file: File) -> None:
        """The file's current content as its newest version (before it is replaced)."""
        assert file.object_key is not None
        self.session.add(
            FileVersion(
                id=uuid.uuid4(),
                file_id=file.id,
                owner_id=self.owner_id,
                object_key=file.object_key,
                size=file.size or 0,
                etag=file.etag,
                sha256=file.sha256,
                content_type=file.content_type,
                modified_at=file.modified_at,
                # The clock, not the transaction's start: versions of one file sort by it.
                replaced_at=func.clock_timestamp(),
            )
        )
        await self.session.flush()

    async def remove(self, version: FileVersion) -> None:
        """Drop the row only: its object is someone's content now (a restored version)."""
        await self.session.execute(delete(FileVersion).where(FileVersion.id == version.id))

    async def _drop(self, condition: ColumnElement[bool], reason: str) -> tuple[int, int]:
        statement = (
            delete(FileVersion)
            .where(FileVersion.owner_id == self.owner_id, condition)
            .returning(FileVersion.object_key, FileVersion.size)
        )
        return await Outbox(self.session).add_deleted(statement, reason)

    async def drop_matching(self, condition: ColumnElement[bool], reason: str) -> tuple[int, int]:
        """Drop the owner's versions matching ``condition``; how many and their bytes."""
        return await self._drop(condition, reason)

    async def drop(self, version_id: uuid.UUID, reason: str) -> tuple[int, int]:
        return await self._drop(FileVersion.id == version_id, reason)

    async def trim(self, file_id: uuid.UUID, kept: int, reason: str) -> tuple[int, int]:
        """Drop the file's versions beyond its ``kept`` newest; how many and their bytes."""
        beyond = (
            select(FileVersion.id)
            .where(FileVersion.file_id == file_id)
            .order_by(*_NEWEST_FIRST)
            .offset(kept)
        )
        return await self._drop(FileVersion.id.in_(beyond), reason)

    async def drop_of_files(self, files: ColumnElement[bool], reason: str) -> tuple[int, int]:
        """Drop the versions of the owner's files matching ``files`` (a condition on File)."""
        ids = select(File.id).where(File.owner_id == self.owner_id, files)
        return await self._drop(FileVersion.file_id.in_(ids), reason)

    async def drop_of_entry(self, entry_id: uuid.UUID, reason: str) -> tuple[int, int]:
        """Drop the versions of the files in a trash entry."""
        ids = select(TrashedFile.id).where(TrashedFile.entry_id == entry_id)
        return await self._drop(FileVersion.file_id.in_(ids), reason)


async def files_over_limit(session: AsyncSession, kept: int, limit: int) -> Sequence[File]:
    """Live files holding more than ``kept`` versions (the limit was lowered), locked; files
    another transaction holds are skipped (the next run gets them)."""
    over = (
        select(FileVersion.file_id)
        .join(File, File.id == FileVersion.file_id)
        .group_by(FileVersion.file_id)
        .having(func.count() > kept)
        .limit(limit)
    )
    query = (
        select(File)
        .where(File.id.in_(over))
        .order_by(File.id)
        .with_for_update(skip_locked=True)
        .execution_options(populate_existing=True)
    )
    return (await session.execute(query)).scalars().all()
