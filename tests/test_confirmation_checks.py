"""Confirmation decides by what storage holds: where storage reports no checksum, the SHA-256
of the bytes themselves (issue 17, 5d)."""

import hashlib
import os
import uuid

import httpx
from fastapi import FastAPI
from sqlalchemy import select, update

from api.config import Settings
from api.models import File, ObjectDeletion, Upload
from tests.helpers import Account, Bucket, complete, key_of, listed, ticket_for

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


async def test_a_declared_sha256_is_verified_by_reading_when_storage_reports_none(
    client: httpx.AsyncClient, alice: Account, app: FastAPI, settings: Settings, bucket: Bucket
) -> None:
    """The test SeaweedFS verifies ``x-amz-checksum-sha256``, so a storage server that ignores
    it is simulated by writing the bytes to the upload's key without that header (our own
    client's PUT): HEAD then really reports no SHA-256, as such a server's would (moto's did,
    and took any bytes). Wrong bytes must be refused naming the checksum; the right ones
    confirmed with the SHA-256 computed from them, over several read chunks."""
    right = os.urandom(2 * settings.stream_chunk_bytes + 12345)
    digest = hashlib.sha256(right).hexdigest()

    wrong_ticket = await ticket_for(client, alice, path="/wrong.bin", sha256=digest)
    await bucket.put(key_of(wrong_ticket, settings.s3_bucket), os.urandom(len(right)))
    refused = await complete(client, alice, wrong_ticket["id"])
    assert (refused.status_code, refused.json()["error"]) == (409, "upload_closed")
    state = await _state(client, alice, wrong_ticket["id"])
    assert state["status"] == "rejected"
    assert "SHA-256" in state["reason"]
    assert await listed(client, alice) == []

    ticket = await ticket_for(client, alice, path="/right.bin", sha256=digest)
    await bucket.put(key_of(ticket, settings.s3_bucket), right)
    confirmed = await complete(client, alice, ticket["id"])
    assert confirmed.json()["status"] == "completed", confirmed.text
    [file] = await listed(client, alice)
    assert (file["path"], file["size"], file["sha256"]) == ("/right.bin", len(right), digest)
    async with app.state.sessionmaker() as session:
        stored = (await session.execute(select(File.sha256))).scalars().all()
    assert stored == [digest]
