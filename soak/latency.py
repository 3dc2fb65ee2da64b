"""Confirmation latency of direct uploads: from storage answering the client's PUT or POST to
the upload's ``completed_at`` (when confirmation made it the file's content, and so listed).

Two groups, because they are confirmed by different paths: the clients that call ``complete``
(confirmed by that call, or by a notification that came first) and the ones that never do
(only a notification or reconcile confirms those). An upload whose URL was used again is left
out: re-confirming the new bytes moves its ``completed_at``.
"""

import math
import re
from collections import Counter
from typing import Any

import asyncpg

from soak.model import Op

# Numbers, times and sizes in a reason, so that reasons group by their kind.
_FIGURES = re.compile(r"\d[\d:.+\-T]*")
DIRECT_KINDS = {"direct_put": "completed_by_client", "direct_post": "completed_by_client"}
NOBODY_COMPLETES = "direct_no_complete"


def percentile(values: list[float], fraction: float) -> float:
    """Nearest rank: the smallest value with at least ``fraction`` of them at or below it."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def distribution(seconds: list[float]) -> dict[str, Any]:
    if not seconds:
        return {"count": 0}
    return {
        "count": len(seconds),
        "p50_seconds": round(percentile(seconds, 0.5), 3),
        "p95_seconds": round(percentile(seconds, 0.95), 3),
        "max_seconds": round(max(seconds), 3),
    }


def _group(op: Op) -> str | None:
    if op.kind == NOBODY_COMPLETES:
        return "nobody_completed"
    return DIRECT_KINDS.get(op.kind)


async def confirmation_latency(database_dsn: str, ops: list[Op]) -> dict[str, Any]:
    """Per group: the latency distribution of the confirmed uploads, and how the others
    ended (their upload's status and reason)."""
    reused = {op.upload_id for op in ops if op.kind == "reused_put" and op.upload_id}
    measured = [
        op
        for op in ops
        if _group(op) and op.upload_id and op.sent_at is not None and op.upload_id not in reused
    ]
    connection = await asyncpg.connect(database_dsn)
    try:
        rows = await connection.fetch(
            "SELECT id::text AS id, status::text AS status, reason, completed_at FROM uploads"
            " WHERE id = ANY($1::uuid[])",
            [op.upload_id for op in measured],
        )
    finally:
        await connection.close()
    found = {row["id"]: row for row in rows}
    seconds: dict[str, list[float]] = {"completed_by_client": [], "nobody_completed": []}
    others: dict[str, Counter[str]] = {group: Counter() for group in seconds}
    for op in measured:
        group, row = _group(op), found.get(op.upload_id or "")
        assert group is not None and op.sent_at is not None
        if row is None or row["status"] != "completed" or row["completed_at"] is None:
            why = f"{row['status']}: {_FIGURES.sub('N', row['reason'] or '')}" if row else "missing"
            others[group][why] += 1
            continue
        # A notification may confirm before the client has read storage's answer: 0, not < 0.
        seconds[group].append(max(0.0, row["completed_at"].timestamp() - op.sent_at))
    result: dict[str, Any] = {
        group: {**distribution(values), "not_confirmed": dict(others[group])}
        for group, values in seconds.items()
    }
    result["all"] = distribution([value for values in seconds.values() for value in values])
    result["left_out_reused_urls"] = len(reused)
    return result
