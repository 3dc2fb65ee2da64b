"""The bucket sweep against real PostgreSQL, Redis and SeaweedFS: what it deletes and what not."""

import logging
import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from domain.models import File
from domain.objects.tasks.sweep import OBJECT_CURSOR_KEY, sweep_bucket
from infra.config import Settings
from infra.redis import create_redis
from infra.storage.adapter import Storage
from scripts.seaweed import free_port
from tests.helpers import Account, Bucket, upload

# Sorts after every other owner id, so objects under it come last in a listing.
LAST_OWNER = uuid.UUID(int=2**128 - 1)


def prefix_of(settings: Settings) -> str:
    return f"{settings.storage.key_prefix}/"


def outside_keys(settings: Settings) -> tuple[str, ...]:
    """Keys that only look like ours: another prefix, a sibling prefix, the bare prefix."""
    return (
        "elsewhere/object",
        f"{settings.storage.key_prefix}X/object",
        settings.storage.key_prefix,
    )


async def keys_under(bucket: Bucket, prefix: str) -> set[str]:
    return await bucket.keys(prefix)


async def multipart_under(bucket: Bucket, prefix: str) -> set[tuple[str, str]]:
    return await bucket.multipart_uploads(prefix)


@pytest.fixture(autouse=True)
async def empty_prefix(storage: Storage, bucket: Bucket, settings: Settings) -> None:
    """Earlier tests leave objects behind (only the tables are emptied): start from none."""
    for prefix in (prefix_of(settings), "elsewhere/", f"{settings.storage.key_prefix}X/"):
        for key in await keys_under(bucket, prefix):
            await bucket.delete(key)
        for key, upload_id in await multipart_under(bucket, prefix):
            await storage.abort_multipart_upload(key, upload_id)
    await bucket.delete(settings.storage.key_prefix)


async def put(bucket: Bucket, key: str, body: bytes = b"orphan") -> str:
    return await bucket.put(key, body)


async def start_multipart(bucket: Bucket, key: str) -> str:
    return await bucket.start_multipart(key)


def orphan_key(settings: Settings, owner: uuid.UUID) -> str:
    return f"{settings.storage.key_prefix}/{owner}/{uuid.uuid4()}"


async def sweep(
    app: FastAPI, storage: Storage, settings: Settings, **update: Any
) -> dict[str, int]:
    return await sweep_bucket(
        app.state.database, storage, app.state.redis, settings.with_changes(**update)
    )


async def content_key(app: FastAPI, file_id: str) -> str:
    async with app.state.sessionmaker() as session:
        key: str = (
            await session.execute(select(File.object_key).where(File.id == uuid.UUID(file_id)))
        ).scalar_one()
    return key


async def pending_intent(
    client: httpx.AsyncClient, account: Account, settings: Settings, path: str
) -> tuple[dict[str, Any], str]:
    response = await client.post("/files/upload", json={"path": path}, headers=account.headers)
    assert response.status_code == 201, response.text
    ticket: dict[str, Any] = response.json()["upload"]
    key = ticket["url"].split("?")[0].split(f"/{settings.storage.bucket}/", 1)[1]
    return ticket, key


@pytest.mark.usefixtures("final_deletes")
async def test_unreferenced_objects_are_deleted_and_current_content_kept(
    app: FastAPI,
    storage: Storage,
    settings: Settings,
    client: httpx.AsyncClient,
    alice: Account,
    bucket: Bucket,
) -> None:
    first = await upload(client, alice, "/a.txt", b"first")
    assert first.status_code == 201, first.text
    replaced = await content_key(app, first.json()["id"])
    second = await upload(client, alice, "/a.txt", b"second")
    assert second.status_code == 200, second.text
    current = await content_key(app, second.json()["id"])
    orphan = await put(bucket, orphan_key(settings, alice.id))
    # The replaced object's deletion is queued but no worker runs: as if the queue were lost.
    assert await keys_under(bucket, prefix_of(settings)) == {replaced, current, orphan}

    counts = await sweep(app, storage, settings, sweep_grace_seconds=0)

    assert counts == {"objects_listed": 3, "objects_deleted": 2, "multipart_aborted": 0}
    assert await keys_under(bucket, prefix_of(settings)) == {current}
    download = await client.get(
        "/files/download", params={"path": "/a.txt", "proxy": "true"}, headers=alice.headers
    )
    assert download.content == b"second"


async def test_pending_upload_object_is_kept(
    app: FastAPI,
    storage: Storage,
    settings: Settings,
    client: httpx.AsyncClient,
    alice: Account,
    bucket: Bucket,
) -> None:
    ticket, key = await pending_intent(client, alice, settings, "/p.txt")
    headers = {k: v for k, v in ticket["headers"].items() if k != "Content-Length"}
    async with httpx.AsyncClient() as plain:
        sent = await plain.put(ticket["url"], content=b"landed", headers=headers)
    assert sent.status_code == 200, sent.text
    orphan = await put(bucket, orphan_key(settings, alice.id))

    counts = await sweep(app, storage, settings, sweep_grace_seconds=0)

    state = await client.get(f"/files/uploads/{ticket['id']}", headers=alice.headers)
    assert state.json()["status"] == "pending"
    assert counts["objects_deleted"] == 1
    assert await keys_under(bucket, prefix_of(settings)) == {key}
    assert await storage.head(orphan) is None


