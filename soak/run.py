"""``make soak``: start the stack, load it under faults, settle, maintain, check, report.

Environment: ``QUICK=1`` for the CI-sized run (every fault once, about two and a half minutes
in all), ``SOAK_SEED`` to replay the clients' choices, ``SOAK_REPORT`` for the report's path
(default ``<run dir>/soak-report.json``), ``SOAK_KEEP=1`` to keep the run directory (data and
logs; by default only the report is left), ``SOAK_NOTIFICATIONS=0`` to run storage without
bucket notifications (confirmation then comes only from clients' ``complete`` and reconcile).
Exit code 0 only when no invariant is violated.
"""

import asyncio
import logging
import os
import random
import shutil
import sys
import tempfile
import time
import traceback
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from scripts import postgres
from soak.faults import plan, run_faults
from soak.invariants import check_answers, check_client_view, check_state
from soak.latency import confirmation_latency
from soak.load import Recorder, register, run_load
from soak.maintenance import Maintenance, logged_errors, logged_totals, logged_trash, run_passes
from soak.model import Clock, Fault, Violation
from soak.report import TRASH_KINDS, build, operations, summary, write
from soak.stack import Stack

log = logging.getLogger("soak")

# QUICK: every fault once, and the whole run (startup to report) well under 3 minutes on two
# busy cores.
QUICK_LOAD_SECONDS = 60.0
FULL_LOAD_SECONDS = 600.0
CLIENTS = 12
USERS = 4
# After a dependency is back, its clients may still answer 503 this long.
SETTLE_SECONDS = 5.0
# Beyond URL TTL + upload grace, before the final passes.
SETTLE_MARGIN_SECONDS = 2.0
SECRET_SETTINGS = ("SECRET", "TOKEN")
# What ``check_state`` found left of trash and versions, for the report.
TRASH_FACTS = ("versions", "trash_entries", "trashed_files", "version_bytes", "trash_bytes")


def _flag(name: str, default: bool = False) -> bool:
    value = os.environ.get(name, "").strip().lower()
    return value in {"1", "true", "yes", "on"} if value else default


def _anomaly_violations(anomalies: list[dict[str, Any]]) -> list[Violation]:
    grouped: defaultdict[str, list[dict[str, Any]]] = defaultdict(list)
    for anomaly in anomalies:
        grouped[anomaly["kind"]].append(anomaly)
    return [Violation(kind, len(items), items[:5]) for kind, items in grouped.items()]


