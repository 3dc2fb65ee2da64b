"""Bucket garbage collection: no object under our prefix outlives every reference to it.

Every other clean-up path is at-least-once at best: a presigned PUT can be replayed after its
upload was replaced, rejected or expired; a process can die between a commit and the enqueue of
the deletion it recorded; queued deletions vanish with Redis; a proxied upload cut off mid-stream
leaves its multipart parts behind. This sweep is the safety net beside them. Each run lists a
bounded batch of keys under ``<prefix>/`` (resuming from a cursor kept in Redis) and deletes the
objects that the database no longer references, then aborts the storage-side multipart uploads
that no pending upload claims.

Why deleting is race-free. Object keys are ``<prefix>/<owner_id>/<upload_id>`` with a fresh
uuid4 per upload, written in the same transaction as the upload row that hands out the means to
write the key (a presigned URL, a proxied stream, a multipart upload id). Once that row is
committed, the key's fate is decided by the database alone: while the upload is ``pending`` its
key is claimed; once confirmed, the key is ``files.object_key`` until confirmation swaps in a
newer object in one transaction; and an upload that is no longer pending never becomes content
again (confirmation refuses it, and no new upload reuses its key). The check reads both tables
in one statement, so one snapshot. A key unreferenced at check time therefore stays
unreferenced for ever, and deleting it later (or twice: DeleteObject is idempotent) loses
nothing; if a replayed URL writes the object again, a later run collects it. The same holds for
multipart uploads, where only a pending upload's claim protects one: an upload in progress
under a confirmed key could only overwrite the file's content.

The grace period (``FILESTORE_SWEEP_GRACE_SECONDS``) covers the one window the argument leaves:
storage state written before its row is committed (a client fast enough to PUT before the
request's commit lands, an intent that calls CreateMultipartUpload inside its transaction), and
listings that trail writes. Ages are measured on storage's clock alone: ``LastModified`` and
``Initiated`` against the ``Date`` of the listing response (the database's ``now()`` only when
storage sends no date), so clock skew between machines cannot make a young object look old.

Bounds and cursors: at most ``FILESTORE_SWEEP_BATCH_SIZE`` objects and as many multipart uploads
are examined per run. Where the listing stopped is kept in Redis; the cursor fails open (lost, or
Redis down: the run starts from the beginning or does not save it, and only repeats work). When a
listing is exhausted the cursor is cleared, so the next run starts over. Two runs at once are
harmless. Transient failures of storage or PostgreSQL propagate to the caller.
"""

import json
import logging
from datetime import datetime, timedelta

from redis.asyncio import Redis

from domain.files.repository import UploadRepository
from infra import metrics
from infra.cache import REDIS_FAILURES
from infra.config import Settings
from infra.db import Database
from infra.storage.adapter import ListedObject, MultipartMarker, MultipartUpload, Storage

__all__ = ["MULTIPART_CURSOR_KEY", "OBJECT_CURSOR_KEY", "sweep_bucket"]

log = logging.getLogger(__name__)

# The last key examined by the previous run (absent: start from the beginning).
OBJECT_CURSOR_KEY = "fs:sweep:cursor"
# Storage's markers where the previous run's multipart listing stopped, as a JSON pair.
MULTIPART_CURSOR_KEY = "fs:sweep:multipart-cursor"


async def sweep_bucket(
    database: Database,
    storage: Storage,
    redis: Redis,
    settings: Settings,
) -> dict[str, int]:
    """One bounded pass: delete unreferenced objects and abort unclaimed multipart uploads
    older than the grace period, under ``<s3_key_prefix>/`` only. Returns the counts."""
    prefix = f"{settings.storage.key_prefix}/"
    grace = timedelta(seconds=settings.jobs.sweep_grace_seconds)
    batch = settings.jobs.sweep_batch_size
    listed, deleted = await _sweep_objects(database, storage, redis, prefix, grace, batch)
    aborted = await _sweep_multipart(database, storage, redis, prefix, grace, batch)
    counts = {"objects_listed": listed, "objects_deleted": deleted, "multipart_aborted": aborted}
    metrics.bucket_swept(counts)
    log.info("bucket swept", extra=counts)
    return counts


