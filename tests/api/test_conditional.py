"""Conditional requests and ranges of proxied downloads, as pure functions (no services)."""

from datetime import UTC, datetime

import pytest

from api.files.conditional import not_modified, single_range

MODIFIED = datetime(2026, 11, 27, 12, 0, 0, 500_000, tzinfo=UTC)
ETAG = "0123abcd"


@pytest.mark.parametrize(
    ("if_none_match", "if_modified_since", "expected"),
    [
        (None, None, False),
        ('"0123abcd"', None, True),
        ('W/"0123abcd"', None, True),
        ('"other", "0123abcd"', None, True),
        ("*", None, True),
        ('"other"', None, False),
        # If-None-Match decides alone when present (RFC 9110 §13.2.2).
        ('"other"', "Fri, 27 Nov 2026 13:00:00 GMT", False),
        (None, "Fri, 27 Nov 2026 12:00:00 GMT", True),  # same second: not modified
        (None, "Fri, 27 Nov 2026 11:59:59 GMT", False),
        (None, "Sat, 28 Nov 2026 00:00:00 GMT", True),
        (None, "not a date", False),
        (None, "", False),
    ],
)
def test_not_modified(
    if_none_match: str | None, if_modified_since: str | None, expected: bool
) -> None:
    assert not_modified(if_none_match, if_modified_since, ETAG, MODIFIED) is expected


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-99", "bytes=0-99"),
        ("bytes=100-", "bytes=100-"),
        ("bytes=-500", "bytes=-500"),
        (" bytes=5-9 ", "bytes=5-9"),
        ("bytes=0-1,5-9", None),  # several ranges: served in full
        ("bytes=-", None),
        ("bytes=a-b", None),
        ("items=0-1", None),
        ("", None),
        (None, None),
    ],
)
def test_single_range(header: str | None, expected: str | None) -> None:
    assert single_range(header) == expected
