"""``python -m worker``: the arq worker, restarted with backoff whenever it loses Redis.

arq's own runner exits when Redis goes away (a restart, a failover); jobs are safe in Redis or
in PostgreSQL, so the worker only has to come back: it logs, waits and starts a new arq worker.
SIGINT and SIGTERM stop it (running jobs are cancelled and retried later, as with arq).
"""

import asyncio
import contextlib
import logging
import signal
import sys

from arq.worker import Worker

from infra.cache import REDIS_FAILURES
from infra.config import get_settings
from infra.logging import configure_logging
from worker.main import worker_options

log = logging.getLogger("worker")

FIRST_RESTART_DELAY_SECONDS = 0.5
MAX_RESTART_DELAY_SECONDS = 10.0


async def serve() -> None:
    settings = get_settings()
    configure_logging(settings.observability.log_level)
    options = worker_options(settings)
    current = asyncio.current_task()
    assert current is not None
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, current.cancel)
    delay = FIRST_RESTART_DELAY_SECONDS
    while True:
        worker = Worker(**options, handle_signals=False)
        try:
            await worker.main()
            return
        except REDIS_FAILURES as error:
            log.warning(
                "queue unreachable; restarting the worker",
                extra={"error": repr(error), "delay": delay},
            )
        finally:
            with contextlib.suppress(*REDIS_FAILURES):  # closing talks to Redis too
                await worker.close()
        await asyncio.sleep(delay)
        delay = min(delay * 2, MAX_RESTART_DELAY_SECONDS)


def main() -> int:
    try:
        asyncio.run(serve())
    except asyncio.CancelledError:
        log.info("worker stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