async def _sweep_objects(
    database: Database,
    storage: Storage,
    redis: Redis,
    prefix: str,
    grace: timedelta,
    batch: int,
) -> tuple[int, int]:
    cursor = await _load(redis, OBJECT_CURSOR_KEY)
    if cursor is not None and not cursor.startswith(prefix):
        cursor = None  # written under another prefix setting
    listed = deleted = 0
    exhausted = False
    while listed < batch:
        page = await storage.list_objects(prefix, cursor, batch - listed)
        if not page.objects:
            exhausted = True
            break
        listed += len(page.objects)
        cursor = page.objects[-1].key
        # Whatever storage answers, nothing outside the prefix is ours to judge.
        objects = [item for item in page.objects if item.key.startswith(prefix)]
        async with database.reading() as session:
            uploads = UploadRepository(session)
            now = page.storage_time or await uploads.now()
            old = [item for item in objects if _whole_seconds(item.last_modified) <= now - grace]
            garbage = await uploads.unreferenced([item.key for item in old])
        for item in old:
            if item.key in garbage:
                await _delete(storage, item)
                deleted += 1
        if not page.truncated:
            exhausted = True
            break
    await _save(redis, OBJECT_CURSOR_KEY, None if exhausted else cursor)
    return listed, deleted


async def _delete(storage: Storage, item: ListedObject) -> None:
    await storage.delete(item.key)
    log.info(
        "unreferenced object deleted",
        extra={
            "object_key": item.key,
            "reason": "unreferenced",
            "last_modified": item.last_modified.isoformat(),
            "size": item.size,
        },
    )


async def _sweep_multipart(
    database: Database,
    storage: Storage,
    redis: Redis,
    prefix: str,
    grace: timedelta,
    batch: int,
) -> int:
    marker = _parse_marker(await _load(redis, MULTIPART_CURSOR_KEY))
    page = await storage.list_multipart_uploads(prefix, batch, marker)
    uploads_found = [item for item in page.uploads if item.key.startswith(prefix)]
    aborted = 0
    if uploads_found:
        async with database.reading() as session:
            uploads = UploadRepository(session)
            now = page.storage_time or await uploads.now()
            old = [item for item in uploads_found if _whole_seconds(item.initiated) <= now - grace]
            unclaimed = await uploads.unreferenced(
                sorted({item.key for item in old}), pending_only=True
            )
        for item in old:
            if item.key in unclaimed:
                await _abort(storage, item)
                aborted += 1
    await _save(redis, MULTIPART_CURSOR_KEY, _format_marker(page.next))
    return aborted


async def _abort(storage: Storage, item: MultipartUpload) -> None:
    await storage.abort_multipart_upload(item.key, item.upload_id)
    log.info(
        "abandoned multipart upload aborted",
        extra={
            "object_key": item.key,
            "multipart_upload_id": item.upload_id,
            "reason": "unclaimed",
            "initiated": item.initiated.isoformat(),
        },
    )


def _whole_seconds(moment: datetime) -> datetime:
    """Storage's ``Date`` header has whole seconds; sub-second times would look younger than it."""
    return moment.replace(microsecond=0)


def _parse_marker(raw: str | None) -> MultipartMarker | None:
    if raw is None:
        return None
    try:
        key, upload_id = json.loads(raw)
    except (ValueError, TypeError):
        return None
    if not isinstance(key, str) or not isinstance(upload_id, str):
        return None
    return MultipartMarker(key, upload_id)


def _format_marker(marker: MultipartMarker | None) -> str | None:
    return None if marker is None else json.dumps([marker.key, marker.upload_id])


async def _load(redis: Redis, key: str) -> str | None:
    try:
        raw: bytes | str | None = await redis.get(key)
    except REDIS_FAILURES as error:
        log.warning(
            "sweep cursor unavailable; starting from the beginning",
            extra={"cursor": key, "error": repr(error)},
        )
        return None
    if isinstance(raw, bytes):
        return raw.decode("utf-8", "replace")
    return raw


async def _save(redis: Redis, key: str, value: str | None) -> None:
    try:
        if value is None:
            await redis.delete(key)
        else:
            await redis.set(key, value)
    except REDIS_FAILURES as error:
        log.warning(
            "sweep cursor not saved; the next run repeats work",
            extra={"cursor": key, "error": repr(error)},
        )