async def soak(
    quick: bool, seed: int, workdir: Path, report_path: Path, *, notifications: bool = True
) -> int:
    started = time.monotonic()
    clock = Clock()
    stack = Stack(workdir, clock, notifications=notifications)
    recorder = Recorder(clock)
    faults: list[Fault] = []
    violations: list[Violation] = []
    phases: dict[str, float] = {}
    answers: dict[str, Any] = {}
    state: dict[str, Any] = {}
    latency: dict[str, Any] = {}
    maintenance = Maintenance()
    error: str | None = None
    load_seconds = QUICK_LOAD_SECONDS if quick else FULL_LOAD_SECONDS
    timings = stack.timings
    try:
        switch = "on" if notifications else "off"
        print(f"soak: starting the stack in {workdir} (notifications {switch})", flush=True)
        await stack.start()
        phases["started"] = clock()
        accounts = await register(stack.api_urls, USERS)
        stop_supervising = asyncio.Event()
        supervisor = asyncio.create_task(stack.supervise(stop_supervising))
        origin = phases["load_started"] = clock()
        schedule = plan(load_seconds, quick, random.Random(seed))
        print(f"soak: {load_seconds:.0f}s of load, {len(schedule)} faults", flush=True)
        fault_task = asyncio.create_task(run_faults(stack, clock, schedule, origin, faults))
        await run_load(accounts, stack.api_urls, recorder, CLIENTS, origin + load_seconds, seed)
        await fault_task
        phases["load_ended"] = clock()
        # Every URL handed out has expired and its grace passed: nothing may stay pending.
        await asyncio.sleep(
            timings.upload_url_ttl_seconds + timings.upload_grace_seconds + SETTLE_MARGIN_SECONDS
        )
        stop_supervising.set()
        await supervisor
        await stack.stop_workers()
        phases["settled"] = clock()
        maintenance = await run_passes(
            stack.apis[0].env, stack.run_dir, stack.logs / "worker-once.log"
        )
        phases["maintained"] = clock()
        found, state = await check_state(
            stack, timings.user_quota_bytes, purged_at=maintenance.purged_at
        )
        violations += found
        found, view = await check_client_view(
            stack.api_urls[0], accounts, recorder.ops, stack.database_dsn
        )
        violations += found
        state.update(view)
        latency = await confirmation_latency(stack.database_dsn, recorder.ops)
        phases["checked"] = clock()
    except Exception:
        error = traceback.format_exc()
        print(error, file=sys.stderr)
    finally:
        await stack.stop()
    found, answers = check_answers(recorder.server_errors, faults, SETTLE_SECONDS)
    answers["http_statuses"] = dict(sorted(recorder.statuses.items()))
    violations = found + violations + _anomaly_violations(recorder.anomalies)
    if maintenance.failures:
        violations.append(
            Violation("maintenance pass failed", len(maintenance.failures), maintenance.failures)
        )
    if error:
        violations.append(Violation("harness error", 1, [error.splitlines()[-1]]))
    workers = logged_totals([worker.log_path for worker in stack.workers])
    trash = {
        "operations": {
            kind: counts for kind, counts in operations(recorder.ops).items() if kind in TRASH_KINDS
        },
        "logged": logged_trash(
            [
                *(service.log_path for service in [*stack.apis, *stack.workers]),
                stack.logs / "worker-once.log",
            ]
        ),
        "final": {name: state[name] for name in TRASH_FACTS if name in state},
    }
    answers["logged_errors"] = logged_errors(
        [service.log_path for service in [*stack.apis, *stack.workers]]
    )
    swept_cli = maintenance.total("sweep", "objects_deleted", "multipart_aborted")
    drained_cli = maintenance.total("drain", "deleted")
    settings = {
        name: value
        for name, value in stack.settings().items()
        if not any(secret in name for secret in SECRET_SETTINGS)
    }
    report = build(
        meta={
            "quick": quick,
            "seed": seed,
            "notifications": notifications,
            "started_at": datetime.fromtimestamp(time.time() - (time.monotonic() - started), UTC),
            "duration_seconds": round(time.monotonic() - started, 1),
            "load_seconds": load_seconds,
            "clients": CLIENTS,
            "users": USERS,
            "phases": phases,
            "settings": settings,
            "error": error,
        },
        ops=recorder.ops,
        faults=faults,
        answers=answers,
        cleanup={
            "objects_swept": {
                "workers": workers["objects_swept"],
                "cli": swept_cli,
                "total": workers["objects_swept"] + swept_cli,
            },
            "deletions_drained": {
                "workers": workers["deletions_drained"],
                "cli": drained_cli,
                "total": workers["deletions_drained"] + drained_cli,
            },
            "worker_runs": {"sweeps": workers["sweep_runs"], "drains": workers["drain_runs"]},
            "maintenance": maintenance.passes,
        },
        state=state,
        trash=trash,
        latency=latency,
        exits=stack.exits,
        violations=violations,
    )
    write(report, report_path)
    if violations:
        print(stack.log_tails(), file=sys.stderr)
    print(summary(report, report_path), flush=True)
    return 1 if violations else 0


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    for chatty in ("httpx", "httpcore", "botocore", "aiobotocore"):
        logging.getLogger(chatty).setLevel(logging.WARNING)
    if not postgres.available() or not shutil.which("redis-server"):
        print("soak needs PostgreSQL server binaries and redis-server", file=sys.stderr)
        return 2
    quick = _flag("QUICK")
    notifications = _flag("SOAK_NOTIFICATIONS", default=True)
    seed = int(os.environ.get("SOAK_SEED") or random.SystemRandom().randrange(1 << 31))
    workdir = Path(tempfile.mkdtemp(prefix="filestore-soak-"))
    workdir.chmod(0o755)  # the postgres user must reach its data directory inside
    report_path = Path(os.environ.get("SOAK_REPORT") or workdir / "soak-report.json")
    try:
        return asyncio.run(soak(quick, seed, workdir, report_path, notifications=notifications))
    finally:
        if not _flag("SOAK_KEEP"):
            for entry in workdir.iterdir():
                if entry != report_path:
                    if entry.is_dir():
                        shutil.rmtree(entry, ignore_errors=True)
                    else:
                        entry.unlink(missing_ok=True)
            if not any(workdir.iterdir()):
                workdir.rmdir()


if __name__ == "__main__":
    sys.exit(main())
