"""Run one maintenance pass now and print its counts as JSON: ``python -m worker.once JOB``.

For operators (after an outage, before a backup) and for the integrity soak, which settles the
service with them before it checks its invariants.
"""

import asyncio
import contextlib
import json
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from infra.config import get_settings
from infra.logging import configure_logging
from worker.context import open_context
from worker.tasks import drain_outbox, purge, reconcile_uploads, sweep_bucket

JOBS: dict[str, Callable[[dict[str, Any]], Awaitable[dict[str, int]]]] = {
    "reconcile": reconcile_uploads,
    "drain": drain_outbox,
    "sweep": sweep_bucket,
    "purge": purge,
}


async def run(job: str) -> dict[str, int]:
    settings = get_settings()
    configure_logging(settings.observability.log_level)
    async with contextlib.AsyncExitStack() as stack:
        ctx = await open_context(settings, stack)
        return await JOBS[job](ctx)


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in JOBS:
        print(f"usage: python -m worker.once {{{','.join(JOBS)}}}", file=sys.stderr)
        return 2
    print(json.dumps(asyncio.run(run(argv[0]))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
