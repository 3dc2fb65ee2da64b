"""The request limits as a client meets them over TCP, against ``python -m api.serve``: headers
over ``FILESTORE_MAX_HEADER_BYTES`` answered 431 by the HTTP protocol, whether they come in one
read or trickle in; and an upload trickled a byte at a time cut with 408."""

import asyncio
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from domain.models import ObjectDeletion, Upload, UploadStatus
from infra.config import Settings
from scripts.seaweed import free_port
from tests.helpers import ROOT, make_account

pytestmark = pytest.mark.e2e

MAX_HEADER_BYTES = 8192
STARTUP_SECONDS = 60


@pytest.fixture(scope="module")
def server(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    env = {
        **os.environ,
        "FILESTORE_ENVIRONMENT": "test",
        "FILESTORE_DATABASE_URL": settings.database.url,
        "FILESTORE_REDIS_URL": settings.redis.url,
        "FILESTORE_S3_ENDPOINT_URL": settings.storage.endpoint_url,
        "FILESTORE_S3_ACCESS_KEY": settings.storage.access_key,
        "FILESTORE_S3_SECRET_KEY": settings.storage.secret_key.get_secret_value(),
        "FILESTORE_S3_BUCKET": settings.storage.bucket,
        "FILESTORE_JWT_SECRET": settings.auth.jwt_secret.get_secret_value(),
        "FILESTORE_LOG_LEVEL": "WARNING",
        "FILESTORE_RUN_PORT": str(port),
        "FILESTORE_API_PROCESSES": "1",
        "FILESTORE_MAX_HEADER_BYTES": str(MAX_HEADER_BYTES),
        "FILESTORE_REQUEST_BODY_IDLE_SECONDS": "0.5",
        "FILESTORE_REQUEST_BODY_MIN_RATE_BYTES": "1000",
        "FILESTORE_REQUEST_BODY_RATE_WINDOW_SECONDS": "0.5",
    }
    log_path = tmp_path_factory.mktemp("serve") / "api.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "api.serve"], cwd=ROOT, env=env, stderr=log
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            assert process.poll() is None, log_path.read_text()[-2000:]
            assert time.monotonic() < deadline, "the API did not start"
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


async def _exchange(url: str, pieces: list[bytes], pause: float = 0.0) -> bytes:
    """Send ``pieces`` (``pause`` between them) until the server answers, and read the answer
    until the server closes, as a client that reads while it sends."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    answer = bytearray()

    async def read() -> None:
        with contextlib.suppress(ConnectionError):
            while chunk := await reader.read(65536):
                answer.extend(chunk)

    reading = asyncio.create_task(read())
    try:
        for piece in pieces:
            if answer or reading.done():
                break
            try:
                writer.write(piece)
                await writer.drain()
            except ConnectionError:
                break
            if pause:
                await asyncio.sleep(pause)
        await asyncio.wait_for(reading, 30)
        return bytes(answer)
    finally:
        writer.close()


def _status_and_body(answer: bytes) -> tuple[int, bytes]:
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), body


def _get(header_bytes: int) -> bytes:
    return (
        b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
        b"X-Padding: " + b"a" * header_bytes + b"\r\n\r\n"
    )


@pytest.mark.parametrize(
    "request_bytes",
    [
        pytest.param(_get(MAX_HEADER_BYTES + 100), id="just-over-one-read"),
        pytest.param(_get(1024 * 1024), id="one-mebibyte"),
    ],
)
async def test_headers_over_the_limit_are_refused(server: str, request_bytes: bytes) -> None:
    status, body = _status_and_body(await _exchange(server, [request_bytes]))
    assert status == 431
    assert httpx.Response(status, content=body).json() == {
        "error": "headers_too_large",
        "detail": f"The request line and headers are over {MAX_HEADER_BYTES} bytes.",
    }


async def test_headers_that_never_end_are_refused(server: str) -> None:
    """A header value trickled in 1 KiB pieces is refused once the pieces pass the limit,
    though the parser never saw it end."""
    start = b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Padding: "
    pieces = [start, *[b"a" * 1024] * 64]
    status, _ = _status_and_body(await _exchange(server, pieces, pause=0.01))
    assert status == 431


async def test_headers_under_the_limit_pass(server: str) -> None:
    status, _ = _status_and_body(await _exchange(server, [_get(MAX_HEADER_BYTES - 200)]))
    assert status == 200


async def test_a_trickled_upload_is_cut_with_408(server: str, app: FastAPI) -> None:
    async with httpx.AsyncClient(base_url=f"{server}/api/v1") as http:
        alice = await make_account(http)
    boundary = "trickle"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="t.bin"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    request = (
        "POST /api/v1/files/upload?path=/trickle.bin HTTP/1.1\r\nHost: t\r\n"
        f"Authorization: {alice.headers['Authorization']}\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
        f"Content-Length: {1024 * 1024}\r\n\r\n"
    ).encode()
    started = time.monotonic()
    answer = await _exchange(server, [request + head, *[b"x"] * 200], pause=0.1)
    status, body = _status_and_body(answer)
    assert status == 408, answer
    assert httpx.Response(status, content=body).json()["error"] == "request_timeout"
    assert b"connection: close" in answer.lower()
    assert time.monotonic() - started < 5
    async with app.state.sessionmaker() as session:
        [upload] = (await session.execute(select(Upload))).scalars()
        deletions = set((await session.execute(select(ObjectDeletion.object_key))).scalars())
    assert upload.status == UploadStatus.failed
    assert upload.object_key in deletions


def test_every_uvicorn_of_the_repository_uses_the_protocol() -> None:
    """Wherever the app runs under uvicorn, the header limit holds."""
    for path in (
        "soak/stack.py",
        "tests/infra/test_metrics_multiprocess.py",
        "bench/metrics_cost.py",
    ):
        text = Path(ROOT, path).read_text()
        assert '"--http", HTTP' in text, path
