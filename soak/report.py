"""The JSON report and its short human summary."""

import json
from collections import Counter, defaultdict
from dataclasses import asdict
from pathlib import Path
from typing import Any

from soak.model import Fault, Op, ProcessExit, Violation

# The operations of trash and versions (``delete`` moves to the trash, overwrites keep versions).
TRASH_KINDS = frozenset(
    {
        "delete",
        "tree_delete",
        "trash_restore",
        "trash_restore_to",
        "trash_purge",
        "trash_empty",
        "version_restore",
        "version_download",
    }
)


def operations(ops: list[Op]) -> dict[str, dict[str, int]]:
    table: defaultdict[str, Counter[str]] = defaultdict(Counter)
    for op in ops:
        table[op.kind][op.outcome] += 1
    return {kind: dict(sorted(counts.items())) for kind, counts in sorted(table.items())}


def step_statuses(ops: list[Op]) -> dict[str, dict[str, int]]:
    """How each kind's steps were answered, e.g. ``proxied: {"upload:413": 12}``."""
    table: defaultdict[str, Counter[str]] = defaultdict(Counter)
    for op in ops:
        table[op.kind].update(op.steps)
    return {kind: dict(counts.most_common()) for kind, counts in sorted(table.items())}


def build(
    *,
    meta: dict[str, Any],
    ops: list[Op],
    faults: list[Fault],
    answers: dict[str, Any],
    cleanup: dict[str, Any],
    state: dict[str, Any],
    trash: dict[str, Any],
    latency: dict[str, Any],
    exits: list[ProcessExit],
    violations: list[Violation],
) -> dict[str, Any]:
    return {
        **meta,
        "operations": operations(ops),
        "operation_count": len(ops),
        "step_statuses": step_statuses(ops),
        "faults": [fault.as_dict() for fault in faults],
        "unavailable_503": {
            "in_fault_windows": answers.get("503_in_fault_windows", 0),
            "outside_fault_windows": answers.get("503_outside_fault_windows", 0),
            "outside_examples": answers.get("503_outside_examples", []),
        },
        "unexpected_5xx": answers.get("unexpected_5xx", []),
        # Unhandled errors the processes logged, with their exception: why a 5xx happened.
        "logged_errors": answers.get("logged_errors", []),
        "storage_5xx": answers.get("storage_5xx", 0),
        "http_statuses": answers.get("http_statuses", {}),
        **cleanup,
        "state": state,
        # Deletes to the trash, restores, purges (client, single, empty, cron), versions.
        "trash_and_versions": trash,
        # Direct uploads, storage's answer to the client → confirmed (``soak.latency``).
        "confirmation_latency": latency,
        "unexpected_exits": [asdict(exit_) for exit_ in exits],
        "violations": [asdict(violation) for violation in violations],
    }


def write(report: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, default=str) + "\n")


def latency_lines(report: dict[str, Any]) -> list[str]:
    latency = report.get("confirmation_latency") or {}
    notifications = "on" if report.get("notifications", True) else "off"
    lines = [f"confirmation latency (notifications {notifications}; storage answered → confirmed):"]
    for group in ("completed_by_client", "nobody_completed", "all"):
        found = latency.get(group) or {}
        if not found.get("count"):
            lines.append(f"  {group:<20} none")
            continue
        closed = found.get("not_confirmed") or {}
        lines.append(
            f"  {group:<20} n={found['count']} p50 {found['p50_seconds']:.3f}s "
            f"p95 {found['p95_seconds']:.3f}s max {found['max_seconds']:.3f}s"
            + (f"; not confirmed: {closed}" if closed else "")
        )
    return lines


def summary(report: dict[str, Any], path: Path) -> str:
    lines = [
        f"soak ({'QUICK' if report.get('quick') else 'full'}): "
        f"{report.get('duration_seconds', 0):.0f}s wall, "
        f"{report.get('operation_count', 0)} operations, {len(report.get('faults', []))} faults",
    ]
    for kind, counts in report.get("operations", {}).items():
        cells = ", ".join(f"{outcome} {n}" for outcome, n in counts.items())
        lines.append(f"  {kind:<20} {cells}")
    faults = ", ".join(
        f"{f['kind']}@{f['at']:.0f}s ({f['down_seconds']:.1f}s down)" for f in report["faults"]
    )
    lines.append(f"faults: {faults or 'none'}")
    unavailable = report.get("unavailable_503", {})
    lines.append(
        f"503s: {unavailable.get('in_fault_windows', 0)} in fault windows, "
        f"{unavailable.get('outside_fault_windows', 0)} outside; "
        f"unexpected 5xx: {len(report.get('unexpected_5xx', []))}"
    )
    swept, drained = report.get("objects_swept", {}), report.get("deletions_drained", {})
    lines.append(
        f"objects swept: {swept.get('total', 0)} (workers {swept.get('workers', 0)}, "
        f"cli {swept.get('cli', 0)}); deletions drained: {drained.get('total', 0)} "
        f"(workers {drained.get('workers', 0)}, cli {drained.get('cli', 0)})"
    )
    trash = report.get("trash_and_versions") or {}
    logged = ", ".join(f"{name} {n}" for name, n in (trash.get("logged") or {}).items())
    lines.append(f"trash and versions logged: {logged or 'nothing'}")
    final = ", ".join(f"{name} {n}" for name, n in (trash.get("final") or {}).items())
    lines.append(f"trash and versions left: {final or 'unknown'}")
    lines += latency_lines(report)
    if report.get("unexpected_exits"):
        exits = ", ".join(f"{e['name']}@{e['at']:.0f}s" for e in report["unexpected_exits"])
        lines.append(f"processes that exited by themselves (restarted): {exits}")
    if report.get("error"):
        lines.append(f"HARNESS ERROR: {report['error'].splitlines()[-1]}")
    violations = report.get("violations", [])
    if violations:
        lines.append(f"VIOLATIONS ({len(violations)}):")
        for violation in violations:
            lines.append(f"  - {violation['invariant']}: {violation['count']}")
            for example in violation["examples"][:2]:
                lines.append(f"      e.g. {json.dumps(example, default=str)[:400]}")
    else:
        lines.append("violations: none")
    lines.append(f"report: {path}")
    return "\n".join(lines)
