"""A direct upload of one large file two ways, side by side, with plain httpx: a single presigned
PUT, and a presigned multipart upload with several parts in flight (DESIGN §9).

    python -m bench.multipart_upload [--size-mib 1024] [--in-flight 4]

Runs against `make run`'s stack (started if none answers on FILESTORE_RUN_HOST:PORT). Each
timing covers what a client does: intent, the bytes, and ``complete`` until the file is
confirmed (for multipart also signing every part). The file is read from disk in both cases.
One run, no statistics: a figure for a note, not a benchmark suite.
"""

import argparse
import asyncio
import json
import os
import secrets
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx

from bench.stack import running_stack
from infra.config import get_settings

MIB = 1024 * 1024
READ_CHUNK = 4 * MIB


def write_file(path: Path, size: int) -> None:
    block = os.urandom(MIB)
    with path.open("wb") as out:
        for index in range(size // MIB):
            out.write(index.to_bytes(8, "big") + block[8:])


async def file_chunks(path: Path) -> AsyncIterator[bytes]:
    with path.open("rb") as source:
        while chunk := await asyncio.to_thread(source.read, READ_CHUNK):
            yield chunk


def read_range(path: Path, offset: int, length: int) -> bytes:
    with path.open("rb") as source:
        source.seek(offset)
        return source.read(length)


async def account(api: httpx.AsyncClient) -> dict[str, str]:
    login, password = f"bench_{secrets.token_hex(4)}", secrets.token_urlsafe(12)
    await api.post("/user/register", json={"login": login, "password": password})
    token = (await api.post("/user/auth", json={"login": login, "password": password})).json()
    return {"Authorization": f"Bearer {token['access_token']}"}


async def single_put(api: httpx.AsyncClient, auth: dict[str, str], path: Path, size: int) -> float:
    started = time.perf_counter()
    intent = await api.post(
        "/files/upload",
        json={"path": "/bench/single.bin", "size": size, "multipart": False},
        headers=auth,
    )
    ticket = intent.json()["upload"]
    async with httpx.AsyncClient(timeout=600) as storage:
        sent = await storage.put(
            ticket["url"], content=file_chunks(path), headers=ticket["headers"]
        )
    sent.raise_for_status()
    done = await api.post(f"/files/uploads/{ticket['id']}/complete", headers=auth)
    assert done.json()["status"] == "completed", done.text
    return time.perf_counter() - started


async def multipart(
    api: httpx.AsyncClient, auth: dict[str, str], path: Path, size: int, in_flight: int
) -> tuple[float, int, int]:
    started = time.perf_counter()
    intent = await api.post(
        "/files/upload",
        json={"path": "/bench/multipart.bin", "size": size, "multipart": True},
        headers=auth,
    )
    ticket = intent.json()["upload"]
    part_size, count = ticket["part_size"], ticket["part_count"]
    signed: list[dict[str, Any]] = []
    for first in range(1, count + 1, 1000):
        numbers = range(first, min(first + 1000, count + 1))
        answer = await api.post(
            f"/files/uploads/{ticket['id']}/parts",
            json={"parts": [{"number": n} for n in numbers]},
            headers=auth,
        )
        signed += answer.json()["parts"]
    gate = asyncio.Semaphore(in_flight)
    limits = httpx.Limits(max_connections=in_flight)
    async with httpx.AsyncClient(timeout=600, limits=limits) as storage:

        async def send(part: dict[str, Any]) -> None:
            async with gate:
                offset = (part["number"] - 1) * part_size
                body = await asyncio.to_thread(read_range, path, offset, part_size)
                headers = {k: v for k, v in part["headers"].items() if k != "Content-Length"}
                (await storage.put(part["url"], content=body, headers=headers)).raise_for_status()

        await asyncio.gather(*(send(part) for part in signed))
    done = await api.post(f"/files/uploads/{ticket['id']}/complete", headers=auth)
    assert done.json()["status"] == "completed", done.text
    return time.perf_counter() - started, part_size, count


async def run(base_url: str, size: int, in_flight: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as workdir:
        path = Path(workdir) / "payload.bin"
        await asyncio.to_thread(write_file, path, size)
        async with httpx.AsyncClient(base_url=f"{base_url}/api/v1", timeout=600) as api:
            auth = await account(api)
            single = await single_put(api, auth, path, size)
            parts, part_size, count = await multipart(api, auth, path, size, in_flight)
    mb = size / 1_000_000
    return {
        "size_bytes": size,
        "single_put": {"seconds": round(single, 2), "mb_per_s": round(mb / single, 1)},
        "multipart": {
            "seconds": round(parts, 2),
            "mb_per_s": round(mb / parts, 1),
            "in_flight": in_flight,
            "part_size": part_size,
            "parts": count,
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--in-flight", type=int, default=4)
    args = parser.parse_args()
    settings = get_settings()
    base_url = f"http://{settings.run.host}:{settings.run.port}"
    with running_stack(base_url):
        result = asyncio.run(run(base_url, args.size_mib * MIB, args.in_flight))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
