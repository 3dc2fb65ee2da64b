"""Confirmation latency: a presigned PUT's response → the file listed, against a running stack.

A small asyncio driver (a multi-step flow no load generator expresses): register, then for each
upload ask for an intent, PUT the bytes to S3, and poll the listing until the file shows up.
"""

import argparse
import asyncio
import json
import os
import secrets
import statistics
import time
from typing import Any

import httpx

POLL_SECONDS = 0.005


async def one_upload(http: httpx.AsyncClient, s3: httpx.AsyncClient, index: int) -> float:
    folder = f"/latency/{index}/"
    intent = await http.post("/files/upload", json={"path": folder, "name": "f.bin", "size": 1024})
    intent.raise_for_status()
    ticket = intent.json()["upload"]
    put = await s3.put(ticket["url"], content=os.urandom(1024), headers=ticket["headers"])
    put.raise_for_status()
    done = time.perf_counter()
    while True:
        page = await http.get("/files", params={"path": folder})
        if page.json()["files"]:
            return time.perf_counter() - done
        await asyncio.sleep(POLL_SECONDS)


async def measure(base_url: str, count: int) -> dict[str, Any]:
    login, password = f"bench_{secrets.token_hex(4)}", secrets.token_urlsafe(12)
    async with httpx.AsyncClient(base_url=f"{base_url}/api/v1", timeout=30) as http:
        (
            await http.post("/user/register", json={"login": login, "password": password})
        ).raise_for_status()
        token = (await http.post("/user/auth", json={"login": login, "password": password})).json()
        http.headers["Authorization"] = f"Bearer {token['access_token']}"
        async with httpx.AsyncClient(timeout=30) as s3:
            samples = [await one_upload(http, s3, index) for index in range(count)]
    samples_ms = sorted(sample * 1000 for sample in samples)
    return {
        "uploads": count,
        "p50_ms": round(statistics.median(samples_ms), 1),
        "p95_ms": round(samples_ms[max(0, int(len(samples_ms) * 0.95) - 1)], 1),
        "max_ms": round(samples_ms[-1], 1),
        "min_ms": round(samples_ms[0], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--base-url", default="http://127.0.0.1:8080")
    parser.add_argument("--count", type=int, default=50)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(measure(args.base_url, args.count))))


if __name__ == "__main__":
    main()
