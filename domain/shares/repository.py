"""Queries on shares: one owner's (create, list, revoke), a link's by its token hash, an upload
link's hold and uploads, and the purge of dead ones.

A share names its target by id; its current path is read with it (a join), so a moved file or
folder shows where it is now. Nothing here is cached: a revoked link stops at once.
"""

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from sqlalchemy import ColumnElement, Table, bindparam, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from domain.models import File, Folder, Share, Upload


@dataclass(frozen=True, slots=True)
class Target:
    """A share with its target as it is now: a file (with content) or a folder's path."""

    share: Share
    file: File | None
    folder_path: str | None

    @property
    def path(self) -> str:
        if self.file is not None:
            return self.file.path
        assert self.folder_path is not None
        return self.folder_path


def _live() -> list[ColumnElement[bool]]:
    """Not expired and not used up (revoked and deleted ones have no row)."""
    return [
        Share.expires_at > func.now(),
        or_(Share.max_downloads.is_(None), Share.downloads < Share.max_downloads),
    ]


class ShareRepository:
    """One owner's shares."""

    def __init__(self, session: AsyncSession, owner_id: uuid.UUID) -> None:
        self.session = session
        self.owner_id = owner_id

    async def add(self, share: Share) -> Share:
        self.session.add(share)
        await self.session.flush()
        await self.session.refresh(share)
        return share

    async def all(self) -> Sequence[Target]:
        query = (
            select(Share, File, Folder.path)
            .outerjoin(File, File.id == Share.file_id)
            .outerjoin(Folder, Folder.id == Share.folder_id)
            .where(Share.owner_id == self.owner_id)
            .order_by(Share.created_at.desc(), Share.id)
        )
        rows = (await self.session.execute(query)).all()
        return [Target(share, file, folder) for share, file, folder in rows]

    async def revoke(self, share_id: uuid.UUID) -> bool:
        statement = (
            delete(Share)
            .where(Share.id == share_id, Share.owner_id == self.owner_id)
            .returning(Share.id)
        )
        return (await self.session.execute(statement)).first() is not None


async def find_live(session: AsyncSession, token_hash: bytes) -> Target | None:
    """The live share whose token hashes to ``token_hash``, with its target."""
    query = (
        select(Share, File, Folder.path)
        .outerjoin(File, File.id == Share.file_id)
        .outerjoin(Folder, Folder.id == Share.folder_id)
        .where(Share.token_hash == token_hash, *_live())
    )
    row = (await session.execute(query)).one_or_none()
    if row is None:
        return None
    share, file, folder = row
    if file is not None and file.object_key is None:
        return None
    return Target(share, file, folder)


@dataclass(frozen=True, slots=True)
class SharedFile:
    """A live file share: what its download's redirect needs and the log says."""

    share_id: uuid.UUID
    owner_id: uuid.UUID
    downloads: int
    max_downloads: int | None
    name: str
    object_key: str
    content_type: str | None


async def find_file_share(
    session: AsyncSession, token_hash: bytes, unlocked: uuid.UUID | None
) -> SharedFile | None:
    """The live file share a token's hash names, with its file, in one statement and no ORM
    objects: a download link's whole lookup. A password share is found only when
    ``unlocked`` is its id. ``None`` when nothing matched, whatever the reason; the caller
    then takes the general path, which tells why."""
    shares, files = cast(Table, Share.__table__), cast(Table, File.__table__)
    statement = select(
        shares.c.id,
        shares.c.owner_id,
        shares.c.downloads,
        shares.c.max_downloads,
        files.c.name,
        files.c.object_key,
        files.c.content_type,
    ).where(
        shares.c.token_hash == token_hash,
        shares.c.file_id == files.c.id,
        files.c.object_key.is_not(None),
        *_live(),
        or_(shares.c.password_hash.is_(None), shares.c.id == unlocked),
    )
    row = (await session.execute(statement)).one_or_none()
    return None if row is None else SharedFile(*row)


async def add_downloads(session: AsyncSession, counts: Mapping[uuid.UUID, int]) -> None:
    """Add counted downloads to their shares (a share gone since is skipped)."""
    shares = cast(Table, Share.__table__)
    statement = (
        update(shares)
        .where(shares.c.id == bindparam("share_id"))
        .values(downloads=shares.c.downloads + bindparam("added"))
    )
    rows = [{"share_id": share_id, "added": added} for share_id, added in counts.items()]
    await session.execute(statement, rows)


async def count_download(session: AsyncSession, share_id: uuid.UUID) -> int | None:
    """Count one download if the share is still live: the check and the count are one
    statement, so concurrent downloads never pass ``max_downloads``. The new count, or
    ``None`` when it is used up, expired or gone."""
    statement = (
        update(Share)
        .where(Share.id == share_id, *_live())
        .values(downloads=Share.downloads + 1)
        .returning(Share.downloads)
    )
    found = (await session.execute(statement)).scalar_one_or_none()
    return None if found is None else int(found)


async def hold_upload_link(session: AsyncSession, share_id: uuid.UUID) -> str | None:
    """The current folder of the live upload link ``share_id``, its row key-share locked until
    the transaction ends (it cannot be revoked or purged meanwhile, and an upload may name
    it); ``None`` when it is no longer live. Taken after the owner's path lock, so the folder
    cannot move between this read and the upload."""
    query = (
        select(Folder.path)
        .select_from(Share)
        .join(Folder, Folder.id == Share.folder_id)
        .where(Share.id == share_id, Share.upload, *_live())
        .with_for_update(of=Share, key_share=True, read=True)
    )
    return (await session.execute(query)).scalar_one_or_none()


async def mark_link_upload(
    session: AsyncSession, upload_id: uuid.UUID, share_id: uuid.UUID
) -> None:
    """Record that the upload was made through the link (its follow-up routes may reach it)."""
    await session.execute(
        update(Upload)
        .where(Upload.id == upload_id)
        .values(share_id=share_id)
        .execution_options(synchronize_session=False)
    )


async def find_link_upload(
    session: AsyncSession, share_id: uuid.UUID, upload_id: uuid.UUID
) -> Upload | None:
    """An upload made through the link ``share_id``; any other is as unknown as a missing one."""
    query = select(Upload).where(Upload.id == upload_id, Upload.share_id == share_id)
    return (await session.execute(query)).scalar_one_or_none()


async def purge_dead(session: AsyncSession, expired_before: datetime, limit: int) -> int:
    """Delete up to ``limit`` shares that expired before ``expired_before``, oldest first;
    rows another transaction holds (an upload through the link) wait for the next run."""
    dead = (
        select(Share.id)
        .where(Share.expires_at < expired_before)
        .order_by(Share.expires_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    statement = delete(Share).where(Share.id.in_(dead.scalar_subquery())).returning(Share.id)
    return len((await session.execute(statement)).all())