async def test_young_unreferenced_object_is_kept_until_the_grace_passes(
    app: FastAPI,
    storage: Storage,
    settings: Settings,
    alice: Account,
    bucket: Bucket,
) -> None:
    orphan = await put(bucket, orphan_key(settings, alice.id))

    young = await sweep(app, storage, settings, sweep_grace_seconds=3600)
    assert young == {"objects_listed": 1, "objects_deleted": 0, "multipart_aborted": 0}
    assert await storage.head(orphan) is not None

    old = await sweep(app, storage, settings, sweep_grace_seconds=0)
    assert old["objects_deleted"] == 1
    assert await storage.head(orphan) is None


async def test_abandoned_multipart_uploads_are_aborted_claimed_ones_kept(
    app: FastAPI,
    storage: Storage,
    settings: Settings,
    client: httpx.AsyncClient,
    alice: Account,
    bucket: Bucket,
) -> None:
    abandoned_key = orphan_key(settings, alice.id)
    abandoned = (abandoned_key, await start_multipart(bucket, abandoned_key))
    _, claimed_key = await pending_intent(client, alice, settings, "/big.bin")
    claimed = (claimed_key, await start_multipart(bucket, claimed_key))
    # An upload in progress under a confirmed file's key could only overwrite its content.
    stored = await upload(client, alice, "/done.txt", b"done")
    assert stored.status_code == 201, stored.text
    done_key = await content_key(app, stored.json()["id"])
    stray = (done_key, await start_multipart(bucket, done_key))
    prefix = prefix_of(settings)
    assert await multipart_under(bucket, prefix) == {abandoned, claimed, stray}

    young = await sweep(app, storage, settings, sweep_grace_seconds=3600)
    assert young["multipart_aborted"] == 0
    assert await multipart_under(bucket, prefix) == {abandoned, claimed, stray}

    counts = await sweep(app, storage, settings, sweep_grace_seconds=0)
    assert counts["multipart_aborted"] == 2
    assert await multipart_under(bucket, prefix) == {claimed}
    assert await storage.head(done_key) is not None  # the file's content itself is untouched


async def test_multipart_aborts_are_bounded_per_run(
    app: FastAPI,
    storage: Storage,
    settings: Settings,
    alice: Account,
    bucket: Bucket,
) -> None:
    for _ in range(3):
        key = orphan_key(settings, alice.id)
        await start_multipart(bucket, key)

    first = await sweep(app, storage, settings, sweep_grace_seconds=0, sweep_batch_size=2)
    assert first["multipart_aborted"] == 2
    assert len(await multipart_under(bucket, prefix_of(settings))) == 1
    second = await sweep(app, storage, settings, sweep_grace_seconds=0, sweep_batch_size=2)
    assert second["multipart_aborted"] == 1
    assert await multipart_under(bucket, prefix_of(settings)) == set()


async def test_objects_outside_the_prefix_are_never_touched(
    app: FastAPI,
    storage: Storage,
    settings: Settings,
    alice: Account,
    bucket: Bucket,
) -> None:
    for key in outside_keys(settings):
        await put(bucket, key)
    outside_upload = ("elsewhere/multipart", await start_multipart(bucket, "elsewhere/multipart"))
    inside = await put(bucket, orphan_key(settings, alice.id))

    counts = await sweep(app, storage, settings, sweep_grace_seconds=0)

    assert counts == {"objects_listed": 1, "objects_deleted": 1, "multipart_aborted": 0}
    assert await storage.head(inside) is None
    for key in outside_keys(settings):
        assert await storage.head(key) is not None, key
    assert await multipart_under(bucket, "elsewhere/") == {outside_upload}


