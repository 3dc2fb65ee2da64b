"""The outbox drain (a worker task): delete the recorded objects from storage, then their rows.

Deleting an object twice is harmless, so rows are claimed with ``SKIP LOCKED`` and several
workers can drain at once; a row whose deletion failed is retried later with a growing delay.
"""

import asyncio
import logging
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from domain.models import ObjectDeletion
from domain.objects.outbox import Outbox
from infra.config import Settings
from infra.db import Database
from infra.storage.adapter import Storage
from infra.transient import is_transient, storage_fields

log = logging.getLogger(__name__)


async def _delete(storage: Storage, row: ObjectDeletion) -> None:
    """The row's multipart upload first (no part may complete into the object after it is
    deleted), then the object; both are no-ops when already gone."""
    if row.multipart_upload_id is not None:
        await storage.abort_multipart_upload(row.object_key, row.multipart_upload_id)
    await storage.delete(row.object_key)


@dataclass(frozen=True, slots=True)
class DrainResult:
    deleted: int
    deferred: int


async def _drain_batch(session: AsyncSession, storage: Storage, limit: int) -> DrainResult:
    outbox = Outbox(session)
    rows = await outbox.claim(limit)
    results = await asyncio.gather(*(_delete(storage, row) for row in rows), return_exceptions=True)
    done: list[int] = []
    deferred = 0
    for row, result in zip(rows, results, strict=True):
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
    return DrainResult(len(done), deferred)


async def drain_outbox(database: Database, storage: Storage, settings: Settings) -> dict[str, int]:
    """Delete every due object, a batch per transaction, until fewer than a batch are due."""
    deleted = deferred = 0
    limit = settings.outbox_batch_size
    while True:
        batch = await database.transaction(lambda session: _drain_batch(session, storage, limit))
        deleted, deferred = deleted + batch.deleted, deferred + batch.deferred
        if batch.deleted + batch.deferred < limit:
            break
    if deleted or deferred:
        log.info("outbox drained", extra={"deleted": deleted, "deferred": deferred})
    return {"deleted": deleted, "deferred": deferred}
