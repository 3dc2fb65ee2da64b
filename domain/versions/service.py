"""Versions: an overwrite keeps what it replaced, so a mistaken overwrite is not final.

The replaced content is the same immutable object, now referenced by a version row: keeping it
costs no storage round trip, and the quota counts it (``users.version_bytes``, part of
``used_bytes``). A file keeps up to ``FILESTORE_VERSIONS_KEPT``; the oldest beyond go through
the outbox in the transaction that adds one.
"""

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from domain.errors import FileNotFound, VersionNotFound
from domain.files.repository import FileRepository
from domain.files.schemas import FileOut
from domain.files.service import FileRecord
from domain.models import File, User
from domain.objects.outbox import Outbox
from domain.versions.repository import VersionRepository, files_over_limit
from domain.versions.schemas import VersionList, VersionOut
from infra.db import Database

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Retired:
    """What replacing a file's content did to its owner's kept bytes: all of them, and those
    in versions."""

    used: int
    versions: int


async def freed_by_replacing(session: AsyncSession, file: File, kept: int) -> int:
    """The bytes replacing ``file``'s content frees (its versions as they are, locked with it):
    all of it when no version is kept, else the versions that one more pushes past ``kept``."""
    if file.object_key is None:
        return 0
    if kept == 0:
        return file.size or 0
    versions = await VersionRepository(session, file.owner_id).of_file(file.id)
    return sum(version.size for version in versions[kept - 1 :])


async def retire_content(session: AsyncSession, file: File, kept: int) -> Retired:
    """``file``'s content is being replaced (the caller holds its lock): kept as its newest
    version, the oldest beyond ``kept`` dropped; with ``kept`` 0, recorded for deletion."""
    if file.object_key is None:
        return Retired(0, 0)
    size = file.size or 0
    if kept == 0:
        await Outbox(session).add(file.object_key, "replaced by a newer upload")
        return Retired(-size, 0)
    versions = VersionRepository(session, file.owner_id)
    await versions.keep(file)
    _, trimmed = await versions.trim(file.id, kept, "version beyond the limit")
    return Retired(-trimmed, size - trimmed)


async def _file(files: FileRepository, reference: uuid.UUID | str) -> File:
    file = await files.find(reference)
    if file is None:
        raise FileNotFound()
    return file


async def list_versions(database: Database, user: User, reference: uuid.UUID | str) -> VersionList:
    async with database.reading() as session:
        file = await _file(FileRepository(session, user.id), reference)
        versions = await VersionRepository(session, user.id).of_file(file.id)
        listed = [VersionOut.current_of(file), *(VersionOut.of(v) for v in versions)]
        return VersionList(path=file.path, versions=listed)


async def version_record(
    database: Database, user: User, record: FileRecord, version_id: uuid.UUID
) -> FileRecord:
    """What to download for ``version_id`` of the file ``record``: its current content (the
    file's own id) or an earlier one."""
    if version_id == record.id:
        return record
    async with database.reading() as session:
        version = await VersionRepository(session, user.id).get(version_id)
    if version is None or version.file_id != record.id:
        raise VersionNotFound()
    return record.model_copy(
        update={
            "object_key": version.object_key,
            "size": version.size,
            "etag": version.etag,
            "sha256": version.sha256,
            "content_type": version.content_type or record.content_type,
            "modified_at": version.modified_at,
        }
    )


async def _locked_version(
    session: AsyncSession, user: User, version_id: uuid.UUID
) -> tuple[File, VersionRepository]:
    """The file a version belongs to, locked (before the version: files first); 404 when the
    version is gone or its file is not live (in the trash: restore the file first)."""
    versions = VersionRepository(session, user.id)
    found = await versions.get(version_id)
    file = await FileRepository(session, user.id).lock(found.file_id) if found else None
    if file is None or file.object_key is None:
        raise VersionNotFound()
    return file, versions


async def restore_version(session: AsyncSession, user: User, version_id: uuid.UUID) -> FileOut:
    """Make a version's content current again; the content it replaces becomes the newest
    version, so the restore itself can be undone. Kept bytes do not change, only where."""
    file, versions = await _locked_version(session, user, version_id)
    version = await versions.get(version_id, lock=True)
    if version is None:
        raise VersionNotFound()
    replaced = file.size or 0
    await versions.keep(file)
    await versions.remove(version)
    file.object_key, file.size, file.etag = version.object_key, version.size, version.etag
    file.sha256, file.content_type = version.sha256, version.content_type or file.content_type
    file.modified_at = datetime.now(UTC)  # the path's content changed now
    await session.flush()
    await FileRepository(session, user.id).account_change(0, versions=replaced - version.size)
    log.info(
        "version restored",
        extra={"user_id": str(user.id), "file_id": str(file.id), "version_id": str(version_id)},
    )
    return FileOut.of(file)


async def delete_version(session: AsyncSession, user: User, version_id: uuid.UUID) -> None:
    """Delete one earlier content for good (its object goes once nothing else holds it)."""
    file, versions = await _locked_version(session, user, version_id)
    count, size = await versions.drop(version_id, "version deleted")
    if not count:
        raise VersionNotFound()
    await FileRepository(session, user.id).account_change(-size, versions=-size)
    log.info(
        "version deleted",
        extra={"user_id": str(user.id), "file_id": str(file.id), "version_id": str(version_id)},
    )


async def trim_over_limit(session: AsyncSession, kept: int, limit: int) -> int:
    """Versions beyond ``kept`` of up to ``limit`` live files (the limit was lowered since they
    were kept); the versions dropped."""
    dropped = 0
    for file in await files_over_limit(session, kept, limit):
        count, size = await VersionRepository(session, file.owner_id).trim(
            file.id, kept, "version beyond the limit"
        )
        await FileRepository(session, file.owner_id).account_change(-size, versions=-size)
        dropped += count
    if dropped:
        log.info("versions trimmed", extra={"versions": dropped, "kept": kept})
    return dropped
