"""S3 client cost on the data path, side by side in one run against a SeaweedFS of our own:
aiobotocore alone (``infra.storage.adapter.Storage`` without ``infra.storage.s3_requests``),
``Storage`` as the API runs it (PUT and HEAD signed by ``infra.storage.signer`` and sent with
aiohttp, the rest aiobotocore) and obstore (Rust's object_store).

For each operation (PUT 64 KiB, HEAD, GET 64 KiB and a larger object streamed to the end, DELETE)
and each client: calls per second and microseconds of process CPU time per call, ``--calls``
calls by ``--concurrency`` tasks. Rounds alternate which client goes first; the table shows each
figure's median over ``--rounds``. Process CPU time counts every thread of this process (obstore's
Tokio runtime too) and nothing of SeaweedFS, which runs in its own process.

    python -m bench.s3_client [--calls N] [--rounds R] [--json PATH]
"""

import argparse
import asyncio
import contextlib
import gc
import json
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from dataclasses import asdict, dataclass
from datetime import timedelta
from importlib.metadata import version
from pathlib import Path
from typing import Any, Protocol

import obstore
import uvloop
from obstore.store import S3Store
from pydantic import SecretStr

from infra.config import Settings, get_settings
from infra.storage.adapter import Storage, open_storage
from scripts.seaweed import SeaweedServer

KIB = 1024
MIB = 1024 * KIB
SMALL_BYTES = 64 * KIB
CONTENT_TYPE = "application/octet-stream"
WARMUP_CALLS = 32
# Measured against aiobotocore alone.
CHALLENGERS = ("storage", "obstore")


@dataclass(frozen=True, slots=True)
class Sample:
    calls: int
    wall_seconds: float
    cpu_seconds: float

    @property
    def calls_per_second(self) -> float:
        return self.calls / self.wall_seconds

    @property
    def cpu_us_per_call(self) -> float:
        return self.cpu_seconds / self.calls * 1e6


class Client(Protocol):
    """The four data-path operations, as each client's idiomatic async calls make them."""

    name: str

    async def put(self, key: str, body: bytes) -> str: ...  # returns the ETag
    async def head(self, key: str) -> int: ...  # returns the size
    async def get(self, key: str) -> int: ...  # streams the body to its end; returns its length
    async def delete(self, key: str) -> None: ...


async def _one_chunk(body: bytes) -> AsyncIterator[bytes]:
    yield body


class StorageClient:
    """The API's own code: a ``Storage`` on the clients ``open_storage`` builds."""

    def __init__(self, name: str, storage: Storage, settings: Settings) -> None:
        self.name = name
        self._storage = storage
        self._limit = settings.uploads.max_upload_bytes

    async def put(self, key: str, body: bytes) -> str:
        stored = await self._storage.put_stream(key, _one_chunk(body), CONTENT_TYPE, self._limit)
        return stored.etag

    async def head(self, key: str) -> int:
        info = await self._storage.head(key)
        if info is None:
            raise RuntimeError(f"HEAD {key}: missing")
        return info.size

    async def get(self, key: str) -> int:
        stream = await self._storage.open(key)
        if stream is None:
            raise RuntimeError(f"GET {key}: missing")
        received = 0
        async for chunk in stream.body:
            received += len(chunk)
        return received

    async def delete(self, key: str) -> None:
        await self._storage.delete(key)


def obstore_store(settings: Settings) -> S3Store:
    """An S3Store configured like the API's aiobotocore client: path-style addressing, the same
    endpoint, region and credentials, payload signing as ``s3_sign_payload``, no extra checksum,
    connect timeout 3 s, 3 attempts (2 retries)."""
    return S3Store(
        settings.storage.bucket,
        endpoint=settings.storage.endpoint_url,
        region=settings.storage.region,
        access_key_id=settings.storage.access_key,
        secret_access_key=settings.storage.secret_key.get_secret_value(),
        virtual_hosted_style_request=False,
        unsigned_payload=not settings.storage.sign_payload,
        client_options={
            "allow_http": settings.storage.endpoint_url.startswith("http://"),
            "connect_timeout": timedelta(seconds=3),
            "timeout": timedelta(seconds=60),
        },
        retry_config={"max_retries": 2},
    )


