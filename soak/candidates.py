"""Which final contents of a path are consistent with what the clients saw.

Operations on a shared path overlap, so "later" is decided by intervals: an operation
supersedes another only if it *started after the other ended*. The final content of a path must
be one of:

- a definitely successful write that no definitely successful write or delete started after it
  ended;
- any write whose outcome was uncertain (its bytes may have been confirmed at any time since);
- absence, if a definitely successful delete is not superseded by a definitely successful write
  (or restore), or a delete was uncertain, or no write ever definitely succeeded, or a PUT to a
  reused URL was not refused (the API may reject the file it overwrote);
- after a restore in place (from the trash, or of a version) that did not definitely fail and
  is not superseded, any content once written to the path and not refused: what the trash
  entry or the version held.

Digests identify contents (random bodies; a few-byte body may repeat, so a digest maps to every
write that carried it, and a content is acceptable when any of them is a candidate).
"""

from dataclasses import dataclass
from typing import Any

from soak.model import Op


@dataclass(frozen=True, slots=True)
class Verdict:
    """``problem`` is None when the final content is a candidate; else the invariant broken."""

    problem: str | None
    detail: dict[str, Any]


def _superseded(op: Op, definite: list[Op]) -> bool:
    return any(other is not op and other.start > op.end for other in definite)


def judge(ops: list[Op], final: str | None) -> Verdict:
    """``ops``: every operation on one (user, path); ``final``: its content's digest, or None."""
    writes = [op for op in ops if op.is_write and op.sha256 is not None]
    deletes = [op for op in ops if op.is_delete]
    revivals = [op for op in ops if op.revives]
    definite = [op for op in writes + deletes + revivals if op.outcome == "success"]
    standing = [w for w in writes if w.outcome == "success" and not _superseded(w, definite)]
    uncertain = [w for w in writes if w.outcome == "uncertain"]
    contents = {w.sha256 for w in standing + uncertain}
    if any(
        r.outcome == "uncertain" or (r.outcome == "success" and not _superseded(r, definite))
        for r in revivals
    ):
        contents |= {w.sha256 for w in writes if w.outcome != "failure"}
    absence_ok = (
        any(d.outcome == "success" and not _superseded(d, definite) for d in deletes)
        or any(d.outcome == "uncertain" for d in deletes)
        or not any(w.outcome == "success" for w in writes)
        or any(w.may_remove and w.outcome != "failure" for w in writes)
    )
    summary: dict[str, Any] = {
        "final_sha256": final,
        "standing_writes": [w.brief() for w in standing[-3:]],
    }
    if final is None:
        if absence_ok:
            return Verdict(None, summary)
        return Verdict("accepted upload lost", summary)
    if final in contents:
        return Verdict(None, summary)
    carriers = [w for w in writes if w.sha256 == final]
    if any(w.outcome == "failure" for w in carriers):
        problem = "failed upload resurfaced"
    elif carriers:
        problem = "superseded write resurfaced"
    else:
        problem = "content never written to the path"
    summary["matching_writes"] = [w.brief() for w in carriers[:3]]
    return Verdict(problem, summary)
