"""Confirmation decides by what storage holds: when the object landed (issue 17, 5b) and, where
storage reports no checksum, the SHA-256 of the bytes themselves (5d)."""

import hashlib
import os
import uuid
from datetime import UTC, datetime, timedelta

import httpx
from fastapi import FastAPI
from sqlalchemy import select, update

from domain.models import File, ObjectDeletion, Upload, UploadStatus
from domain.uploads.tasks.reconcile import NOTHING_ARRIVED
from infra.config import Settings
from infra.storage.adapter import Storage
from tests.helpers import Account, Bucket, complete, key_of, listed, put, ticket_for, worker_ctx
from worker.tasks import reconcile_uploads

MIB = 1024 * 1024


async def _set_upload(app: FastAPI, upload_id: str, **values: object) -> None:
    async with app.state.sessionmaker() as session:
        await session.execute(
            update(Upload).where(Upload.id == uuid.UUID(upload_id)).values(values)
        )
        await session.commit()


async def _outboxed(app: FastAPI, object_key: str) -> list[str]:
    async with app.state.sessionmaker() as session:
        query = select(ObjectDeletion.reason).where(ObjectDeletion.object_key == object_key)
        return list((await session.execute(query)).scalars())


async def _state(client: httpx.AsyncClient, account: Account, upload_id: str) -> dict[str, str]:
    response = await client.get(f"/files/uploads/{upload_id}", headers=account.headers)
    assert response.status_code == 200, response.text
    state: dict[str, str] = response.json()
    return state


async def test_an_object_that_landed_in_time_completes_an_upload_expired_meanwhile(
    client: httpx.AsyncClient, alice: Account, app: FastAPI, settings: Settings
) -> None:
    """Reconcile closes an upload whose HEAD found nothing yet; a PUT that started before the
    URL expired may still land after that HEAD. Storage dating such an object before the
    upload closed (AWS dates a PUT by its start) cannot be staged on SeaweedFS, which dates it
    by its end, so the row is put in the state reconcile's close leaves it in: ``expired``,
    with the object that landed in time already in the bucket."""
    content = b"a slow PUT that started in time"
    ticket = await ticket_for(client, alice, path="/slow.txt")
    assert (await put(ticket, content)).status_code == 200
    await _set_upload(
        app,
        ticket["id"],
        status=UploadStatus.expired,
        reason=NOTHING_ARRIVED,
        completed_at=datetime.now(UTC),
    )
    confirmed = await complete(client, alice, ticket["id"])
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["status"] == "completed"
    assert confirmed.json()["reason"] is None
    [file] = await listed(client, alice)
    assert (file["path"], file["size"]) == ("/slow.txt", len(content))
    assert await _outboxed(app, key_of(ticket, settings.storage.bucket)) == []


async def test_reconcile_leaves_an_expired_uploads_key_and_a_late_object_is_refused(
    client: httpx.AsyncClient,
    alice: Account,
    app: FastAPI,
    settings: Settings,
    storage: Storage,
    bucket: Bucket,
) -> None:
    """An expired upload's key is not sent to the outbox (its PUT may still be landing); an
    object that lands after the upload closed is refused with when it landed and when the
    upload closed, and only then goes to the outbox."""
    ticket = await ticket_for(client, alice, path="/gone.txt")
    object_key = key_of(ticket, settings.storage.bucket)
    closed = datetime.now(UTC) - timedelta(minutes=1)
    await _set_upload(app, ticket["id"], expires_at=closed)
    counts = await reconcile_uploads(worker_ctx(app, settings, storage))
    assert counts["expired"] == 1
    assert (await _state(client, alice, ticket["id"]))["reason"] == NOTHING_ARRIVED
    assert await _outboxed(app, object_key) == []

    await bucket.put(object_key, b"landed long after")
    refused = await complete(client, alice, ticket["id"])
    assert (refused.status_code, refused.json()["error"]) == (409, "upload_closed")
    state = await _state(client, alice, ticket["id"])
    assert state["status"] == "rejected"
    url_expiry = closed - timedelta(seconds=settings.uploads.upload_grace_seconds)
    assert "the object landed at " in state["reason"]
    assert f"after its upload closed at {closed.isoformat()}" in state["reason"]
    assert f"its URL expired at {url_expiry.isoformat()}" in state["reason"]
    assert await _outboxed(app, object_key) == ["landed after its upload closed"]
    assert await listed(client, alice) == []


async def test_a_pending_upload_whose_object_landed_after_it_closed_is_refused(
    client: httpx.AsyncClient,
    alice: Account,
    app: FastAPI,
    settings: Settings,
    storage: Storage,
    bucket: Bucket,
) -> None:
    """Whether reconcile closed the row first changes nothing: a still pending upload whose
    object landed after its close time is refused the same way, and the file keeps its
    content."""
    kept = await ticket_for(client, alice, path="/kept.txt")
    assert (await put(kept, b"current content")).status_code == 200
    assert (await complete(client, alice, kept["id"])).json()["status"] == "completed"
    ticket = await ticket_for(client, alice, path="/kept.txt")
    await _set_upload(app, ticket["id"], expires_at=datetime.now(UTC) - timedelta(minutes=1))
    await bucket.put(key_of(ticket, settings.storage.bucket), b"too late")
    counts = await reconcile_uploads(worker_ctx(app, settings, storage))
    assert counts["confirmed"] == 0
    state = await _state(client, alice, ticket["id"])
    assert state["status"] == "rejected"
    assert "after its upload closed at" in state["reason"]
    [file] = await listed(client, alice)
    assert file["size"] == len(b"current content")


async def test_a_declared_sha256_is_verified_by_reading_when_storage_reports_none(
    client: httpx.AsyncClient, alice: Account, app: FastAPI, settings: Settings, bucket: Bucket
) -> None:
    """The test SeaweedFS verifies ``x-amz-checksum-sha256``, so a storage server that ignores
    it is simulated by writing the bytes to the upload's key without that header (our own
    client's PUT): HEAD then really reports no SHA-256, as such a server's would (moto's did,
    and took any bytes). Wrong bytes must be refused naming the checksum; the right ones
    confirmed with the SHA-256 computed from them, over several read chunks."""
    right = os.urandom(2 * settings.files.stream_chunk_bytes + 12345)
    digest = hashlib.sha256(right).hexdigest()

    wrong_ticket = await ticket_for(client, alice, path="/wrong.bin", sha256=digest)
    await bucket.put(key_of(wrong_ticket, settings.storage.bucket), os.urandom(len(right)))
    refused = await complete(client, alice, wrong_ticket["id"])
    assert (refused.status_code, refused.json()["error"]) == (409, "upload_closed")
    state = await _state(client, alice, wrong_ticket["id"])
    assert state["status"] == "rejected"
    assert "SHA-256" in state["reason"]
    assert await listed(client, alice) == []

    ticket = await ticket_for(client, alice, path="/right.bin", sha256=digest)
    await bucket.put(key_of(ticket, settings.storage.bucket), right)
    confirmed = await complete(client, alice, ticket["id"])
    assert confirmed.json()["status"] == "completed", confirmed.text
    [file] = await listed(client, alice)
    assert (file["path"], file["size"], file["sha256"]) == ("/right.bin", len(right), digest)
    async with app.state.sessionmaker() as session:
        stored = (await session.execute(select(File.sha256))).scalars().all()
    assert stored == [digest]
