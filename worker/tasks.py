"""arq jobs. Each takes string ids, reloads state and may run any number of times."""

import functools
import logging
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime
from typing import Any

from arq import Retry

from domain.objects.tasks import drain, sweep
from domain.trash.tasks import purge as purging
from domain.uploads import confirmation
from domain.uploads.tasks import reconcile
from infra import metrics
from infra.jobs import CONFIRM_UPLOAD
from infra.transient import is_transient, storage_fields
from worker.context import Context, deps_of
from worker.metrics import instrumented

log = logging.getLogger(__name__)

MAX_RETRY_DELAY_SECONDS = 60.0


def retry_later(ctx: Context, error: BaseException, **ids: str) -> Retry:
    delay = min(0.5 * 2 ** (ctx.get("job_try", 1) - 1), MAX_RETRY_DELAY_SECONDS)
    log.warning(
        "transient failure; retrying",
        extra={**ids, "error": repr(error), "defer": delay, **storage_fields(error)},
    )
    return Retry(defer=delay)


def skips_outages(
    job: Callable[[Context], Awaitable[dict[str, int]]],
) -> Callable[..., Coroutine[Any, Any, dict[str, int]]]:
    """A periodic job that meets an outage waits for its next tick: a warning, not arq's
    traceback at error level (it is counted as a failed run all the same)."""

    @functools.wraps(job)
    async def run(ctx: Context) -> dict[str, int]:
        try:
            return await job(ctx)
        except Exception as error:
            if not is_transient(error):
                raise
            log.warning(
                "periodic job skipped: a backing service is unavailable",
                extra={"job": job.__name__, "error": repr(error), **storage_fields(error)},
            )
            return {"skipped": 1}

    return run


@instrumented
async def confirm_upload(
    ctx: Context, object_key: str, landed_at: float | None = None, etag: str | None = None
) -> str:
    """Confirm the upload whose object landed at ``object_key`` (``confirmation.py``);
    ``landed_at`` (a POSIX time) is when it landed and ``etag`` the version the notification
    reported (both absent from older jobs)."""
    landed = datetime.fromtimestamp(landed_at, UTC) if landed_at is not None else None
    try:
        deps = deps_of(ctx)
        result = await confirmation.confirm_in_transaction(
            deps.database, deps.storage, deps.settings, object_key, landed, etag
        )
    except Exception as error:
        if is_transient(error):
            raise retry_later(ctx, error, object_key=object_key) from error
        log.exception("confirmation failed", extra={"object_key": object_key})
        metrics.job_failed(CONFIRM_UPLOAD)
        return "failed"
    upload_id = str(result.upload.id) if result.upload else None
    log.info(
        "confirmation ran",
        extra={"object_key": object_key, "upload_id": upload_id, "outcome": result.outcome},
    )
    return result.outcome


@skips_outages
@instrumented
async def drain_outbox(ctx: Context) -> dict[str, int]:
    """Delete the objects the outbox holds (``domain.objects.tasks.drain``)."""
    deps = deps_of(ctx)
    counts = await drain.drain_outbox(deps.database, deps.storage, deps.settings)
    metrics.outbox_drained(counts["deleted"])
    return counts


@skips_outages
@instrumented
async def sweep_bucket(ctx: Context) -> dict[str, int]:
    """Delete what no row references (``files.sweep``): the safety net under every route."""
    deps = deps_of(ctx)
    return await sweep.sweep_bucket(deps.database, deps.storage, deps.redis, deps.settings)


@skips_outages
@instrumented
async def purge(ctx: Context) -> dict[str, int]:
    """Trash past its retention and versions beyond the limit (``domain.trash.tasks.purge``)."""
    deps = deps_of(ctx)
    return await purging.purge(deps.database, deps.settings)


@skips_outages
@instrumented
async def reconcile_uploads(ctx: Context) -> dict[str, int]:
    """Confirm missed uploads, close abandoned ones (``files.reconcile``)."""
    deps = deps_of(ctx)
    return await reconcile.reconcile_uploads(deps.database, deps.storage, deps.settings)
