"""arq worker entry point: ``arq worker.main.WorkerSettings``."""

import contextlib
from typing import Any, ClassVar

from arq import cron, func
from arq.connections import RedisSettings
from arq.cron import CronJob
from arq.typing import WorkerCoroutine
from arq.worker import Function

from api.config import get_settings
from api.jobs import CONFIRM_UPLOAD, DRAIN_OUTBOX, RECONCILE_UPLOADS, SWEEP_BUCKET
from api.logging import configure_logging
from worker import metrics as worker_metrics
from worker.context import open_context
from worker.tasks import confirm_upload, drain_outbox, reconcile_uploads, sweep_bucket

settings = get_settings()


async def startup(ctx: dict[str, Any]) -> None:
    configure_logging(settings.log_level)
    stack = contextlib.AsyncExitStack()
    worker_metrics.start(settings, stack)
    ctx.update(await open_context(settings, stack, ctx["redis"]))
    ctx["stack"] = stack


async def shutdown(ctx: dict[str, Any]) -> None:
    await ctx["stack"].aclose()


def every(seconds: int) -> dict[str, Any]:
    """A cron schedule that fires every ``seconds`` (validated by the settings to fit one)."""
    if seconds < 60:
        return {"second": set(range(0, 60, seconds))}
    return {"minute": set(range(0, 60, seconds // 60)), "second": 0}


def periodic(coroutine: WorkerCoroutine, name: str, seconds: int) -> CronJob:
    return cron(coroutine, name=name, run_at_startup=True, unique=True, **every(seconds))


class WorkerSettings:
    functions: ClassVar[list[Function]] = [func(confirm_upload, name=CONFIRM_UPLOAD)]
    cron_jobs: ClassVar[list[CronJob]] = [
        periodic(reconcile_uploads, RECONCILE_UPLOADS, settings.reconcile_interval_seconds),
        periodic(drain_outbox, DRAIN_OUTBOX, settings.outbox_drain_interval_seconds),
        periodic(sweep_bucket, SWEEP_BUCKET, settings.sweep_interval_seconds),
    ]
    on_startup = startup
    on_shutdown = shutdown
    redis_settings = RedisSettings.from_dsn(settings.redis_url)
    poll_delay = settings.worker_poll_delay_seconds
    max_tries = settings.worker_max_tries
    max_jobs = settings.worker_max_jobs
    # No kept results: a finished job's id must never make a later enqueue with it a no-op.
    keep_result = 0
