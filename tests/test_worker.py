"""The worker's jobs against real services, including transient failures and retries."""

import httpx
import pytest
from arq import Retry
from fastapi import FastAPI

from api.config import Settings
from api.files.outbox import Outbox
from api.storage import open_storage
from scripts.seaweed import free_port
from tests.helpers import Account, Bucket, RunWorker
from worker.tasks import confirm_upload, drain_outbox


async def test_storage_outage_is_retried_with_backoff(
    app: FastAPI, settings: Settings, client: httpx.AsyncClient, alice: Account
) -> None:
    ticket = (
        await client.post("/files/upload", json={"path": "/r.txt"}, headers=alice.headers)
    ).json()["upload"]
    key = ticket["url"].split("?")[0].split(f"/{settings.s3_bucket}/", 1)[1]
    dead = settings.model_copy(update={"s3_endpoint_url": f"http://127.0.0.1:{free_port()}"})
    async with open_storage(dead) as storage:
        ctx = {
            "sessionmaker": app.state.sessionmaker,
            "storage": storage,
            "settings": dead,
            "redis": app.state.redis,
            "job_try": 3,
        }
        with pytest.raises(Retry) as retry:
            await confirm_upload(ctx, key)
        assert retry.value.defer_score == 2000  # 0.5 s doubled per try
        async with app.state.sessionmaker() as session:
            await Outbox(session).add(key, "test")
            await session.commit()
        assert await drain_outbox(ctx) == {"deleted": 0, "deferred": 1}


async def test_unknown_object_under_our_prefix_is_deleted(
    app: FastAPI,
    settings: Settings,
    alice: Account,
    run_worker: RunWorker,
    bucket: Bucket,
) -> None:
    storage = app.state.storage
    key = f"{settings.s3_key_prefix}/{alice.id}/not-an-upload"
    await bucket.put(key)
    ctx = {
        "sessionmaker": app.state.sessionmaker,
        "storage": storage,
        "settings": settings,
        "redis": app.state.redis,
    }
    assert await confirm_upload(ctx, key) == "unknown"
    await run_worker()
    assert await storage.head(key) is None
