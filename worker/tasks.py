"""arq jobs. Each takes string ids, reloads state and may run any number of times."""

import logging
from typing import Any

from arq import Retry
from botocore.exceptions import BotoCoreError, ClientError
from redis.exceptions import RedisError
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.config import Settings
from api.db import run_after_commit
from api.files import confirmation
from api.files.repository import UploadRepository
from api.jobs import CONFIRM_UPLOAD, confirm_job_id, schedule_delete
from api.storage import Storage

log = logging.getLogger(__name__)

Context = dict[str, Any]
MAX_RETRY_DELAY_SECONDS = 60.0


def is_transient(error: BaseException) -> bool:
    if isinstance(error, ClientError):
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return int(status) >= 500
    if isinstance(error, DBAPIError):
        return isinstance(error, OperationalError) or error.connection_invalidated
    return isinstance(error, (BotoCoreError, RedisError, OSError, TimeoutError))


def retry_later(ctx: Context, error: BaseException, **ids: str) -> Retry:
    delay = min(0.5 * 2 ** (ctx.get("job_try", 1) - 1), MAX_RETRY_DELAY_SECONDS)
    log.warning("transient failure; retrying", extra={**ids, "error": repr(error), "defer": delay})
    return Retry(defer=delay)


def _deps(ctx: Context) -> tuple[async_sessionmaker[AsyncSession], Storage, Settings]:
    return ctx["sessionmaker"], ctx["storage"], ctx["settings"]


async def confirm_upload(ctx: Context, object_key: str) -> str:
    """Confirm the upload whose object landed at ``object_key`` (``confirmation.py``)."""
    sessionmaker, storage, settings = _deps(ctx)
    try:
        async with sessionmaker() as session:
            result = await confirmation.confirm_upload(
                session, storage, ctx["redis"], settings, object_key
            )
            await session.commit()
            await run_after_commit(session)
            if result.outcome == "unknown":
                await schedule_delete(ctx["redis"], storage, object_key, "no upload claims it")
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


async def delete_object(ctx: Context, object_key: str) -> None:
    storage: Storage = ctx["storage"]
    try:
        await storage.delete(object_key)
    except Exception as error:
        if is_transient(error):
            raise retry_later(ctx, error, object_key=object_key) from error
        log.exception("object deletion failed", extra={"object_key": object_key})
        return
    log.info("object deleted", extra={"object_key": object_key})


async def reconcile_uploads(ctx: Context) -> dict[str, int]:
    """Recover what notifications missed: confirm landed objects, expire abandoned intents."""
    sessionmaker, storage, settings = _deps(ctx)
    counts = {"confirm_queued": 0, "expired": 0, "files_removed": 0}
    async with sessionmaker() as session:
        uploads = UploadRepository(session)
        now = await uploads.now()
        pending = await uploads.pending(settings.reconcile_batch_size)
    expired: list[str] = []
    for object_key, expires_at in pending:
        if await storage.head(object_key) is not None:
            await ctx["redis"].enqueue_job(
                CONFIRM_UPLOAD, object_key, _job_id=confirm_job_id(object_key, "reconcile")
            )
            counts["confirm_queued"] += 1
        elif expires_at < now:
            expired.append(object_key)
    async with sessionmaker() as session:
        uploads = UploadRepository(session)
        if expired:
            counts["expired"] = await uploads.expire(expired, now)
        counts["files_removed"] = await uploads.remove_contentless_files()
        await session.commit()
    log.info("reconcile ran", extra=counts)
    return counts
