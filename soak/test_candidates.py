"""The judgment of a path's final content (no services needed):
``uv run --frozen pytest soak/test_candidates.py``."""

from soak.candidates import judge
from soak.model import Op, Outcome


def write(sha: str, start: float, end: float, outcome: Outcome, *, reused: bool = False) -> Op:
    op = Op("proxied", 0, "u", "/p", start, end, outcome, sha256=sha, is_write=True)
    op.may_remove = reused
    return op


def delete(start: float, end: float, outcome: Outcome) -> Op:
    return Op("delete", 0, "u", "/p", start, end, outcome, is_delete=True)


def test_last_definite_write_wins() -> None:
    ops = [write("a", 0, 1, "success"), write("b", 2, 3, "success")]
    assert judge(ops, "b").problem is None
    assert judge(ops, "a").problem == "superseded write resurfaced"
    assert judge(ops, None).problem == "accepted upload lost"


def test_overlapping_writes_are_both_candidates() -> None:
    ops = [write("a", 0, 5, "success"), write("b", 1, 3, "success")]
    assert judge(ops, "a").problem is None
    assert judge(ops, "b").problem is None


def test_uncertain_writes_are_always_candidates() -> None:
    ops = [write("a", 0, 1, "uncertain"), write("b", 2, 3, "success")]
    assert judge(ops, "a").problem is None


def test_failed_write_must_not_surface() -> None:
    ops = [write("a", 0, 1, "success"), write("b", 2, 3, "failure")]
    assert judge(ops, "a").problem is None
    assert judge(ops, "b").problem == "failed upload resurfaced"
    assert judge(ops, "c").problem == "content never written to the path"


def test_absence() -> None:
    assert judge([write("a", 0, 1, "failure")], None).problem is None
    deleted = [write("a", 0, 1, "success"), delete(2, 3, "success")]
    assert judge(deleted, None).problem is None
    assert judge(deleted, "a").problem == "superseded write resurfaced"
    rewritten = [*deleted, write("b", 4, 5, "success")]
    assert judge(rewritten, None).problem == "accepted upload lost"
    maybe_deleted = [write("a", 0, 1, "success"), delete(2, 3, "uncertain")]
    assert judge(maybe_deleted, None).problem is None
    assert judge(maybe_deleted, "a").problem is None


def test_reused_url_may_replace_or_remove() -> None:
    ops = [write("a", 0, 1, "success"), write("b", 2, 3, "uncertain", reused=True)]
    assert judge(ops, "b").problem is None
    assert judge(ops, None).problem is None
    refused = [write("a", 0, 1, "success"), write("b", 2, 3, "failure", reused=True)]
    assert judge(refused, None).problem == "accepted upload lost"


def revive(start: float, end: float, outcome: Outcome) -> Op:
    op = Op("trash_restore", 0, "u", "/p", start, end, outcome, is_write=True)
    op.revives = True
    return op


def test_a_restore_brings_back_what_the_path_held() -> None:
    ops = [write("a", 0, 1, "success"), delete(2, 3, "success"), write("b", 4, 5, "failure")]
    restored = [*ops, revive(6, 7, "success")]
    assert judge(restored, "a").problem is None
    assert judge(restored, None).problem == "accepted upload lost"
    assert judge(restored, "b").problem == "failed upload resurfaced"
    assert judge([*ops, revive(6, 7, "uncertain")], None).problem is None
    assert judge([*ops, revive(6, 7, "failure")], "a").problem == "superseded write resurfaced"
    overwritten = [*restored, write("c", 8, 9, "success")]
    assert judge(overwritten, "a").problem == "superseded write resurfaced"