class Obstore:
    name = "obstore"

    def __init__(self, store: S3Store, settings: Settings) -> None:
        self._store = store
        self._chunk = settings.files.stream_chunk_bytes

    async def put(self, key: str, body: bytes) -> str:
        result = await obstore.put_async(
            self._store, key, body, attributes={"Content-Type": CONTENT_TYPE}
        )
        return result["e_tag"] or ""

    async def head(self, key: str) -> int:
        return (await obstore.head_async(self._store, key))["size"]

    async def get(self, key: str) -> int:
        result = await obstore.get_async(self._store, key)
        received = 0
        async for chunk in result.stream(min_chunk_size=self._chunk):
            received += len(chunk)
        return received

    async def delete(self, key: str) -> None:
        await obstore.delete_async(self._store, key)


async def _timed(call: Callable[[int], Awaitable[object]], calls: int, concurrency: int) -> Sample:
    """``call(0)`` .. ``call(calls - 1)``, by ``concurrency`` tasks taking the next index."""
    indexes = iter(range(calls))

    async def worker() -> None:
        for index in indexes:
            await call(index)

    gc.collect()
    cpu_started, wall_started = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return Sample(calls, time.perf_counter() - wall_started, time.process_time() - cpu_started)


@dataclass(frozen=True, slots=True)
class Plan:
    calls: int
    large_calls: int
    large_bytes: int
    concurrency: int
    rounds: int


OPERATIONS = ("put_64k", "head", "get_64k", "get_large", "delete")


def _operation_labels(plan: Plan) -> dict[str, str]:
    large = f"{plan.large_bytes // MIB} MiB"
    return {
        "put_64k": "PUT 64 KiB",
        "head": "HEAD",
        "get_64k": "GET 64 KiB (streamed)",
        "get_large": f"GET {large} (streamed, {plan.large_calls} calls)",
        "delete": "DELETE",
    }


def _steps(
    client: Client, plan: Plan, prefix: str, body: bytes, large_key: str
) -> dict[str, Callable[[], Coroutine[Any, Any, Sample]]]:
    """One round's operations for ``client``, in order, on keys of its own."""

    def key(index: int) -> str:
        return f"{prefix}/{client.name}/{index}"

    async def get_small(index: int) -> None:
        if await client.get(key(index)) != len(body):
            raise RuntimeError("GET returned a short body")

    async def get_large(_: int) -> None:
        if await client.get(large_key) != plan.large_bytes:
            raise RuntimeError("GET returned a short body")

    async def put(index: int) -> None:
        await client.put(key(index), body)

    async def head(index: int) -> None:
        if await client.head(key(index)) != len(body):
            raise RuntimeError("HEAD reported another size")

    async def delete(index: int) -> None:
        await client.delete(key(index))

    n, c = plan.calls, plan.concurrency
    return {
        "put_64k": lambda: _timed(put, n, c),
        "head": lambda: _timed(head, n, c),
        "get_64k": lambda: _timed(get_small, n, c),
        "get_large": lambda: _timed(get_large, plan.large_calls, c),
        "delete": lambda: _timed(delete, n, c),
    }


async def _warm_up(client: Client, prefix: str, body: bytes, concurrency: int) -> None:
    """Connections opened, botocore's service model loaded, before anything is timed."""
    warm = Plan(WARMUP_CALLS, 0, 0, concurrency, 1)
    for operation, step in _steps(client, warm, f"{prefix}/warmup", body, "").items():
        if operation != "get_large":
            await step()


async def _measure(settings: Settings, plan: Plan) -> dict[str, Any]:
    body = secrets.token_bytes(SMALL_BYTES)
    prefix = f"{settings.storage.key_prefix}/bench-s3-client"
    large_key = f"{prefix}/large"
    async with open_storage(settings) as storage:
        await storage.ensure_bucket()
        botocore_only = Storage(storage._client, storage._signer, settings)
        clients: list[Client] = [
            StorageClient("aiobotocore", botocore_only, settings),
            StorageClient("storage", storage, settings),
            Obstore(obstore_store(settings), settings),
        ]
        large = secrets.token_bytes(plan.large_bytes)
        await storage.put_stream(large_key, _one_chunk(large), CONTENT_TYPE, len(large))
        del large
        for client in clients:
            await _warm_up(client, prefix, body, plan.concurrency)
        samples: dict[str, dict[str, list[Sample]]] = {
            client.name: {operation: [] for operation in OPERATIONS} for client in clients
        }
        for round_number in range(plan.rounds):
            shift = round_number % len(clients)
            order = clients[shift:] + clients[:shift]
            steps = {
                client.name: _steps(client, plan, f"{prefix}/{round_number}", body, large_key)
                for client in order
            }
            for operation in OPERATIONS:
                for client in order:
                    sample = await steps[client.name][operation]()
                    samples[client.name][operation].append(sample)
                    print(
                        f"round {round_number + 1}/{plan.rounds} {operation:<9} "
                        f"{client.name:<11} {sample.calls_per_second:8.1f} calls/s "
                        f"{sample.cpu_us_per_call:9.1f} µs CPU/call",
                        file=sys.stderr,
                    )
        await storage.delete(large_key)
    return _summary(samples, plan)


