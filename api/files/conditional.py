"""HTTP conditional requests and ranges for proxied downloads: pure functions of header values."""

from datetime import datetime
from email.utils import parsedate_to_datetime


def not_modified(
    if_none_match: str | None, if_modified_since: str | None, etag: str, modified_at: datetime
) -> bool:
    """Whether a GET may answer 304 (RFC 9110 §13.1.2-3: If-None-Match, when present, decides;
    weak comparison; If-Modified-Since is compared at whole seconds)."""
    if if_none_match is not None:
        tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
        return "*" in tags or f'"{etag}"' in tags
    if if_modified_since:
        try:
            since = parsedate_to_datetime(if_modified_since)
        except (TypeError, ValueError):
            return False
        return since.tzinfo is not None and modified_at.replace(microsecond=0) <= since
    return False


def single_range(value: str | None) -> str | None:
    """A single ``bytes=`` range passes to storage; anything else is served in full (RFC 9110
    §14.2: a server may ignore a Range it does not support)."""
    value = (value or "").strip()
    if not value.startswith("bytes=") or "," in value:
        return None
    first, _, last = value.removeprefix("bytes=").partition("-")
    if not (first.isdigit() or (first == "" and last.isdigit())) or not (
        last == "" or last.isdigit()
    ):
        return None
    return value
