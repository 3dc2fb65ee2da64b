"""The arq worker: its jobs, schedules and lifecycle, built from settings read at startup.

Run it with ``python -m worker``, which outlives Redis restarts. ``arq worker.main.WorkerSettings``
works too (the class is built on first access, not at import), but arq exits when it loses Redis.
"""

import contextlib
from typing import Any

from arq import cron, func
from arq.connections import RedisSettings
from arq.cron import CronJob
from arq.typing import WorkerCoroutine

from infra.config import Settings, get_settings
from infra.jobs import CONFIRM_UPLOAD, DRAIN_OUTBOX, PURGE, RECONCILE_UPLOADS, SWEEP_BUCKET
from infra.logging import configure_logging
from worker import metrics as worker_metrics
from worker.context import open_context
from worker.tasks import confirm_upload, drain_outbox, purge, reconcile_uploads, sweep_bucket


def every(seconds: int) -> dict[str, Any]:
    """A cron schedule that fires every ``seconds`` (validated by the settings to fit one)."""
    if seconds < 60:
        return {"second": set(range(0, 60, seconds))}
    return {"minute": set(range(0, 60, seconds // 60)), "second": 0}


def periodic(coroutine: WorkerCoroutine, name: str, seconds: int) -> CronJob:
    return cron(coroutine, name=name, run_at_startup=True, unique=True, **every(seconds))


def worker_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments of ``arq.Worker``: every job, schedule and limit, from ``settings``."""

    async def startup(ctx: dict[str, Any]) -> None:
        configure_logging(settings.observability.log_level)
        stack = contextlib.AsyncExitStack()
        worker_metrics.start(settings, stack)
        ctx.update(await open_context(settings, stack, ctx["redis"]))
        ctx["stack"] = stack

    async def shutdown(ctx: dict[str, Any]) -> None:
        await ctx["stack"].aclose()

    return {
        "functions": [func(confirm_upload, name=CONFIRM_UPLOAD)],
        "cron_jobs": [
            periodic(
                reconcile_uploads, RECONCILE_UPLOADS, settings.jobs.reconcile_interval_seconds
            ),
            periodic(drain_outbox, DRAIN_OUTBOX, settings.jobs.outbox_drain_interval_seconds),
            periodic(sweep_bucket, SWEEP_BUCKET, settings.jobs.sweep_interval_seconds),
            periodic(purge, PURGE, settings.retention.purge_interval_seconds),
        ],
        "on_startup": startup,
        "on_shutdown": shutdown,
        "redis_settings": RedisSettings.from_dsn(settings.redis.url),
        "poll_delay": settings.worker.poll_delay_seconds,
        "max_tries": settings.worker.max_tries,
        "max_jobs": settings.worker.max_jobs,
        # No kept results: a finished job's id must never make a later enqueue with it a no-op.
        "keep_result": 0,
    }


def __getattr__(name: str) -> type:
    """``arq worker.main.WorkerSettings``: built on first access, never at import."""
    if name == "WorkerSettings":
        return type("WorkerSettings", (), worker_options(get_settings()))
    raise AttributeError(name)
