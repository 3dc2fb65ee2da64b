"""The worker's jobs against real services, including transient failures and retries."""

import asyncio
import logging
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
from arq import Retry
from fastapi import FastAPI

from domain.objects.outbox import Outbox
from infra.config import Settings
from infra.jobs import enqueue_confirm
from infra.redis import create_redis
from infra.storage.adapter import open_storage
from scripts.seaweed import free_port
from tests.helpers import ROOT, Account, Bucket, OwnRedis, RunWorker, worker_ctx
from worker.tasks import confirm_upload, drain_outbox, sweep_bucket


async def test_storage_outage_is_retried_with_backoff(
    app: FastAPI, settings: Settings, client: httpx.AsyncClient, alice: Account
) -> None:
    ticket = (
        await client.post("/files/upload", json={"path": "/r.txt"}, headers=alice.headers)
    ).json()["upload"]
    key = ticket["url"].split("?")[0].split(f"/{settings.storage.bucket}/", 1)[1]
    dead = settings.with_changes(**{"s3_endpoint_url": f"http://127.0.0.1:{free_port()}"})
    async with open_storage(dead) as storage:
        ctx = worker_ctx(app, dead, storage, job_try=3)
        with pytest.raises(Retry) as retry:
            await confirm_upload(ctx, key)
        assert retry.value.defer_score == 2000  # 0.5 s doubled per try
        async with app.state.sessionmaker() as session:
            # Not the pending upload's own key: the drain keeps objects still referenced.
            await Outbox(session).add(f"{key}.orphan", "test")
            await session.commit()
        assert await drain_outbox(ctx) == {"deleted": 0, "deferred": 1, "kept": 0}


async def test_unknown_object_under_our_prefix_is_deleted(
    app: FastAPI,
    settings: Settings,
    alice: Account,
    run_worker: RunWorker,
    bucket: Bucket,
) -> None:
    storage = app.state.storage
    key = f"{settings.storage.key_prefix}/{alice.id}/not-an-upload"
    await bucket.put(key)
    ctx = worker_ctx(app, settings, storage)
    assert await confirm_upload(ctx, key) == "unknown"
    await run_worker()
    assert await storage.head(key) is None


async def test_the_worker_outlives_a_redis_restart(
    app: FastAPI, settings: Settings, own_redis: OwnRedis, bucket: Bucket, tmp_path: Path
) -> None:
    """``python -m worker`` loses its Redis (restarted empty), stays up and serves the queue
    again: a confirmation enqueued after the restart runs (an orphan object is recorded in the
    outbox and deleted)."""
    env = {
        **os.environ,
        "FILESTORE_DATABASE_URL": settings.database.url,
        "FILESTORE_REDIS_URL": own_redis.url,
        "FILESTORE_S3_ENDPOINT_URL": settings.storage.endpoint_url,
        "FILESTORE_S3_ACCESS_KEY": settings.storage.access_key,
        "FILESTORE_S3_SECRET_KEY": settings.storage.secret_key.get_secret_value(),
        "FILESTORE_S3_BUCKET": settings.storage.bucket,
        "FILESTORE_OUTBOX_DRAIN_INTERVAL_SECONDS": "1",
    }
    log = (tmp_path / "worker.log").open("wb")
    worker = subprocess.Popen(
        [sys.executable, "-m", "worker"], cwd=ROOT, env=env, stdout=log, stderr=log
    )
    logged = tmp_path / "worker.log"
    try:
        deadline = time.monotonic() + 30
        while "reconcile ran" not in logged.read_text():  # serving: its startup crons ran
            assert worker.poll() is None, logged.read_text()[-3000:]
            assert time.monotonic() < deadline, logged.read_text()[-3000:]
            await asyncio.sleep(0.1)
        own_redis.stop()
        await asyncio.sleep(3)
        own_redis.start()
        key = await bucket.put(f"{settings.storage.key_prefix}/{uuid.uuid4()}/after-restart")
        async with create_redis(settings.with_changes(**{"redis_url": own_redis.url})) as q:
            await enqueue_confirm(q, key, None)
        deadline = time.monotonic() + 30
        while key in await bucket.keys(key):
            assert worker.poll() is None, logged.read_text()[-3000:]
            assert time.monotonic() < deadline, logged.read_text()[-3000:]
            await asyncio.sleep(0.2)
        assert worker.poll() is None
    finally:
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(15) == 0
        log.close()


async def test_a_notification_of_the_version_already_held_costs_no_head(
    app: FastAPI, settings: Settings, client: httpx.AsyncClient, alice: Account
) -> None:
    """The client's ``complete`` confirmed the object; the bucket notification that follows
    (same etag) is settled by one lookup: the worker's storage is unreachable and it does not
    matter. A new version (another etag) still needs storage, so it retries."""
    ticket = (
        await client.post("/files/upload", json={"path": "/n.txt"}, headers=alice.headers)
    ).json()["upload"]
    async with httpx.AsyncClient() as plain:
        await plain.put(ticket["url"], content=b"held", headers=ticket["headers"])
    done = await client.post(f"/files/uploads/{ticket['id']}/complete", headers=alice.headers)
    assert done.json()["status"] == "completed"
    key = ticket["url"].split("?")[0].split(f"/{settings.storage.bucket}/", 1)[1]
    dead = settings.with_changes(**{"s3_endpoint_url": f"http://127.0.0.1:{free_port()}"})
    async with open_storage(dead) as unreachable:
        ctx = worker_ctx(app, dead, unreachable)
        etag = done.json()["file"]["etag"]
        assert await confirm_upload(ctx, key, None, etag) == "already_done"
        with pytest.raises(Retry):
            await confirm_upload(ctx, key, None, "another-version")


async def test_a_periodic_job_meeting_an_outage_waits_for_its_next_tick(
    app: FastAPI, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    dead = settings.with_changes(**{"s3_endpoint_url": f"http://127.0.0.1:{free_port()}"})
    async with open_storage(dead) as unreachable:
        ctx = worker_ctx(app, dead, unreachable)
        with caplog.at_level(logging.WARNING, logger="worker.tasks"):
            assert await sweep_bucket(ctx) == {"skipped": 1}
    assert "periodic job skipped" in caplog.text
