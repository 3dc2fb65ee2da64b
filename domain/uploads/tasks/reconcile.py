"""Reconcile: recover what notifications missed and close what nobody will finish."""

import logging
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from domain.files.repository import UploadRepository
from domain.models import UploadKind, UploadStatus
from domain.objects.outbox import Outbox
from domain.uploads.confirmation import confirm_in_transaction
from infra import metrics
from infra.config import Settings
from infra.db import Database
from infra.storage.adapter import MultipartGone, ObjectInfo, Storage

log = logging.getLogger(__name__)

NOTHING_ARRIVED = "no object had arrived when it closed"


async def _over_reservation(
    storage: Storage, unsized: Sequence[tuple[str, str, int]]
) -> dict[str, str]:
    """Of the multipart uploads whose parts carry no length (Uppy's), those whose parts storage
    holds passed their reservation, with the reason: the rejection that aborts them."""
    over: dict[str, str] = {}
    for object_key, multipart_upload_id, reserved in unsized:
        try:
            parts = await storage.list_parts(object_key, multipart_upload_id)
        except MultipartGone:
            continue
        stored = sum(part.size for part in parts)
        if stored > reserved:
            over[object_key] = f"its parts hold {stored} bytes, past the {reserved} reserved for it"
    return over


async def reconcile_uploads(
    database: Database, storage: Storage, settings: Settings
) -> dict[str, int]:
    """Recover what notifications missed and close what nobody will finish.

    - a pending direct upload whose object is there is confirmed;
    - one still without an object past its expiry is expired;
    - a proxied upload whose lease ran out (its API process died) is failed;
    - a confirmed direct upload whose URL may still be used is re-checked: a changed etag is a
      new upload of the same key, confirmed (and checked against the limits) again.
    - a multipart upload whose parts carry no length (Uppy's) and passed its reservation is
      rejected.
    A failed or rejected upload's key goes to the outbox, with its storage multipart upload if
    it has one (the drain aborts it); an expired one's key does not, since a PUT that started
    in time may still be landing (confirmation then decides by its Last-Modified, and the
    sweep deletes what nobody confirms), but its multipart upload, if any, is aborted through
    the outbox. File rows left without content or pending upload are removed.
    """
    counts = dict.fromkeys(
        (
            "confirmed",
            "rechecked",
            "expired",
            "failed",
            "over_reservation",
            "multipart_aborted",
            "files_removed",
        ),
        0,
    )
    async with database.reading() as session:
        uploads = UploadRepository(session)
        now = await uploads.now()
        pending = await uploads.pending(settings.jobs.reconcile_batch_size)
        confirmed = await uploads.recently_confirmed(settings.jobs.reconcile_batch_size)
        unsized = await uploads.unsized_multipart(settings.jobs.reconcile_batch_size)
    to_expire: list[str] = []
    to_fail: list[str] = []
    for object_key, expires_at, kind in pending:
        if kind == UploadKind.proxied:
            if expires_at < now:
                to_fail.append(object_key)
        elif await storage.head(object_key) is not None:
            result = await confirm_in_transaction(database, storage, settings, object_key)
            counts["confirmed"] += result.outcome == "confirmed"
        elif expires_at < now:
            to_expire.append(object_key)
    heads: dict[str, ObjectInfo | None] = {}
    rechecked: set[str] = set()
    for object_key, etag in confirmed:  # a key once per holder: HEADed and rechecked once
        if object_key in rechecked:
            continue
        if object_key not in heads:
            heads[object_key] = await storage.head(object_key)
        info = heads[object_key]
        if info is not None and info.etag != etag:
            await confirm_in_transaction(database, storage, settings, object_key)
            rechecked.add(object_key)
            counts["rechecked"] += 1

    over = await _over_reservation(storage, unsized)

    async def close(session: AsyncSession) -> tuple[list[str], list[str], list[str], int]:
        uploads = UploadRepository(session)
        expired = await uploads.close_expired(to_expire, UploadStatus.expired, NOTHING_ARRIVED)
        failed = await uploads.close_expired(
            to_fail, UploadStatus.failed, "its API process stopped streaming it"
        )
        rejected = await uploads.close_pending(over)
        for _ in rejected:
            metrics.upload_rejected(session, "quota")
        multipart = await uploads.multipart_ids([*expired, *failed, *rejected])
        # An expired upload's key stays unless a multipart upload must be aborted: a PUT that
        # started before its URL expired may land after the HEAD, and confirmation decides by
        # when it landed (the sweep removes the objects nobody confirms).
        closed = [*failed, *rejected, *(key for key in expired if key in multipart)]
        await Outbox(session).add_many(closed, "upload closed unfinished", multipart)
        return expired, failed, rejected, len(multipart)

    async def remove_contentless(session: AsyncSession) -> int:
        return await UploadRepository(session).remove_contentless_files()

    if to_expire or to_fail or over:
        expired, failed, rejected, multipart = await database.transaction(close)
        counts["expired"], counts["failed"] = len(expired), len(failed)
        counts["over_reservation"], counts["multipart_aborted"] = len(rejected), multipart
        metrics.uploads_expired(len(expired))
        metrics.uploads_failed("lease_expired", len(failed))
        for object_key in rejected:
            log.warning(
                "upload rejected", extra={"object_key": object_key, "reason": over[object_key]}
            )
    counts["files_removed"] = await database.transaction(remove_contentless)
    log.info("reconcile ran", extra=counts)
    return counts
