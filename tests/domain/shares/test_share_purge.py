"""The purge of dead share links: a link that expired ``FILESTORE_SHARE_PURGE_AFTER_SECONDS``
ago is deleted by the worker's purge, at most ``FILESTORE_PURGE_BATCH_SIZE`` a run, and counted
(``filestore_purged_total{what="shares"}``)."""

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import update

from domain.models import Share
from infra.config import Settings
from tests.domain.folders.test_folders import stored
from tests.domain.shares.test_shares import expire, make_share
from tests.domain.shares.test_upload_links import asked, upload_link
from tests.helpers import Account, worker_ctx
from tests.infra.test_metrics import moved, scrape
from worker import tasks


async def test_the_purge_deletes_links_a_day_after_they_expired(
    client: httpx.AsyncClient, alice: Account, app: FastAPI, settings: Settings
) -> None:
    await stored(client, alice, "/a.txt")
    shares = [await make_share(client, alice, path="/a.txt") for _ in range(3)]
    dropping = await upload_link(client, alice)
    ticket = await asked(client, dropping, name="x.txt", size=1)
    ages = [timedelta(days=2), timedelta(hours=23), timedelta(days=-1), timedelta(days=3)]
    async with app.state.sessionmaker() as session:
        for share, age in zip([*shares, dropping], ages, strict=True):
            await session.execute(
                update(Share)
                .where(Share.id == share["id"])
                .values(expires_at=datetime.now(UTC) - age)
            )
        await session.commit()
    before = await scrape(client)
    counts = await tasks.purge(worker_ctx(app, settings))
    assert counts["shares"] == 2
    after = await scrape(client)
    assert moved(before, after, "filestore_purged_total", what="shares") == 2
    left = {s["id"] for s in (await client.get("/shares", headers=alice.headers)).json()["shares"]}
    assert left == {shares[1]["id"], shares[2]["id"]}
    # The link's upload stays its owner's.
    state = await client.get(f"/files/uploads/{ticket['upload']['id']}", headers=alice.headers)
    assert state.json()["status"] == "pending"
    assert (await tasks.purge(worker_ctx(app, settings)))["shares"] == 0


async def test_the_purge_is_bounded_per_run(
    client: httpx.AsyncClient,
    alice: Account,
    app: FastAPI,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await stored(client, alice, "/a.txt")
    for _ in range(3):
        await make_share(client, alice, path="/a.txt")
    async with app.state.sessionmaker() as session:
        await session.execute(
            update(Share).values(expires_at=datetime.now(UTC) - timedelta(days=2))
        )
        await session.commit()
    monkeypatch.setattr(settings.retention, "purge_batch_size", 2)
    ctx = worker_ctx(app, settings)
    assert [(await tasks.purge(ctx))["shares"] for _ in range(3)] == [2, 1, 0]
    monkeypatch.setattr(settings.shares, "purge_after_seconds", 3 * 24 * 3600)
    await make_share(client, alice, path="/a.txt")
    await expire(
        app, (await client.get("/shares", headers=alice.headers)).json()["shares"][0]["id"]
    )
    assert (await tasks.purge(ctx))["shares"] == 0  # expired, but not three days ago
