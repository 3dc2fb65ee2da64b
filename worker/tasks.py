"""arq jobs. Each takes string ids, reloads state and may run any number of times."""

import logging
from typing import Any

from arq import Retry
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.config import Settings
from api.db import run_transaction
from api.files import confirmation, outbox, sweep
from api.files.repository import UploadRepository
from api.models import UploadKind, UploadStatus
from api.storage import Storage
from api.transient import is_transient

log = logging.getLogger(__name__)

Context = dict[str, Any]
MAX_RETRY_DELAY_SECONDS = 60.0


def retry_later(ctx: Context, error: BaseException, **ids: str) -> Retry:
    delay = min(0.5 * 2 ** (ctx.get("job_try", 1) - 1), MAX_RETRY_DELAY_SECONDS)
    log.warning("transient failure; retrying", extra={**ids, "error": repr(error), "defer": delay})
    return Retry(defer=delay)


def _deps(ctx: Context) -> tuple[async_sessionmaker[AsyncSession], Storage, Settings]:
    return ctx["sessionmaker"], ctx["storage"], ctx["settings"]


async def _confirm(ctx: Context, object_key: str) -> confirmation.Confirmation:
    sessionmaker, storage, settings = _deps(ctx)

    async def work(session: AsyncSession) -> confirmation.Confirmation:
        return await confirmation.confirm_upload(session, storage, settings, object_key)

    return await run_transaction(sessionmaker, work, settings.transaction_retry_seconds)


async def confirm_upload(ctx: Context, object_key: str) -> str:
    """Confirm the upload whose object landed at ``object_key`` (``confirmation.py``)."""
    try:
        result = await _confirm(ctx, object_key)
    except Exception as error:
        if is_transient(error):
            raise retry_later(ctx, error, object_key=object_key) from error
        log.exception("confirmation failed", extra={"object_key": object_key})
        return "failed"
    upload_id = str(result.upload.id) if result.upload else None
    log.info(
        "confirmation ran",
        extra={"object_key": object_key, "upload_id": upload_id, "outcome": result.outcome},
    )
    return result.outcome


async def drain_outbox(ctx: Context) -> dict[str, int]:
    """Delete the objects the outbox holds (``files.outbox``)."""
    return await outbox.drain_outbox(*_deps(ctx))


async def sweep_bucket(ctx: Context) -> dict[str, int]:
    """Delete what no row references (``files.sweep``): the safety net under every route."""
    sessionmaker, storage, settings = _deps(ctx)
    return await sweep.sweep_bucket(sessionmaker, storage, ctx["redis"], settings)


async def reconcile_uploads(ctx: Context) -> dict[str, int]:
    """Recover what notifications missed and close what nobody will finish.

    - a pending direct upload whose object is there is confirmed;
    - one still without an object past its expiry is expired;
    - a proxied upload whose lease ran out (its API process died) is failed;
    - a confirmed direct upload whose URL may still be used is re-checked: a changed etag is a
      new upload of the same key, confirmed (and checked against the limits) again.
    Closed uploads' keys go to the outbox (a PUT may have raced the HEAD), and file rows left
    without content or pending upload are removed.
    """
    sessionmaker, storage, settings = _deps(ctx)
    counts = {"confirmed": 0, "rechecked": 0, "expired": 0, "failed": 0, "files_removed": 0}
    async with sessionmaker() as session:
        uploads = UploadRepository(session)
        now = await uploads.now()
        pending = await uploads.pending(settings.reconcile_batch_size)
        confirmed = await uploads.recently_confirmed(settings.reconcile_batch_size)
    to_expire: list[str] = []
    to_fail: list[str] = []
    for object_key, expires_at, kind in pending:
        if kind == UploadKind.proxied:
            if expires_at < now:
                to_fail.append(object_key)
        elif await storage.head(object_key) is not None:
            if (await _confirm(ctx, object_key)).outcome == "confirmed":
                counts["confirmed"] += 1
        elif expires_at < now:
            to_expire.append(object_key)
    for object_key, etag in confirmed:
        info = await storage.head(object_key)
        if info is not None and info.etag != etag:
            await _confirm(ctx, object_key)
            counts["rechecked"] += 1

    async def close(session: AsyncSession) -> tuple[list[str], list[str]]:
        uploads = UploadRepository(session)
        expired = await uploads.close_expired(to_expire, UploadStatus.expired, "never uploaded")
        failed = await uploads.close_expired(
            to_fail, UploadStatus.failed, "its API process stopped streaming it"
        )
        await outbox.Outbox(session).add_many([*expired, *failed], "upload closed unfinished")
        return expired, failed

    async def remove_contentless(session: AsyncSession) -> int:
        return await UploadRepository(session).remove_contentless_files()

    if to_expire or to_fail:
        expired, failed = await run_transaction(
            sessionmaker, close, settings.transaction_retry_seconds
        )
        counts["expired"], counts["failed"] = len(expired), len(failed)
    counts["files_removed"] = await run_transaction(
        sessionmaker, remove_contentless, settings.transaction_retry_seconds
    )
    log.info("reconcile ran", extra=counts)
    return counts
