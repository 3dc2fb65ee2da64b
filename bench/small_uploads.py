"""Small uploads both ways, on the same work at the same concurrency:

- proxied: wrk posts 64 KiB as multipart form data (the API streams it to S3 and confirms it
  inline; the bucket's notification of it must cost the worker next to nothing), with the API's
  and the worker's CPU seconds per upload read from /proc around the run;
- direct: an asyncio driver asks for an intent and PUTs the bytes to the presigned URL, then
  waits until every upload is confirmed in the listing; its rate counts to the last confirmation.
"""

import asyncio
import os
import statistics
import time
from typing import Any

import aiohttp

from bench.processes import Group
from bench.wrk import run_wrk

SIZE = 64 * 1024
CONCURRENCY = 16
# Notifications trail the uploads by a poll delay or two; the worker's CPU is read after them.
SETTLE_SECONDS = 1.5
CONFIRM_TIMEOUT_SECONDS = 60.0


def proxied(
    wrk: str,
    base_url: str,
    token: str,
    run_id: str,
    seconds: int,
    api: Group,
    worker: Group,
) -> dict[str, Any]:
    api_before, worker_before = api.cpu_seconds(), worker.cpu_seconds()
    load = run_wrk(wrk, base_url, "proxied", [token, run_id, str(SIZE)], CONCURRENCY, seconds)
    api_after = api.cpu_seconds()
    time.sleep(SETTLE_SECONDS)
    worker_after = worker.cpu_seconds()
    uploads = max(load.requests, 1)
    return {
        **load.as_dict(),
        "size_kib": SIZE // 1024,
        "api_cpu_ms_per_upload": round(1000 * (api_after - api_before) / uploads, 3),
        "worker_cpu_ms_per_upload": round(1000 * (worker_after - worker_before) / uploads, 3),
    }


async def _uploader(
    http: aiohttp.ClientSession,
    s3: aiohttp.ClientSession,
    api: str,
    folder: str,
    task: int,
    deadline: float,
    latencies: list[float],
) -> int:
    body = os.urandom(SIZE)
    count = 0
    while time.monotonic() < deadline:
        started = time.perf_counter()
        name = f"{task}-{count}.bin"
        async with http.post(
            f"{api}/files/upload", json={"path": folder, "name": name, "size": SIZE}
        ) as intent:
            intent.raise_for_status()
            ticket = (await intent.json())["upload"]
        async with s3.put(ticket["url"], data=body, headers=ticket["headers"]) as put:
            put.raise_for_status()
        latencies.append(time.perf_counter() - started)
        count += 1
    return count


async def _listed(http: aiohttp.ClientSession, api: str, folder: str) -> int:
    listed, cursor = 0, None
    while True:
        params = {"path": folder, "limit": "1000", **({"cursor": cursor} if cursor else {})}
        async with http.get(f"{api}/files", params=params) as page:
            page.raise_for_status()
            body = await page.json()
        listed += len(body["files"])
        cursor = body.get("next_cursor")
        if not cursor:
            return listed


async def _direct(api: str, token: str, run_id: str, seconds: int) -> dict[str, Any]:
    folder = f"/bench/direct/{run_id}/"
    latencies: list[float] = []
    headers = {"Authorization": f"Bearer {token}"}
    # Two sessions: the presigned URL carries its own authorisation, the bearer must not go along.
    async with (
        aiohttp.ClientSession(headers=headers) as http,
        aiohttp.ClientSession() as s3,
    ):
        started = time.monotonic()
        deadline = started + seconds
        counts = await asyncio.gather(
            *(
                _uploader(http, s3, api, folder, task, deadline, latencies)
                for task in range(CONCURRENCY)
            )
        )
        uploads = sum(counts)
        put_done = time.monotonic()
        while (listed := await _listed(http, api, folder)) < uploads:
            if time.monotonic() - put_done > CONFIRM_TIMEOUT_SECONDS:
                break
            await asyncio.sleep(0.05)
        confirmed_at = time.monotonic()
    samples = sorted(latency * 1000 for latency in latencies)
    return {
        "concurrency": CONCURRENCY,
        "size_kib": SIZE // 1024,
        "uploads": uploads,
        "confirmed": listed,
        "rps": round(uploads / (confirmed_at - started), 1),
        "p50_ms": round(statistics.median(samples), 2),
        "p99_ms": round(samples[min(len(samples) - 1, int(len(samples) * 0.99))], 2),
        "last_confirmed_after_ms": round(1000 * (confirmed_at - put_done), 1),
        "errors": uploads - listed,
    }


def direct(base_url: str, token: str, run_id: str, seconds: int) -> dict[str, Any]:
    """Intent + PUT per upload (p50/p99 of the pair); the rate counts until all are listed."""
    return asyncio.run(_direct(f"{base_url}/api/v1", token, run_id, seconds))
