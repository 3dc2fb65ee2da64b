"""Records never diverge from storage: regression tests for the defects an adversarial run found.

Every service is real; the only injected fault is a database error raised from our own
confirmation step (a database cannot be made to fail at exactly that instant otherwise).
"""

import asyncio
import base64
import contextlib
import hashlib
import os
import random
import uuid
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from domain.models import (
    File,
    FileVersion,
    ObjectDeletion,
    TrashedFile,
    Upload,
    UploadKind,
    UploadStatus,
    User,
)
from infra.config import Settings
from infra.db import Database
from infra.jobs import enqueue_confirm
from infra.storage.adapter import Storage
from tests.helpers import (
    Account,
    Bucket,
    RunWorker,
    key_of,
    put,
    ticket_for,
    upload,
    user_keys,
    worker_ctx,
)
from worker import tasks


class DriverError(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__(sqlstate)
        self.sqlstate = sqlstate


T = TypeVar("T")


def database_restarting() -> DBAPIError:
    return DBAPIError("COMMIT", {}, DriverError("57P01"))


class FaultyDatabase(Database):
    """The app's database, but the transactions whose numbers (1-based, in call order) satisfy
    ``failing`` meet a restarting PostgreSQL on every attempt; their retries run as usual."""

    def __init__(self, app: FastAPI, failing: Callable[[int], bool], retry_seconds: float):
        super().__init__(app.state.sessionmaker, retry_seconds)
        self.failing = failing
        self.calls = 0

    async def transaction(self, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
        self.calls += 1
        if not self.failing(self.calls):
            return await super().transaction(work)

        async def restarting(session: AsyncSession) -> T:
            raise database_restarting()

        return await super().transaction(restarting)


@contextlib.contextmanager
def database_of(app: FastAPI, database: Database) -> Iterator[None]:
    """``database`` serves the app's requests meanwhile."""
    kept = app.state.database
    app.state.database = database
    try:
        yield
    finally:
        app.state.database = kept


async def scalar(app: FastAPI, query: Any) -> Any:
    async with app.state.sessionmaker() as session:
        return (await session.execute(query)).scalar_one()


async def assert_consistent(app: FastAPI, bucket: Bucket, account: Account) -> None:
    """Record and storage agree: every object a file, a version or the trash holds exists with
    its size and etag, the quota counts exactly their sizes (versions and trash apart too), the
    reservations exactly the pending uploads', and (once the outbox is drained) nothing else is
    stored."""
    async with app.state.sessionmaker() as session:
        files = (
            (await session.execute(select(File).where(File.object_key.is_not(None))))
            .scalars()
            .all()
        )
        versions = (await session.execute(select(FileVersion))).scalars().all()
        trashed = (await session.execute(select(TrashedFile))).scalars().all()
        user = await session.get(User, account.id)
        assert user is not None
        outbox = (await session.execute(select(func.count(ObjectDeletion.id)))).scalar_one()
        pending = (
            await session.execute(
                select(func.coalesce(func.sum(Upload.reserved_bytes), 0), func.count()).where(
                    Upload.owner_id == account.id, Upload.status == UploadStatus.pending
                )
            )
        ).one()
    assert (user.reserved_bytes, user.open_uploads) == tuple(pending)
    assert outbox == 0
    held: list[File | FileVersion | TrashedFile] = [*files, *versions, *trashed]
    for item in held:
        assert item.object_key is not None
        info = await app.state.storage.head(item.object_key)
        assert info is not None, item
        assert (info.size, info.etag) == (item.size, item.etag)
    assert user.version_bytes == sum(version.size for version in versions)
    assert user.trash_bytes == sum(file.size for file in trashed)
    assert user.used_bytes == sum(item.size or 0 for item in held)
    assert await user_keys(bucket, account) == {item.object_key for item in held}


@pytest.mark.parametrize("quota", [1024 * 1024, 256 * 1024 * 1024])
async def test_a_reused_put_url_cannot_bypass_the_quota(
    client: httpx.AsyncClient,
    alice: Account,
    app: FastAPI,
    settings: Settings,
    storage: Storage,
    run_worker: RunWorker,
    quota: int,
    bucket: Bucket,
) -> None:
    """Defect 1: PUT 1 byte, confirm, PUT 2 MiB to the same URL. Reconcile sees the changed
    etag and checks the new bytes like a new upload: refused over the quota, else recorded."""
    limited = settings.with_changes(**{"user_quota_bytes": quota})
    ticket = await ticket_for(client, alice, path="/reused.bin")
    assert (await put(ticket, b"1")).status_code == 200
    done = await client.post(f"/files/uploads/{ticket['id']}/complete", headers=alice.headers)
    assert done.json()["status"] == "completed"
    bigger = os.urandom(2 * 1024 * 1024)
    assert (await put(ticket, bigger)).status_code == 200
    counts = await tasks.reconcile_uploads(worker_ctx(app, limited))
    assert counts["rechecked"] == 1
    await run_worker()
    listed = (await client.get("/files", headers=alice.headers)).json()["files"]
    if quota < len(bigger):
        assert listed == []
        state = (await client.get(f"/files/uploads/{ticket['id']}", headers=alice.headers)).json()
        assert state["status"] == "rejected"
        assert "quota" in state["reason"]
    else:
        assert [file["size"] for file in listed] == [len(bigger)]
    await assert_consistent(app, bucket, alice)


async def test_uploads_and_deletes_of_one_path_never_deadlock(
    client: httpx.AsyncClient,
    alice: Account,
    app: FastAPI,
    storage: Storage,
    run_worker: RunWorker,
    bucket: Bucket,
) -> None:
    """Defect 2: proxied uploads and deletes of one path, concurrently. One lock order (file,
    upload, user) leaves nothing to deadlock; every answer is a 2xx or an expected 4xx."""
    rng = random.Random(7)

    async def client_loop() -> list[int]:
        statuses = []
        for _ in range(10):
            if rng.random() < 0.5:
                response = await upload(client, alice, "/x", os.urandom(rng.randint(1, 4096)))
            else:
                response = await client.delete(
                    "/files", params={"path": "/x"}, headers=alice.headers
                )
            statuses.append(response.status_code)
        return statuses

    results = await asyncio.gather(*(client_loop() for _ in range(8)))
    statuses = [status for result in results for status in result]
    assert set(statuses) <= {200, 201, 204, 404, 409}, statuses
    assert 201 in statuses
    assert 204 in statuses
    await run_worker()
    await assert_consistent(app, bucket, alice)


async def test_a_deadlocked_transaction_is_retried(
    app: FastAPI, alice: Account, bob: Account
) -> None:
    """Two transactions lock two rows in opposite orders: PostgreSQL aborts one with a deadlock,
    the shared classifier calls it transient, and ``Database.transaction`` runs it again."""
    both_locked_one = asyncio.Barrier(2)
    attempts = {alice.id: 0, bob.id: 0}

    def locking(first: uuid.UUID, second: uuid.UUID) -> Callable[[AsyncSession], Awaitable[None]]:
        async def work(session: AsyncSession) -> None:
            attempts[first] += 1
            lock = text("SELECT 1 FROM users WHERE id = :id FOR UPDATE")
            await session.execute(lock, {"id": first})
            if attempts[first] == 1:
                await both_locked_one.wait()
            await session.execute(lock, {"id": second})

        return work

    await asyncio.gather(
        Database(app.state.sessionmaker, 10).transaction(locking(alice.id, bob.id)),
        Database(app.state.sessionmaker, 10).transaction(locking(bob.id, alice.id)),
    )
    assert sorted(attempts.values()) == [1, 2]


async def test_a_failed_proxied_upload_never_becomes_content(
    client: httpx.AsyncClient,
    alice: Account,
    app: FastAPI,
    settings: Settings,
    storage: Storage,
    run_worker: RunWorker,
    monkeypatch: pytest.MonkeyPatch,
    bucket: Bucket,
) -> None:
    """Defect 3: the object is stored, then confirmation fails (the database restarts). The
    client hears 503, the upload ends ``failed``, and neither its notification nor reconcile
    ever makes it the content: the older content stays, and the failed object is deleted."""
    assert (await upload(client, alice, "/doc.txt", b"version one")).status_code == 201

    confirmation_fails = FaultyDatabase(app, lambda number: number == 2, retry_seconds=0.2)
    with database_of(app, confirmation_fails):  # 1 opens the upload, 2 confirms, 3 fails it
        failed = await upload(client, alice, "/doc.txt", b"version two")
    assert failed.status_code == 503
    assert failed.json()["error"] == "database_unavailable"
    async with app.state.sessionmaker() as session:
        attempt = (
            await session.execute(select(Upload).where(Upload.status == UploadStatus.failed))
        ).scalar_one()
    assert attempt.kind == UploadKind.proxied
    assert await tasks.confirm_upload(worker_ctx(app, settings), attempt.object_key) == "not_ours"
    await tasks.reconcile_uploads(worker_ctx(app, settings))
    await run_worker()
    fetched = await client.get(
        "/files/download", params={"path": "/doc.txt", "proxy": "true"}, headers=alice.headers
    )
    assert fetched.content == b"version one"
    assert await storage.head(attempt.object_key) is None
    await assert_consistent(app, bucket, alice)


async def test_an_upload_whose_api_died_fails_when_its_lease_runs_out(
    client: httpx.AsyncClient,
    alice: Account,
    app: FastAPI,
    settings: Settings,
    storage: Storage,
    run_worker: RunWorker,
    monkeypatch: pytest.MonkeyPatch,
    bucket: Bucket,
) -> None:
    """Nothing could be recorded (the database stayed down): the row is left pending with its
    object stored, as when the API process dies. Its lease runs out and reconcile fails it."""

    down_after_opening = FaultyDatabase(app, lambda number: number > 1, retry_seconds=0.2)
    with database_of(app, down_after_opening):
        response = await upload(client, alice, "/orphan.txt", b"stored, never confirmed")
    assert response.status_code == 503
    async with app.state.sessionmaker() as session:
        pending = (await session.execute(select(Upload))).scalar_one()
        assert pending.status == UploadStatus.pending
        assert await storage.head(pending.object_key) is not None
        await session.execute(
            update(Upload).values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
        await session.commit()
    assert await tasks.confirm_upload(worker_ctx(app, settings), pending.object_key) == "not_ours"
    counts = await tasks.reconcile_uploads(worker_ctx(app, settings))
    assert (counts["failed"], counts["files_removed"]) == (1, 1)
    await run_worker()
    state = (await client.get(f"/files/uploads/{pending.id}", headers=alice.headers)).json()
    assert state["status"] == "failed"
    assert (await client.get("/files", headers=alice.headers)).json()["files"] == []
    await assert_consistent(app, bucket, alice)


@pytest.mark.usefixtures("final_deletes")
async def test_a_reused_url_after_delete_is_cleaned_up(
    client: httpx.AsyncClient,
    alice: Account,
    app: FastAPI,
    settings: Settings,
    storage: Storage,
    run_worker: RunWorker,
    bucket: Bucket,
) -> None:
    """Defect 4a: the same bytes PUT again after the file's deletion produce the same etag. A
    finished confirmation's job id must not swallow the second notification."""
    ticket = await ticket_for(client, alice, path="/gone.txt")
    key = key_of(ticket, settings.storage.bucket)
    assert (await put(ticket, b"same bytes")).status_code == 200
    etag = hashlib.md5(b"same bytes").hexdigest()
    await enqueue_confirm(app.state.redis, key, etag)
    await run_worker()
    deleted = await client.delete("/files", params={"path": "/gone.txt"}, headers=alice.headers)
    assert deleted.status_code == 204
    await run_worker()
    assert await storage.head(key) is None
    assert (await put(ticket, b"same bytes")).status_code == 200
    await enqueue_confirm(app.state.redis, key, etag)
    queued = await app.state.redis.queued_jobs()
    assert len(queued) == 1
    await run_worker()
    assert await storage.head(key) is None
    await assert_consistent(app, bucket, alice)


@pytest.mark.usefixtures("final_deletes")
async def test_deletions_survive_a_lost_queue(
    client: httpx.AsyncClient,
    alice: Account,
    app: FastAPI,
    settings: Settings,
    storage: Storage,
    bucket: Bucket,
) -> None:
    """Defect 4b/c: deletions are outbox rows written with the change, so Redis losing every
    key (or a process killed right after the commit) loses none of them."""
    await upload(client, alice, "/a.txt", b"first")
    await upload(client, alice, "/a.txt", b"second")  # the first object is replaced
    await upload(client, alice, "/b.txt", b"deleted")
    await client.delete("/files", params={"path": "/b.txt"}, headers=alice.headers)
    assert await scalar(app, select(func.count(ObjectDeletion.id))) == 2
    await app.state.redis.flushdb()
    counts = await tasks.drain_outbox(worker_ctx(app, settings))
    assert counts == {"deleted": 2, "deferred": 0, "kept": 0}
    await assert_consistent(app, bucket, alice)


async def test_a_declared_sha256_is_enforced_at_confirmation(
    client: httpx.AsyncClient,
    alice: Account,
    app: FastAPI,
    settings: Settings,
    storage: Storage,
    run_worker: RunWorker,
    bucket: Bucket,
) -> None:
    """Defect 7: the intent offers no POST when a checksum is declared, and an object whose
    checksum (as storage reports it) differs is rejected at confirmation."""
    declared = hashlib.sha256(b"what I promised").hexdigest()
    ticket = await ticket_for(client, alice, path="/sum.txt", sha256=declared)
    assert ticket["post"] is None
    other = b"something else entirely"
    await bucket.put(
        key_of(ticket, settings.storage.bucket),
        other,
        ChecksumSHA256=base64.b64encode(hashlib.sha256(other).digest()).decode(),
    )
    closed = await client.post(f"/files/uploads/{ticket['id']}/complete", headers=alice.headers)
    assert closed.status_code == 409
    assert "SHA-256" in closed.json()["detail"]
    await run_worker()
    await assert_consistent(app, bucket, alice)
