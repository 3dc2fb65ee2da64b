"""`make run`'s entry point, started as a process and driven over HTTP as a new user would."""

import asyncio
import contextlib
import hashlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest

from scripts.seaweed import free_port
from tests.conftest import ADMIN_DSN
from tests.helpers import ROOT

pytestmark = pytest.mark.e2e


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="module")
async def running_service(
    tmp_path_factory: pytest.TempPathFactory, run_id: str, redis_url: str
) -> AsyncIterator[tuple[str, int, subprocess.Popen[bytes]]]:
    tmp_path = tmp_path_factory.mktemp("e2e")
    port, s3_port = free_port(), free_port()
    database = f"filestore_e2e_{run_id}"
    base = ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    env = {
        **os.environ,
        "FILESTORE_DATABASE_URL": f"{base}/{database}",
        "FILESTORE_REDIS_URL": redis_url,
        "FILESTORE_S3_ENDPOINT_URL": f"http://127.0.0.1:{s3_port}",
        "FILESTORE_S3_BUCKET": f"e2e-{run_id}",
        "FILESTORE_RUN_PORT": str(port),
        "FILESTORE_RUN_DATA_DIR": str(tmp_path / "var"),
        "FILESTORE_LOG_LEVEL": "WARNING",
    }
    with (tmp_path / "run.log").open("wb") as run_log:
        process = subprocess.Popen(
            [sys.executable, "-m", "scripts.run"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=run_log,
            start_new_session=True,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        async with httpx.AsyncClient() as http:
            while True:
                assert process.poll() is None, (tmp_path / "run.log").read_text()[-3000:]
                assert time.monotonic() < deadline, "the service did not come up"
                try:
                    if (await http.get(f"{base_url}/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.2)
        yield base_url, s3_port, process
    finally:
        # The whole group: a killed runner must not leave its API, worker or weed behind.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        admin = await asyncpg.connect(ADMIN_DSN)
        await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        await admin.close()


async def _account(http: httpx.AsyncClient, login: str) -> dict[str, str]:
    registered = await http.post("/user/register", json={"login": login, "password": "pass1234"})
    assert registered.status_code == 201
    token = await http.post("/user/auth", data={"username": login, "password": "pass1234"})
    return {"Authorization": f"Bearer {token.json()['access_token']}"}


async def test_presigned_put_is_confirmed_through_the_storage_webhook(
    running_service: tuple[str, int, subprocess.Popen[bytes]],
) -> None:
    """Presigned PUT → SeaweedFS → its filer webhook → the API → the arq worker → listed."""
    base_url, _, _ = running_service
    content = os.urandom(100_000)
    async with httpx.AsyncClient(base_url=f"{base_url}/api/v1", timeout=30) as http:
        headers = await _account(http, "direct")
        pending = await http.post(
            "/files/upload",
            json={"path": "/in/", "name": "photo.jpg", "size": len(content)},
            headers=headers,
        )
        assert pending.status_code == 201, pending.text
        ticket = pending.json()["upload"]
        async with httpx.AsyncClient() as plain:
            sent = await plain.put(
                ticket["url"], content=content, headers={"Content-Type": "image/jpeg"}
            )
        assert sent.status_code == 200, sent.text
        deadline = time.monotonic() + 15
        while True:
            files = (await http.get("/files", headers=headers)).json()["files"]
            if files:
                break
            assert time.monotonic() < deadline, "the upload was never confirmed"
            await asyncio.sleep(0.05)
    [file] = files
    assert file["path"] == "/in/photo.jpg"
    assert file["size"] == len(content)
    assert file["content_type"] == "image/jpeg"
    assert file["etag"] == hashlib.md5(content).hexdigest()


async def test_a_reused_put_url_is_seen_through_the_webhook(
    running_service: tuple[str, int, subprocess.Popen[bytes]],
) -> None:
    """An overwrite of a confirmed object (SeaweedFS ``update``) is confirmed again: the record
    follows the object and the quota counts what storage holds."""
    base_url, _, _ = running_service
    async with httpx.AsyncClient(base_url=f"{base_url}/api/v1", timeout=30) as http:
        headers = await _account(http, "reuse")
        ticket = (
            await http.post("/files/upload", json={"path": "/r.bin"}, headers=headers)
        ).json()["upload"]
        sizes = []
        async with httpx.AsyncClient() as plain:
            for body in (b"1", os.urandom(2 * 1024 * 1024)):
                sent = await plain.put(ticket["url"], content=body, headers=ticket["headers"])
                assert sent.status_code == 200, sent.text
                deadline = time.monotonic() + 15
                while True:
                    files = (await http.get("/files", headers=headers)).json()["files"]
                    if files and files[0]["size"] == len(body):
                        break
                    assert time.monotonic() < deadline, f"{len(body)} bytes never confirmed"
                    await asyncio.sleep(0.05)
                sizes.append(files[0]["size"])
    assert sizes == [1, 2 * 1024 * 1024]


async def test_head_works_on_a_real_server(
    running_service: tuple[str, int, subprocess.Popen[bytes]],
) -> None:
    """What ``curl -I`` and ``wget -c --content-disposition`` send: uvicorn answers the HEAD
    with the GET's headers (Content-Length included) and no body."""
    base_url, _, _ = running_service
    async with httpx.AsyncClient(base_url=f"{base_url}/api/v1", timeout=30) as http:
        headers = await _account(http, "header")
        stored = await http.post(
            "/files/upload",
            headers=headers,
            files={"file": ("h.txt", b"x" * 1234)},
            params={"path": "/h.txt"},
        )
        assert stored.status_code == 201, stored.text
        redirect = await http.head("/files/download", params={"path": "/h.txt"}, headers=headers)
        assert redirect.status_code == 307
        proxied = await http.head(
            "/files/download", params={"path": "/h.txt", "proxy": "true"}, headers=headers
        )
        assert proxied.status_code == 200
        assert proxied.headers["content-length"] == "1234"
        assert "h.txt" in proxied.headers["content-disposition"]
        assert proxied.content == b""
        again = await http.get("/files", headers=headers)  # the connection is still sound
        assert again.status_code == 200


async def test_make_run_serves_the_api_and_stops_cleanly(
    running_service: tuple[str, int, subprocess.Popen[bytes]],
) -> None:
    base_url, s3_port, process = running_service
    content = os.urandom(3 * 1024 * 1024)
    async with httpx.AsyncClient(base_url=f"{base_url}/api/v1", timeout=30) as http:
        headers = await _account(http, "e2e")
        ping = await http.get("/files/ping", headers=headers)
        assert ping.status_code == 200, ping.text
        stored = await http.post(
            "/files/upload",
            headers=headers,
            data={"path": "/e2e/"},
            files={"file": ("данные.bin", content)},
        )
        assert stored.status_code == 201, stored.text
        listing = (await http.get("/files", headers=headers)).json()
        assert listing["account"] == "e2e"
        assert [f["path"] for f in listing["files"]] == ["/e2e/данные.bin"]
        redirect = await http.get(
            "/files/download", params={"path": "/e2e/данные.bin"}, headers=headers
        )
        assert redirect.status_code == 307
        async with httpx.AsyncClient() as plain:
            fetched = await plain.get(redirect.headers["location"])
        assert hashlib.sha256(fetched.content).digest() == hashlib.sha256(content).digest()
        openapi = await http.get(f"{base_url}/openapi.json")
        assert openapi.status_code == 200
        missing = await http.get("/nope", headers=headers)
        assert missing.status_code == 404
        assert missing.json()["error"] == "not_found"
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=30) == 0
    port = int(base_url.rsplit(":", 1)[1])
    assert not _port_open(port)
    assert not _port_open(s3_port)
