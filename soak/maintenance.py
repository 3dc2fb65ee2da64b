"""The maintenance passes run to completion with ``python -m worker.once <task>``, and the clean-up
counts the workers logged during the run.

``worker.once`` prints one JSON object of counts on stdout and uses the same ``FILESTORE_*``
environment as the services. The order: reconcile, purge until it purges nothing more (every
trash entry past its retention, every version beyond the limit), drain, then sweep and drain
again until a sweep deletes nothing more.
"""

import asyncio
import json
import sys
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

PASS_TIMEOUT_SECONDS = 120.0
MAX_SWEEPS = 8
SWEPT_FIELDS = ("objects_deleted", "multipart_aborted")
PURGED_FIELDS = ("trash_entries", "versions")
MAX_PURGES = 8


@dataclass
class Maintenance:
    passes: list[dict[str, Any]] = field(default_factory=list)
    failures: list[dict[str, Any]] = field(default_factory=list)
    # When the last purge pass started (it purged nothing): every entry due then is gone.
    purged_at: datetime | None = None

    def total(self, task: str, *fields: str) -> int:
        return sum(
            int(p["counts"].get(name, 0) or 0)
            for p in self.passes
            if p["task"] == task
            for name in fields
        )


async def run_once(
    task: str, env: dict[str, str], cwd: Path, log_path: Path
) -> tuple[dict[str, Any] | None, str]:
    """One pass; its counts, or None and why not."""
    with log_path.open("ab") as stderr:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "worker.once",
            task,
            cwd=cwd,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=stderr,
        )
        try:
            stdout, _ = await asyncio.wait_for(process.communicate(), PASS_TIMEOUT_SECONDS)
        except TimeoutError:
            process.kill()
            await process.wait()
            return None, f"timed out after {PASS_TIMEOUT_SECONDS:.0f}s"
    if process.returncode != 0:
        return None, f"exit code {process.returncode}"
    lines = [line for line in stdout.decode("utf-8", "replace").splitlines() if line.strip()]
    try:
        counts = json.loads(lines[-1])
    except (IndexError, ValueError):
        return None, f"stdout is not a JSON object: {stdout[-300:]!r}"
    if not isinstance(counts, dict):
        return None, f"stdout is not a JSON object: {counts!r}"
    return counts, ""


async def run_passes(env: dict[str, str], cwd: Path, log_path: Path) -> Maintenance:
    result = Maintenance()

    async def one(task: str) -> dict[str, Any] | None:
        counts, error = await run_once(task, env, cwd, log_path)
        if counts is None:
            result.failures.append({"task": task, "error": error, "log": str(log_path)})
        else:
            result.passes.append({"task": task, "counts": counts})
        return counts

    await one("reconcile")
    for _ in range(MAX_PURGES):
        started = datetime.now(UTC)
        purged = await one("purge")
        if purged is None:
            break
        if not sum(int(purged.get(name, 0) or 0) for name in PURGED_FIELDS):
            result.purged_at = started
            break
    else:
        result.failures.append({"task": "purge", "error": f"still purging after {MAX_PURGES}"})
    await one("drain")
    for _ in range(MAX_SWEEPS):
        swept = await one("sweep")
        await one("drain")
        if swept is None or not sum(int(swept.get(name, 0) or 0) for name in SWEPT_FIELDS):
            break
    else:
        result.failures.append({"task": "sweep", "error": f"still deleting after {MAX_SWEEPS}"})
    return result


def _records(paths: list[Path]) -> list[dict[str, Any]]:
    """The JSON log lines of ``paths``."""
    records = []
    for path in paths:
        try:
            text = path.read_text("utf-8", "replace")
        except OSError:
            continue
        for line in text.splitlines():
            if not line.startswith("{"):
                continue
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict):
                records.append(record)
    return records


def logged_totals(paths: list[Path]) -> dict[str, int]:
    """What the workers' own runs cleaned up, from their JSON log lines."""
    totals = {"objects_swept": 0, "deletions_drained": 0, "sweep_runs": 0, "drain_runs": 0}
    for record in _records(paths):
        if record.get("msg") == "bucket swept":
            totals["sweep_runs"] += 1
            totals["objects_swept"] += sum(int(record.get(f, 0) or 0) for f in SWEPT_FIELDS)
        elif record.get("msg") == "outbox drained":
            totals["drain_runs"] += 1
            totals["deletions_drained"] += int(record.get("deleted", 0) or 0)
    return totals


# What the services logged of trash and versions, by message (and a purge's reason).
TRASH_MESSAGES = {
    "file overwritten": "overwrites",
    "file moved to the trash": "files_to_trash",
    "folder moved to the trash": "folders_to_trash",
    "restored from the trash": "trash_restores",
    "version restored": "version_restores",
    "versions trimmed": "purge_version_trims",
    "kept content of a rewritten object dropped": "kept_dropped_by_rewrite",
}


def logged_trash(paths: list[Path]) -> dict[str, int]:
    """Trash and version events the APIs and workers logged: overwrites (each keeps a
    version), moves to the trash, restores, purges by reason, and the cron purge's runs."""
    totals: Counter[str] = Counter()
    for record in _records(paths):
        message = record.get("msg")
        if message in TRASH_MESSAGES:
            totals[TRASH_MESSAGES[message]] += 1
        elif message == "trash entry purged":
            totals[f"entries_purged ({record.get('reason')})"] += 1
        elif message == "purge ran":
            totals["purge_runs_that_purged"] += 1
            totals["purge_entries"] += int(record.get("trash_entries", 0) or 0)
            totals["purge_versions"] += int(record.get("versions", 0) or 0)
    return dict(sorted(totals.items()))


def logged_errors(paths: list[Path], limit: int = 20) -> list[dict[str, str]]:
    """The unhandled errors the processes logged (message, request id, the exception's last
    lines): what explains an unexpected 5xx."""
    found: list[dict[str, str]] = []
    for path in paths:
        try:
            text = path.read_text("utf-8", "replace")
        except OSError:
            continue
        for line in text.splitlines():
            if not line.startswith("{") or '"exc"' not in line:
                continue
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if record.get("level") in {"error", "critical"} and len(found) < limit:
                found.append(
                    {
                        "process": path.stem,
                        "msg": str(record.get("msg")),
                        "request_id": str(record.get("request_id", "")),
                        "exc": "\n".join(str(record.get("exc", "")).splitlines()[-6:]),
                    }
                )
    return found
