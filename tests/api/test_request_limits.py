"""Request deadlines and proxied upload slots, in process: bodies that stall or trickle end in
408 (a proxied upload ``failed``, its object to the outbox), and uploads streaming at once are
bounded per process (503) and per user (429), slots coming back however an upload ends."""

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from api.main import create_app
from domain.models import ObjectDeletion, Upload, UploadStatus
from domain.uploads.slots import user_key
from infra.config import Settings
from scripts.seaweed import free_port
from tests.helpers import Account, make_account

BOUNDARY = "limitsboundary"
LIMITS = {
    "request_body_idle_seconds": 0.5,
    "request_body_min_rate_bytes": 1000,
    "request_body_rate_window_seconds": 0.5,
    "proxied_uploads_per_process": 3,
    "proxied_uploads_per_user": 2,
    "proxied_upload_lease_seconds": 3,
}


@contextlib.asynccontextmanager
async def _running(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def limited(app: FastAPI, settings: Settings) -> AsyncIterator[FastAPI]:
    """The API with small limits, on the same services (``app`` cleans up after each test)."""
    async with _running(settings.with_changes(**LIMITS)) as application:
        yield application


@pytest.fixture
async def http(limited: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=limited)
    async with httpx.AsyncClient(transport=transport, base_url="http://test/api/v1") as client:
        yield client


def _head(path: str = "/slow.bin") -> bytes:
    return (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="path"\r\n\r\n{path}\r\n'
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="f.bin"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()


TAIL = f"\r\n--{BOUNDARY}--\r\n".encode()


class RawUpload:
    """A proxied upload driven message by message: what the client sends, when, and whether it
    hangs up, straight into the ASGI app."""

    def __init__(self, app: FastAPI, account: Account, path: str = "/slow.bin") -> None:
        self.app, self.account = app, account
        self.inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.sent: list[dict[str, Any]] = []
        self.task: asyncio.Task[None] | None = None
        self.body(_head(path))

    def body(self, data: bytes, more: bool = True) -> None:
        self.inbox.put_nowait({"type": "http.request", "body": data, "more_body": more})

    def finish(self, content: bytes = b"content") -> None:
        self.body(content + TAIL, more=False)

    def hang_up(self) -> None:
        self.inbox.put_nowait({"type": "http.disconnect"})

    def start(self) -> "RawUpload":
        headers = [
            (b"host", b"test"),
            (b"authorization", self.account.headers["Authorization"].encode()),
            (b"content-type", f"multipart/form-data; boundary={BOUNDARY}".encode()),
            (b"transfer-encoding", b"chunked"),
        ]
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": "/api/v1/files/upload",
            "raw_path": b"/api/v1/files/upload",
            "query_string": b"",
            "root_path": "",
            "headers": headers,
            "client": ("127.0.0.1", 5000),
            "server": ("test", 80),
            "state": {},
        }

        async def send(message: dict[str, Any]) -> None:
            self.sent.append(message)

        self.task = asyncio.create_task(self.app(scope, self.inbox.get, send))  # type: ignore[arg-type]
        return self

    async def answer(self) -> tuple[int, dict[str, str], bytes]:
        assert self.task is not None
        await asyncio.wait_for(self.task, 30)
        start = self.sent[0]
        headers = {name.decode(): value.decode() for name, value in start["headers"]}
        body = b"".join(message.get("body", b"") for message in self.sent[1:])
        return start["status"], headers, body


async def _until(condition: Any, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not await condition():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.02)


async def _upload_row(app: FastAPI, owner_id: uuid.UUID) -> Upload:
    async with app.state.sessionmaker() as session:
        query = select(Upload).where(Upload.owner_id == owner_id)
        row: Upload = (await session.execute(query)).scalar_one()
        return row


async def _outbox_keys(app: FastAPI) -> set[str]:
    async with app.state.sessionmaker() as session:
        return set((await session.execute(select(ObjectDeletion.object_key))).scalars())


async def _pending(app: FastAPI, owner_id: uuid.UUID) -> int:
    async with app.state.sessionmaker() as session:
        query = select(Upload).where(Upload.owner_id == owner_id)
        rows = (await session.execute(query)).scalars().all()
    return sum(row.status == UploadStatus.pending for row in rows)


async def _stalled_fails(limited: FastAPI, account: Account) -> dict[str, Any]:
    """An upload whose file part has begun, then nothing: 408, the upload failed, its object
    in the outbox."""
    raw = RawUpload(limited, account)
    raw.body(b"x" * 4096)
    raw.start()
    status, headers, body = await raw.answer()
    assert status == 408, body
    assert headers["connection"] == "close"
    row = await _upload_row(limited, account.id)
    assert row.status == UploadStatus.failed
    assert row.object_key in await _outbox_keys(limited)
    error: dict[str, Any] = httpx.Response(status, content=body).json()
    return error


async def test_a_stalled_proxied_upload_ends_408_and_failed(
    limited: FastAPI, http: httpx.AsyncClient
) -> None:
    alice = await make_account(http)
    error = await _stalled_fails(limited, alice)
    assert error == {
        "error": "request_timeout",
        "detail": "No body bytes arrived for 0.5 seconds.",
    }


async def test_a_trickling_proxied_upload_ends_408_and_failed(
    limited: FastAPI, http: httpx.AsyncClient
) -> None:
    """Never idle for long, but far under the minimum rate: cut after the first window."""
    alice = await make_account(http)
    raw = RawUpload(limited, alice).start()
    started = time.monotonic()
    while not raw.task.done():  # type: ignore[union-attr]
        raw.body(b"x")
        await asyncio.sleep(0.1)
    status, _, body = await raw.answer()
    assert status == 408, body
    error = httpx.Response(status, content=body).json()
    assert error["error"] == "request_timeout"
    assert "minimum is 1000 bytes/s" in error["detail"]
    assert time.monotonic() - started < 3
    row = await _upload_row(limited, alice.id)
    assert row.status == UploadStatus.failed
    assert row.object_key in await _outbox_keys(limited)


async def test_every_route_has_the_deadline(http: httpx.AsyncClient) -> None:
    async def stalled() -> AsyncIterator[bytes]:
        yield b'{"login": "slow'
        await asyncio.sleep(5)

    response = await http.post(
        "/user/register", content=stalled(), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 408
    assert response.json()["error"] == "request_timeout"


async def test_a_steady_body_is_not_cut(limited: FastAPI, http: httpx.AsyncClient) -> None:
    """Slow pieces that keep up the rate, over several windows, make a stored file."""
    alice = await make_account(http)
    raw = RawUpload(limited, alice).start()
    for _ in range(12):
        raw.body(b"y" * 200)  # 2000 bytes/s
        await asyncio.sleep(0.1)
    raw.finish()
    status, _, body = await raw.answer()
    assert status == 201, body


async def test_slots_per_user_and_per_process(limited: FastAPI, http: httpx.AsyncClient) -> None:
    """Two of alice's uploads fill her slots (429, Retry-After); one of bob's fills the
    process (503, Retry-After); a finished, a failed and a disconnected upload each give
    their slot back."""
    slow = {"request_body_idle_seconds": 30.0, "request_body_min_rate_bytes": 0}
    async with _running(limited.state.settings.with_changes(**slow)) as app:
        alice, bob = await make_account(http), await make_account(http)
        held = [RawUpload(app, alice, f"/held{n}.bin").start() for n in range(2)]
        await _until(lambda: _count_pending(app, alice.id, 2))

        status, headers, body = await RawUpload(app, alice, "/third.bin").start().answer()
        assert status == 429, body
        assert b'"too_many_uploads"' in body
        assert int(headers["retry-after"]) >= 1

        bobs = RawUpload(app, bob, "/bob.bin").start()
        await _until(lambda: _count_pending(app, bob.id, 1))
        status, headers, body = await RawUpload(app, bob, "/bob2.bin").start().answer()
        assert status == 503, body
        assert b'"server_busy"' in body
        assert int(headers["retry-after"]) >= 1

        held[0].finish()  # success
        assert (await held[0].answer())[0] == 201
        again = RawUpload(app, alice, "/again.bin").start()
        await _until(lambda: _count_pending(app, alice.id, 2))

        again.body(b"", more=False)  # failure: the body ends inside the file part
        assert (await again.answer())[0] == 400
        bobs.hang_up()  # client disconnect
        assert (await bobs.answer())[0] == 400
        held[1].hang_up()
        assert (await held[1].answer())[0] == 400

        assert app.state.upload_slots.active == 0
        assert await app.state.redis.zcard(user_key(alice.id)) == 0
        assert await app.state.redis.zcard(user_key(bob.id)) == 0
        for n in range(2):
            done = RawUpload(app, alice, f"/after{n}.bin")
            done.finish()
            assert (await done.start().answer())[0] == 201


async def _count_pending(app: FastAPI, owner_id: uuid.UUID, expected: int) -> bool:
    return await _pending(app, owner_id) == expected


async def test_a_dead_process_slot_runs_out_with_its_lease(
    limited: FastAPI, http: httpx.AsyncClient
) -> None:
    """Entries a dead process left (never renewed) stop counting after one lease."""
    alice = await make_account(http)
    redis = limited.state.redis
    lease_ms = LIMITS["proxied_upload_lease_seconds"] * 1000
    seconds, micros = await redis.time()
    stale = seconds * 1000 + micros // 1000 - lease_ms - 1
    await redis.zadd(user_key(alice.id), {"dead-1": stale, "dead-2": stale})
    raw = RawUpload(limited, alice)
    raw.finish()
    status, _, body = await raw.start().answer()
    assert status == 201, body
    assert await redis.zcard(user_key(alice.id)) == 0


async def test_a_long_upload_keeps_its_slot(limited: FastAPI, http: httpx.AsyncClient) -> None:
    """An upload streaming for longer than a lease is renewed, so it still counts."""
    alice = await make_account(http)
    raw = RawUpload(limited, alice).start()
    lease = LIMITS["proxied_upload_lease_seconds"]
    deadline = time.monotonic() + lease * 1.5
    while time.monotonic() < deadline:
        raw.body(b"z" * 500)
        await asyncio.sleep(0.1)
    seconds, micros = await limited.state.redis.time()
    now_ms = seconds * 1000 + micros // 1000
    [(_, score)] = await limited.state.redis.zrange(user_key(alice.id), 0, -1, withscores=True)
    assert now_ms - score < lease * 1000
    raw.finish()
    assert (await raw.answer())[0] == 201


async def test_slots_fail_open_without_redis(settings: Settings, app: FastAPI) -> None:
    """Redis down: uploads are limited per process only (the cache and throttle fail open)."""
    dead = {**LIMITS, "redis_url": f"redis://127.0.0.1:{free_port()}/0"}
    async with _running(settings.with_changes(**dead)) as application:
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://test/api/v1") as client:
            alice = await make_account(client)
            for n in range(3):
                raw = RawUpload(application, alice, f"/open{n}.bin")
                raw.finish()
                status, _, body = await raw.start().answer()
                assert status == 201, body
