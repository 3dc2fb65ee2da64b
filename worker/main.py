"""arq worker entry point: ``arq worker.main.WorkerSettings``."""

import contextlib
from typing import Any, ClassVar

from arq import cron
from arq.connections import RedisSettings
from arq.typing import WorkerCoroutine

from api.config import get_settings
from api.db import create_engine, create_sessionmaker
from api.logging import configure_logging
from api.storage import open_storage
from worker.tasks import confirm_upload, delete_object, reconcile_uploads

settings = get_settings()


async def startup(ctx: dict[str, Any]) -> None:
    configure_logging(settings.log_level)
    stack = contextlib.AsyncExitStack()
    ctx["stack"] = stack
    ctx["settings"] = settings
    engine = create_engine(settings)
    stack.push_async_callback(engine.dispose)
    ctx["sessionmaker"] = create_sessionmaker(engine)
    ctx["storage"] = await stack.enter_async_context(open_storage(settings))


async def shutdown(ctx: dict[str, Any]) -> None:
    await ctx["stack"].aclose()


class WorkerSettings:
    functions: ClassVar[list[WorkerCoroutine]] = [confirm_upload, delete_object]
    cron_jobs: ClassVar = [
        cron(
            reconcile_uploads,
            minute=set(range(0, 60, settings.reconcile_interval_minutes)),
            second=0,
            run_at_startup=True,
            unique=True,
        )
    ]
    on_startup = startup
    on_shutdown = shutdown
    redis_settings = RedisSettings.from_dsn(settings.redis_url)
    poll_delay = settings.worker_poll_delay_seconds
    max_tries = settings.worker_max_tries
    max_jobs = settings.worker_max_jobs
    keep_result = 60