def _summary(samples: dict[str, dict[str, list[Sample]]], plan: Plan) -> dict[str, Any]:
    medians: dict[str, dict[str, dict[str, float]]] = {
        name: {
            operation: {
                "calls_per_second": round(statistics.median(s.calls_per_second for s in runs), 1),
                "cpu_us_per_call": round(statistics.median(s.cpu_us_per_call for s in runs), 1),
            }
            for operation, runs in per_operation.items()
        }
        for name, per_operation in samples.items()
    }
    return {
        "plan": asdict(plan),
        "versions": {
            package: version(package) for package in ("aiobotocore", "botocore", "obstore")
        },
        "event_loop": "uvloop",
        "medians": medians,
        "cpu_ratio": {
            name: {
                operation: round(
                    medians["aiobotocore"][operation]["cpu_us_per_call"]
                    / medians[name][operation]["cpu_us_per_call"],
                    2,
                )
                for operation in OPERATIONS
            }
            for name in CHALLENGERS
        },
        "rounds": {
            name: {operation: [asdict(s) for s in runs] for operation, runs in per.items()}
            for name, per in samples.items()
        },
    }


def table(result: dict[str, Any]) -> str:
    plan = Plan(**result["plan"])
    labels = _operation_labels(plan)
    names = ("aiobotocore", *CHALLENGERS)
    lines = [
        "| operation | "
        + " | ".join(f"{name}: calls/s, µs CPU/call" for name in names)
        + " | "
        + " | ".join(
            f"CPU {name} / {challenger}" for name in names[:1] for challenger in CHALLENGERS
        )
        + " |",
        "|---" * (len(names) + len(CHALLENGERS) + 1) + "|",
    ]
    for operation in OPERATIONS:
        cells = []
        for name in names:
            figures = result["medians"][name][operation]
            cells.append(f"{figures['calls_per_second']:.1f}, {figures['cpu_us_per_call']:.1f}")
        ratios = [f"{result['cpu_ratio'][name][operation]:.2f}x" for name in CHALLENGERS]
        lines.append(f"| {labels[operation]} | " + " | ".join(cells + ratios) + " |")
    return "\n".join(lines)


@contextlib.contextmanager
def own_seaweed() -> Iterator[SeaweedServer]:
    """A SeaweedFS of this bench's own, on free ports, in a temporary folder."""
    with tempfile.TemporaryDirectory(prefix="bench-s3-client-") as workdir:
        server = SeaweedServer(
            workdir=Path(workdir),
            access_key="bench",
            secret_key=secrets.token_hex(16),
            bucket=f"bench-{secrets.token_hex(4)}",
        )
        server.start()
        try:
            yield server
        finally:
            server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--calls", type=int, default=2000, help="calls per operation and round")
    parser.add_argument(
        "--large-calls", type=int, help="GETs of the large object per round (default calls/20)"
    )
    parser.add_argument("--large-mib", type=int, default=8, help="size of the large object")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    plan = Plan(
        calls=args.calls,
        large_calls=args.large_calls or max(args.calls // 20, args.concurrency),
        large_bytes=args.large_mib * MIB,
        concurrency=args.concurrency,
        rounds=args.rounds,
    )
    with own_seaweed() as server:
        settings = get_settings().with_changes(
            **{
                "s3_endpoint_url": server.endpoint_url,
                "s3_public_endpoint_url": None,
                "s3_access_key": server.access_key,
                "s3_secret_key": SecretStr(server.secret_key),
                "s3_bucket": server.bucket,
            }
        )
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            result = runner.run(_measure(settings, plan))
    print(
        f"{plan.calls} calls per operation ({plan.large_calls} for the large GET), "
        f"concurrency {plan.concurrency}, median of {plan.rounds} rounds; CPU ratio = "
        "aiobotocore µs / the other's µs (storage: PUT and HEAD by infra.storage.s3_requests); "
        + ", ".join(f"{name} {v}" for name, v in result["versions"].items())
    )
    print(table(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
