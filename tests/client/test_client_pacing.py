"""``--limit-rate``: sizes parse as people write them, and the limit holds across threads."""

import threading
import time

import pytest

from client import NoProgress, Paced, RateLimit, parse_rate


@pytest.mark.parametrize(
    ("text", "rate"),
    [("1000", 1000), ("500k", 500 * 1024), ("10M", 10 * 1024**2), ("1.5GiB/s", 3 * 1024**3 // 2)],
)
def test_rates_parse_in_binary_units(text: str, rate: int) -> None:
    assert parse_rate(text) == rate


@pytest.mark.parametrize("text", ["", "fast", "0", "-5M", "10T", "1e6"])
def test_what_is_not_a_rate_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not a rate"):
        parse_rate(text)


def test_threads_share_one_limit() -> None:
    paced = Paced(NoProgress(), RateLimit(4 * 1024 * 1024))

    def send() -> None:
        for _ in range(4):
            paced.advanced(256 * 1024)

    started = time.monotonic()
    threads = [threading.Thread(target=send) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert time.monotonic() - started >= 1.0  # 4 MiB at 4 MiB/s, whichever thread sent it
    paced.advanced(-1024 * 1024)  # a failed part's bytes given back: no wait, no error
