"""The outbox drain (a worker task): delete the recorded objects from storage, then their rows.

Deleting an object twice is harmless, so rows are claimed with ``SKIP LOCKED`` and several
workers can drain at once; a row whose deletion failed is retried later with a growing delay.
Objects are shared (copies point at one object), so the drain deletes an object only when, in
its own transaction, no file and no pending upload references it: a row whose object is still
referenced is dropped and the object kept (the last reference's removal queues it again).
"""

import asyncio
import logging
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from domain.files.repository import UploadRepository
from domain.models import ObjectDeletion
from domain.objects.outbox import Outbox
from infra.config import Settings
from infra.db import Database
from infra.storage.adapter import Storage
from infra.transient import is_transient, storage_fields

log = logging.getLogger(__name__)


async def _delete(storage: Storage, row: ObjectDeletion, *, referenced: bool) -> None:
    """The row's multipart upload first (no part may complete into the object after it is
    deleted), then the object unless something still references it; both are no-ops when
    already gone."""
    if row.multipart_upload_id is not None:
        await storage.abort_multipart_upload(row.object_key, row.multipart_upload_id)
    if not referenced:
        await storage.delete(row.object_key)


@dataclass(frozen=True, slots=True)
class DrainResult:
    deleted: int
    deferred: int
    kept: int = 0


async def _drain_batch(session: AsyncSession, storage: Storage, limit: int) -> DrainResult:
    outbox = Outbox(session)
    rows = await outbox.claim(limit)
    unreferenced = await UploadRepository(session).unreferenced([row.object_key for row in rows])
    referenced = [row.object_key not in unreferenced for row in rows]
    results = await asyncio.gather(
        *(
            _delete(storage, row, referenced=kept)
            for row, kept in zip(rows, referenced, strict=True)
        ),
        return_exceptions=True,
    )
    done: list[int] = []
    deferred = kept = 0
    for row, result, is_referenced in zip(rows, results, referenced, strict=True):
        if not isinstance(result, BaseException) and is_referenced:
            done.append(row.id)
            kept += 1
            log.info(
                "object kept: still referenced",
                extra={"object_key": row.object_key, "reason": row.reason},
            )
            continue
        if not isinstance(result, BaseException):
            done.append(row.id)
            log.info(
                "object deleted",
                extra={
                    "object_key": row.object_key,
                    "reason": row.reason,
                    "multipart_aborted": row.multipart_upload_id is not None,
                },
            )
            continue
        if not isinstance(result, Exception):
            raise result
        delay = await outbox.defer(row, result)
        deferred += 1
        level = logging.WARNING if is_transient(result) else logging.ERROR
        log.log(
            level,
            "object deletion failed; retrying later",
            extra={
                "object_key": row.object_key,
                "error": repr(result),
                "defer": delay,
                **storage_fields(result),
            },
        )
    await outbox.remove(done)
    return DrainResult(len(done) - kept, deferred, kept)


async def drain_outbox(database: Database, storage: Storage, settings: Settings) -> dict[str, int]:
    """Delete every due object, a batch per transaction, until fewer than a batch are due."""
    deleted = deferred = kept = 0
    limit = settings.jobs.outbox_batch_size
    while True:
        batch = await database.transaction(lambda session: _drain_batch(session, storage, limit))
        deleted, deferred = deleted + batch.deleted, deferred + batch.deferred
        kept += batch.kept
        if batch.deleted + batch.deferred + batch.kept < limit:
            break
    if deleted or deferred or kept:
        log.info("outbox drained", extra={"deleted": deleted, "deferred": deferred, "kept": kept})
    return {"deleted": deleted, "deferred": deferred, "kept": kept}
