"""What the tests share besides fixtures: accounts, uploads through the API, and the bucket
seen through a client of the tests' own (never the adapter's private one)."""

import secrets
import shutil
import subprocess
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from infra.db import Database
from scripts.seaweed import free_port
from worker.context import Context, Deps

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client
else:
    S3Client = Any

RunWorker = Callable[[], Awaitable[None]]

TESTS_DIR = Path(__file__).resolve().parent
ROOT = TESTS_DIR.parent
EVENT_FIXTURES = TESTS_DIR / "fixtures" / "events"


@dataclass
class Account:
    login: str
    password: str
    headers: dict[str, str]
    id: uuid.UUID


async def make_account(client: httpx.AsyncClient, login: str | None = None) -> Account:
    login = login or f"user_{secrets.token_hex(4)}"
    password = secrets.token_urlsafe(12)
    registered = await client.post("/user/register", json={"login": login, "password": password})
    assert registered.status_code == 201, registered.text
    token = await client.post("/user/auth", json={"login": login, "password": password})
    assert token.status_code == 200, token.text
    headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
    return Account(login, password, headers, uuid.UUID(registered.json()["id"]))


async def upload(
    client: httpx.AsyncClient,
    account: Account,
    path: str,
    content: bytes,
    filename: str = "file.bin",
    content_type: str = "application/octet-stream",
) -> httpx.Response:
    return await client.post(
        "/files/upload",
        headers=account.headers,
        data={"path": path},
        files={"file": (filename, content, content_type)},
    )


class Bucket:
    """The test bucket as storage holds it: to look behind the API's back, or to put what no
    upload made (orphans, abandoned multipart uploads)."""

    def __init__(self, client: S3Client, name: str) -> None:
        self.client = client
        self.name = name

    async def keys(self, prefix: str = "") -> set[str]:
        found: set[str] = set()
        async for page in self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.name, Prefix=prefix
        ):
            found |= {item["Key"] for item in page.get("Contents", [])}
        return found

    async def put(self, key: str, body: bytes = b"orphan", **extra: Any) -> str:
        await self.client.put_object(Bucket=self.name, Key=key, Body=body, **extra)
        return key

    async def delete(self, key: str) -> None:
        await self.client.delete_object(Bucket=self.name, Key=key)

    async def multipart_uploads(self, prefix: str = "") -> set[tuple[str, str]]:
        response = await self.client.list_multipart_uploads(
            Bucket=self.name, Prefix=prefix, MaxUploads=1000
        )
        assert not response.get("IsTruncated")
        return {(item["Key"], item["UploadId"]) for item in response.get("Uploads", [])}

    async def start_multipart(self, key: str, part: bytes = b"part" * 1024) -> str:
        """A multipart upload with one part stored, never completed."""
        created = await self.client.create_multipart_upload(Bucket=self.name, Key=key)
        upload_id = created["UploadId"]
        await self.client.upload_part(
            Bucket=self.name, Key=key, UploadId=upload_id, PartNumber=1, Body=part
        )
        return upload_id


class OwnRedis:
    """A Redis of a test's own on a spare port, so stopping it harms nobody; restarted, it
    comes back empty on the same port."""

    def __init__(self, directory: str) -> None:
        binary = shutil.which("redis-server")
        assert binary, "redis-server is needed on PATH"
        self.binary, self.directory, self.port = binary, directory, free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> "OwnRedis":
        command = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1"]
        command += ["--save", "", "--appendonly", "no"]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, cwd=self.directory)
        deadline = time.monotonic() + 10
        ping = ["redis-cli", "-p", str(self.port), "ping"]
        while subprocess.run(ping, capture_output=True, check=False).stdout.strip() != b"PONG":
            assert time.monotonic() < deadline, "redis did not start"
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None


def worker_ctx(app: Any, settings: Any, storage: Any = None, job_try: int = 1) -> Context:
    """What a job gets from the worker, built on the test app's clients (``storage`` to give
    one of its own, such as an unreachable one; ``settings`` decide the transactions' retry)."""
    database = Database(app.state.sessionmaker, settings.database.transaction_retry_seconds)
    storage = storage if storage is not None else app.state.storage
    deps = Deps(settings, database, storage, app.state.redis)
    return {"deps": deps, "redis": app.state.redis, "job_try": job_try}


async def intent(client: httpx.AsyncClient, account: Account, **body: Any) -> httpx.Response:
    """A JSON upload intent (a direct upload's ticket)."""
    return await client.post("/files/upload", json=body, headers=account.headers)


async def ticket_for(client: httpx.AsyncClient, account: Account, **body: Any) -> dict[str, Any]:
    """The ticket of an intent that must succeed."""
    response = await intent(client, account, **body)
    assert response.status_code == 201, response.text
    ticket: dict[str, Any] = response.json()["upload"]
    return ticket


async def put(ticket: dict[str, Any], content: bytes, **headers: str) -> httpx.Response:
    """The ticket's presigned PUT, with the headers it signs (and any others given)."""
    async with httpx.AsyncClient() as plain:
        sent = {**ticket["headers"], **headers}
        sent.pop("Content-Length", None)  # httpx sets it from the body
        return await plain.put(ticket["url"], content=content, headers=sent)


async def complete(
    client: httpx.AsyncClient, account: Account, upload_id: str, body: Any = None
) -> httpx.Response:
    return await client.post(
        f"/files/uploads/{upload_id}/complete",
        headers=account.headers,
        **({"json": body} if body is not None else {}),
    )


async def listed(client: httpx.AsyncClient, account: Account) -> list[dict[str, Any]]:
    files: list[dict[str, Any]] = (await client.get("/files", headers=account.headers)).json()[
        "files"
    ]
    return files


async def user_keys(bucket: Bucket, account: Account) -> set[str]:
    """The objects storage holds under the account's prefix."""
    return await bucket.keys(f"uploads/{account.id}/")


def key_of(ticket: dict[str, Any], bucket: str) -> str:
    """The object key a ticket's presigned URL writes to."""
    return str(ticket["url"].split("?")[0].split(f"/{bucket}/", 1)[1])


def webhook_headers(settings: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {settings.auth.webhook_token.get_secret_value()}"}
