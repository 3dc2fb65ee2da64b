"""A cap on a transfer's speed (``filestore put/get --limit-rate``), shared by all its threads.

It paces through ``Progress``: every chunk is reported as it goes, so a listener that makes the
reporting thread wait until the chunk's share of the rate has passed slows the transfer itself,
whichever path (PUT, parts in parallel, proxied, download) carries the bytes.
"""

import re
import threading
import time

from client.models import Progress

_RATE = re.compile(r"(\d+(?:\.\d+)?)\s*([kmg]?)(?:i?b)?(?:/s)?", re.IGNORECASE)
_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


def parse_rate(text: str) -> int:
    """Bytes per second from ``500k``, ``10M``, ``1.5GiB/s`` or plain bytes (binary units)."""
    found = _RATE.fullmatch(text.strip())
    rate = int(float(found.group(1)) * _UNITS[found.group(2).lower()]) if found else 0
    if rate <= 0:
        raise ValueError(f"not a rate: {text!r} (try 500k, 10M or 1G)")
    return rate


class RateLimit:
    """At most ``bytes_per_second`` on average over every thread that waits on it."""

    def __init__(self, bytes_per_second: int) -> None:
        self.bytes_per_second = bytes_per_second
        self._lock = threading.Lock()
        self._free_at = time.monotonic()

    def wait_for(self, nbytes: int) -> None:
        """Return once ``nbytes`` more fit under the rate (they were just sent or received)."""
        with self._lock:
            now = time.monotonic()
            self._free_at = max(self._free_at, now) + nbytes / self.bytes_per_second
            delay = self._free_at - now
        time.sleep(delay)


class Paced:
    """``inner``, with each chunk's thread held back by ``limit``; a failed part's bytes (a
    negative advance) are passed on without waiting."""

    def __init__(self, inner: Progress, limit: RateLimit) -> None:
        self.inner, self.limit = inner, limit

    def started(self, total: int, done: int) -> None:
        self.inner.started(total, done)

    def advanced(self, nbytes: int) -> None:
        self.inner.advanced(nbytes)
        if nbytes > 0:
            self.limit.wait_for(nbytes)
