"""Scheduled faults: processes killed, dependencies stopped, each brought back after a while.

Every fault is recorded with its down interval: from the moment it is injected until the
service answers again (an API's ``/healthz``, Redis' PING, ``pg_ctl -w``, the S3 gateway) or,
for a worker, until it is started again.
"""

import asyncio
import logging
import random
from dataclasses import dataclass

from soak.model import Clock, Fault
from soak.stack import API_COUNT, WORKER_COUNT, Stack

log = logging.getLogger("soak.faults")

KINDS = ("api_kill", "worker_kill", "storage_restart", "redis_restart", "postgres_restart")
# Faults that take a dependency away: the API may answer 503 while they last.
DEPENDENCY_KINDS = frozenset({"storage_restart", "redis_restart", "postgres_restart"})
DOWN_SECONDS = {
    "api_kill": 3.0,
    "worker_kill": 3.0,
    "storage_restart": 4.0,
    "redis_restart": 3.0,
    "postgres_restart": 4.0,
}
FIRST_FAULT_SECONDS = 8.0
# The load goes on this long after the last fault, so recovery happens under load too.
QUIET_TAIL_SECONDS = 15.0


@dataclass(frozen=True, slots=True)
class Planned:
    at: float  # seconds after the load started
    kind: str
    target: int  # which API or worker (0 for the single dependencies)


def plan(load_seconds: float, quick: bool, rng: random.Random) -> list[Planned]:
    """QUICK: each kind once, evenly spread. Full: rounds of every kind in a random order,
    repeated until the quiet tail."""
    last = load_seconds - QUIET_TAIL_SECONDS
    if quick:
        spacing = (last - FIRST_FAULT_SECONDS) / len(KINDS)
        kinds = list(KINDS)
    else:
        spacing = 15.0
        count = int((last - FIRST_FAULT_SECONDS) // spacing)
        kinds = []
        while len(kinds) < count:
            kinds += rng.sample(KINDS, len(KINDS))
        kinds = kinds[:count]
    planned = []
    for number, kind in enumerate(kinds):
        jitter = 0.0 if quick else rng.uniform(-2.0, 2.0)
        target = rng.randrange(API_COUNT if kind == "api_kill" else WORKER_COUNT)
        if kind not in {"api_kill", "worker_kill"}:
            target = 0
        planned.append(Planned(FIRST_FAULT_SECONDS + number * spacing + jitter, kind, target))
    return planned


async def inject(stack: Stack, clock: Clock, planned: Planned, faults: list[Fault]) -> None:
    down = DOWN_SECONDS[planned.kind]
    index = planned.target
    names = {
        "api_kill": f"api-{index + 1}",
        "worker_kill": f"worker-{index + 1}",
        "storage_restart": "seaweedfs",
        "redis_restart": "redis",
        "postgres_restart": "postgresql",
    }
    fault = Fault(planned.kind, names[planned.kind], clock())
    faults.append(fault)
    log.info("fault %s on %s at %.1fs", fault.kind, fault.target, fault.start)
    if planned.kind == "api_kill":
        stack.kill_api(index)
        await asyncio.sleep(down)
        await stack.start_api(index)
    elif planned.kind == "worker_kill":
        stack.kill_worker(index)
        await asyncio.sleep(down)
        stack.start_worker(index)
    elif planned.kind == "storage_restart":
        await stack.stop_storage()
        await asyncio.sleep(down)
        await stack.start_storage()
    elif planned.kind == "redis_restart":
        stack.kill_redis()
        await asyncio.sleep(down)
        await stack.start_redis()
    elif planned.kind == "postgres_restart":
        await stack.stop_postgres()
        await asyncio.sleep(down)
        await stack.start_postgres()
    fault.end = clock()


async def run_faults(
    stack: Stack, clock: Clock, schedule: list[Planned], origin: float, faults: list[Fault]
) -> None:
    """Inject the schedule (times relative to ``origin`` on ``clock``), one fault at a time."""
    for planned in schedule:
        delay = origin + planned.at - clock()
        if delay > 0:
            await asyncio.sleep(delay)
        await inject(stack, clock, planned, faults)


def windows(faults: list[Fault], settle: float) -> list[tuple[float, float]]:
    """When a 503 is expected: a dependency down, and ``settle`` seconds after it is back."""
    return [
        (fault.start, (fault.end if fault.end is not None else fault.start) + settle)
        for fault in faults
        if fault.kind in DEPENDENCY_KINDS
    ]