async def test_batch_bound_holds_and_the_redis_cursor_carries_on(
    app: FastAPI,
    storage: Storage,
    settings: Settings,
    client: httpx.AsyncClient,
    alice: Account,
    bucket: Bucket,
) -> None:
    stored = await upload(client, alice, "/kept.txt", b"kept")
    assert stored.status_code == 201, stored.text
    kept = await content_key(app, stored.json()["id"])
    garbage = sorted([await put(bucket, orphan_key(settings, LAST_OWNER)) for _ in range(5)])
    assert kept < garbage[0]  # the kept object is listed first: a run without the cursor stalls
    redis = app.state.redis
    small = {"sweep_grace_seconds": 0, "sweep_batch_size": 2}

    first = await sweep(app, storage, settings, **small)
    assert first == {"objects_listed": 2, "objects_deleted": 1, "multipart_aborted": 0}
    assert await redis.get(OBJECT_CURSOR_KEY) == garbage[0].encode()
    second = await sweep(app, storage, settings, **small)
    third = await sweep(app, storage, settings, **small)

    assert second["objects_deleted"] == 2
    assert third["objects_deleted"] == 2
    assert await keys_under(bucket, prefix_of(settings)) == {kept}
    # Listing exhausted: the cursor resets and the next run starts over. SeaweedFS may still
    # call the last full page truncated (empty folders of earlier tests' owners count), so
    # allow it the runs that walk past them.
    for _ in range(3):
        if not await redis.exists(OBJECT_CURSOR_KEY):
            break
        assert (await sweep(app, storage, settings, **small))["objects_deleted"] == 0
    assert await redis.exists(OBJECT_CURSOR_KEY) == 0
    again = await sweep(app, storage, settings, **small)
    assert again == {"objects_listed": 1, "objects_deleted": 0, "multipart_aborted": 0}


async def test_sweep_proceeds_without_redis(
    app: FastAPI,
    storage: Storage,
    settings: Settings,
    alice: Account,
    caplog: pytest.LogCaptureFixture,
    bucket: Bucket,
) -> None:
    orphan = await put(bucket, orphan_key(settings, alice.id))
    dead = create_redis(settings.with_changes(**{"redis_url": f"redis://127.0.0.1:{free_port()}"}))
    try:
        with caplog.at_level(logging.WARNING, logger="domain.objects.tasks.sweep"):
            counts = await sweep_bucket(
                app.state.database,
                storage,
                dead,
                settings.with_changes(**{"sweep_grace_seconds": 0}),
            )
    finally:
        await dead.aclose()
    assert counts["objects_deleted"] == 1
    assert await storage.head(orphan) is None
    warnings = [r.getMessage() for r in caplog.records if r.name == "domain.objects.tasks.sweep"]
    assert "sweep cursor unavailable; starting from the beginning" in warnings
    assert "sweep cursor not saved; the next run repeats work" in warnings


async def test_the_summary_and_each_deletion_are_logged(
    app: FastAPI,
    storage: Storage,
    settings: Settings,
    client: httpx.AsyncClient,
    alice: Account,
    caplog: pytest.LogCaptureFixture,
    bucket: Bucket,
) -> None:
    stored = await upload(client, alice, "/kept.txt", b"kept")
    assert stored.status_code == 201, stored.text
    orphans = {await put(bucket, orphan_key(settings, alice.id)) for _ in range(2)}
    abandoned_key = orphan_key(settings, alice.id)
    await start_multipart(bucket, abandoned_key)

    with caplog.at_level(logging.INFO, logger="domain.objects.tasks.sweep"):
        counts = await sweep(app, storage, settings, sweep_grace_seconds=0)

    assert counts == {"objects_listed": 3, "objects_deleted": 2, "multipart_aborted": 1}
    [summary] = [r for r in caplog.records if r.getMessage() == "bucket swept"]
    assert {name: getattr(summary, name) for name in counts} == counts
    deletions = [r for r in caplog.records if getattr(r, "reason", None) == "unreferenced"]
    assert {getattr(r, "object_key", None) for r in deletions} == orphans
    assert all(isinstance(getattr(r, "last_modified", None), str) for r in deletions)
    [abort] = [r for r in caplog.records if getattr(r, "reason", None) == "unclaimed"]
    assert getattr(abort, "object_key", None) == abandoned_key


async def test_storage_listings_page_and_resume(
    storage: Storage,
    settings: Settings,
    alice: Account,
    bucket: Bucket,
) -> None:
    prefix = prefix_of(settings)
    keys = sorted([await put(bucket, orphan_key(settings, alice.id)) for _ in range(3)])
    first = await storage.list_objects(prefix, None, 2)
    assert [item.key for item in first.objects] == keys[:2]
    assert first.truncated
    assert first.storage_time is not None
    assert all(item.size == len(b"orphan") for item in first.objects)
    rest = await storage.list_objects(prefix, keys[1], 2)
    assert [item.key for item in rest.objects] == keys[2:]
    assert not rest.truncated

    uploads = {(key, await start_multipart(bucket, key)) for key in keys}
    head = await storage.list_multipart_uploads(prefix, 2)
    assert len(head.uploads) == 2
    assert head.next is not None
    tail = await storage.list_multipart_uploads(prefix, 10, head.next)
    assert tail.next is None
    listed = {(item.key, item.upload_id) for item in (*head.uploads, *tail.uploads)}
    assert listed == uploads
    for key, upload_id in uploads:
        await storage.abort_multipart_upload(key, upload_id)
        await storage.abort_multipart_upload(key, upload_id)  # already gone: done
    await storage.abort_multipart_upload(keys[0], "no-such-upload")
    assert await multipart_under(bucket, prefix) == set()
