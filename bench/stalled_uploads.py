"""Stalled and trickling proxied uploads against a running API, and what they cost it.

``stall``: N proxied uploads each send ``--stall-bytes`` of file data (by default just under a
part) and then nothing. Reports the API's resident memory (every process listening on the
port, and their children) before, once they all stalled, and when they were answered, and the
answers: 503 ``server_busy`` / 429 ``too_many_uploads`` for the ones over the caps, 408
``request_timeout`` for the admitted ones once the idle timeout runs out.

``trickle``: N proxied uploads send one byte every ``--interval`` seconds; reports how many are
answered with what, and when.

Every upload comes from its own account unless ``--users`` says otherwise. Against ``make
run``'s stack (one API process: ``FILESTORE_API_PROCESSES=1``)::

    python -m bench.stalled_uploads stall --url http://127.0.0.1:8080 --uploads 48
    python -m bench.stalled_uploads trickle --url http://127.0.0.1:8080 --uploads 200
"""

import argparse
import asyncio
import collections
import contextlib
import json
import re
import secrets
import statistics
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from bench.processes import PAGE, with_descendants

BOUNDARY = "stalledbench"
HEAD = (
    f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="stall.bin"\r\n'
    "Content-Type: application/octet-stream\r\n\r\n"
).encode()
DECLARED_BYTES = 64 * 1024 * 1024  # Content-Length: more than is ever sent
CHUNK = 64 * 1024


def listening_pids(port: int) -> list[int]:
    """The processes listening on ``port`` (``ss``), and their children."""
    output = subprocess.run(
        ["ss", "-ltnpH", f"sport = :{port}"], capture_output=True, text=True, check=True
    ).stdout
    return with_descendants(sorted({int(pid) for pid in re.findall(r"pid=(\d+)", output)}))


def rss_mib(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
    return total / 2**20


@dataclass
class Outcome:
    status: int | None = None
    error: str | None = None
    answered_after: float | None = None
    sent: int = 0
    stalled: asyncio.Event = field(default_factory=asyncio.Event)


async def accounts(base: str, count: int) -> list[str]:
    async def one(http: httpx.AsyncClient) -> str:
        login, password = f"stall_{secrets.token_hex(5)}", secrets.token_urlsafe(12)
        body = {"login": login, "password": password}
        (await http.post("/user/register", json=body)).raise_for_status()
        token = await http.post("/user/auth", json=body)
        token.raise_for_status()
        return f"Bearer {token.json()['access_token']}"

    async with httpx.AsyncClient(base_url=f"{base}/api/v1", timeout=60) as http:
        tokens: list[str] = []
        for start in range(0, count, 8):  # argon2 is slow: a few at a time
            tokens += await asyncio.gather(*(one(http) for _ in range(min(8, count - start))))
        return tokens


async def upload(
    base: str, token: str, number: int, outcome: Outcome, stall_bytes: int, interval: float
) -> None:
    """One proxied upload over a raw connection: ``stall_bytes`` then nothing (``interval`` 0),
    or one byte every ``interval`` seconds; returns when the server answers."""
    parts = urlsplit(base)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    started = time.monotonic()
    request = (
        f"POST /api/v1/files/upload?path=/stalled/{number}.bin HTTP/1.1\r\n"
        f"Host: {parts.netloc}\r\nAuthorization: {token}\r\n"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
        f"Content-Length: {DECLARED_BYTES}\r\n\r\n"
    ).encode()
    answer = asyncio.create_task(reader.read(4096))
    try:
        writer.write(request + HEAD)
        block = b"\0" * CHUNK
        while outcome.sent < stall_bytes and not answer.done():
            piece = block[: min(CHUNK, stall_bytes - outcome.sent)]
            writer.write(piece)
            await writer.drain()
            outcome.sent += len(piece)
        outcome.stalled.set()
        while interval and not answer.done():
            await asyncio.wait([answer], timeout=interval)
            if not answer.done():
                writer.write(b"\0")
                await writer.drain()
                outcome.sent += 1
        head = await answer
        outcome.answered_after = time.monotonic() - started
        outcome.status = int(head.split(b" ", 2)[1]) if head else None
    except (ConnectionError, IndexError, ValueError) as error:
        outcome.error = type(error).__name__
        outcome.answered_after = time.monotonic() - started
    finally:
        outcome.stalled.set()
        answer.cancel()
        writer.close()


def summary(outcomes: list[Outcome]) -> dict[str, object]:
    statuses = collections.Counter(str(o.status or o.error or "unanswered") for o in outcomes)
    times = [o.answered_after for o in outcomes if o.answered_after is not None]
    return {
        "answers": dict(statuses),
        "answered_after_seconds": {
            "min": round(min(times), 1),
            "median": round(statistics.median(times), 1),
            "max": round(max(times), 1),
        }
        if times
        else None,
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("mode", choices=["stall", "trickle"])
    parser.add_argument("--url", default="http://127.0.0.1:8080")
    parser.add_argument("--uploads", type=int, default=48)
    parser.add_argument("--users", type=int, default=0, help="accounts (default: one each)")
    parser.add_argument("--stall-bytes", type=int, default=8 * 2**20 - 64 * 1024)
    parser.add_argument("--interval", type=float, default=5.0, help="trickle: seconds a byte")
    parser.add_argument("--limit-seconds", type=float, default=120.0, help="give up after")
    args = parser.parse_args()
    port = urlsplit(args.url).port or 80
    pids = listening_pids(port)
    tokens = await accounts(args.url, args.users or args.uploads)
    before = rss_mib(pids)
    stall_bytes = args.stall_bytes if args.mode == "stall" else 0
    interval = args.interval if args.mode == "trickle" else 0.0
    outcomes = [Outcome() for _ in range(args.uploads)]
    tasks = [
        asyncio.create_task(
            upload(args.url, tokens[n % len(tokens)], n, outcomes[n], stall_bytes, interval)
        )
        for n in range(args.uploads)
    ]
    await asyncio.wait_for(asyncio.gather(*(o.stalled.wait() for o in outcomes)), 120)
    await asyncio.sleep(2)  # the API reads what the sockets hold
    stalled = rss_mib(pids)
    refused_early = summary([o for o in outcomes if o.status is not None])
    _, pending = await asyncio.wait(tasks, timeout=args.limit_seconds)
    for task in pending:
        task.cancel()
    await asyncio.sleep(1)
    report = {
        "mode": args.mode,
        "uploads": args.uploads,
        "accounts": len(tokens),
        "bytes_before_stalling": stall_bytes,
        "api_pids": pids,
        "rss_mib": {
            "before": round(before, 1),
            "all_stalled": round(stalled, 1),
            "after": round(rss_mib(pids), 1),
        },
        "answered_while_sending": refused_early,
        "final": summary(outcomes),
        "unanswered_after_limit": len(pending),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
