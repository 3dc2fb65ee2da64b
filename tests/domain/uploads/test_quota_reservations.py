"""Storage never holds more than a user may: pending uploads reserve their bytes (issue 17).

Regression tests for the audit's repros: presigned multipart intents and Uppy's unsized parts
passed the quota, 3,000 intents were open at once, a proxied upload killed with the API left
its storage upload for the sweep, a 3-byte form completed a 10-byte intent. Every service is
real.
"""

import asyncio
import base64
import contextlib
import json
import os
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select, update

from api.main import create_app
from domain.models import ObjectDeletion, Upload, UploadStatus, User
from infra.config import Settings
from infra.storage.adapter import Storage
from tests.domain.uploads.test_integrity import assert_consistent
from tests.domain.uploads.test_uppy_signer import sign, signed, xml_value
from tests.helpers import (
    Account,
    Bucket,
    complete,
    intent,
    key_of,
    make_account,
    put,
    ticket_for,
    worker_ctx,
)
from worker import tasks

MIB = 1024 * 1024


async def leave_room(app: FastAPI, settings: Settings, account: Account, room: int) -> None:
    """Fill the account's quota but ``room`` bytes (as stored files would)."""
    async with app.state.sessionmaker() as session:
        await session.execute(
            update(User)
            .where(User.id == account.id)
            .values(used_bytes=settings.uploads.user_quota_bytes - room)
        )
        await session.commit()


async def reservations(app: FastAPI, account: Account) -> tuple[int, int]:
    """The account's reserved bytes and open uploads, as the trigger keeps them."""
    async with app.state.sessionmaker() as session:
        row = (
            await session.execute(
                select(User.reserved_bytes, User.open_uploads).where(User.id == account.id)
            )
        ).one()
    return int(row.reserved_bytes), int(row.open_uploads)


async def completed_state(
    client: httpx.AsyncClient, account: Account, upload_id: str
) -> dict[str, Any]:
    """``complete`` on an upload that must be rejected (409), then its state."""
    closed = await complete(client, account, upload_id)
    assert closed.status_code == 409, closed.text
    assert closed.json()["error"] == "upload_closed"
    state = await client.get(f"/files/uploads/{upload_id}", headers=account.headers)
    answer: dict[str, Any] = state.json()
    return answer


async def refill(app: FastAPI, settings: Settings, account: Account, room: int) -> None:
    """Undo ``leave_room``, so that ``assert_consistent`` finds used bytes = the files."""
    async with app.state.sessionmaker() as session:
        await session.execute(
            update(User)
            .where(User.id == account.id)
            .values(used_bytes=User.used_bytes - (settings.uploads.user_quota_bytes - room))
        )
        await session.commit()


async def test_intents_reserve_their_declared_size(
    client: httpx.AsyncClient, alice: Account, app: FastAPI, settings: Settings
) -> None:
    await leave_room(app, settings, alice, MIB)
    first = await intent(client, alice, path="/a.bin", size=600 * 1024)
    assert first.status_code == 201, first.text
    assert await reservations(app, alice) == (600 * 1024, 1)
    second = await intent(client, alice, path="/b.bin", size=600 * 1024)
    assert second.status_code == 413
    body = second.json()
    assert body["error"] == "quota_exceeded"
    assert f"{MIB - 600 * 1024} bytes" in body["detail"]
    assert "reserved by uploads in progress" in body["detail"]
    assert await reservations(app, alice) == (600 * 1024, 1)  # the refused one took nothing
    ticket = first.json()["upload"]
    aborted = await client.delete(f"/files/uploads/{ticket['id']}", headers=alice.headers)
    assert aborted.status_code == 204
    assert await reservations(app, alice) == (0, 0)
    assert (await intent(client, alice, path="/b.bin", size=600 * 1024)).status_code == 201


async def test_twenty_multipart_intents_hold_one_quota(
    client: httpx.AsyncClient, alice: Account, app: FastAPI, settings: Settings
) -> None:
    """The audit's repro: 20 multipart intents that each just fit held 20 times the room."""
    await leave_room(app, settings, alice, MIB)
    answers = await asyncio.gather(
        *(intent(client, alice, path=f"/m{n}.bin", size=MIB, multipart=True) for n in range(20))
    )
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [201] + [413] * 19
    assert await reservations(app, alice) == (MIB, 1)


async def test_a_confirmed_or_expired_upload_releases_its_reservation(
    client: httpx.AsyncClient, alice: Account, app: FastAPI, settings: Settings, bucket: Bucket
) -> None:
    content = os.urandom(1000)
    kept = await ticket_for(client, alice, path="/kept.bin", size=len(content))
    never = await ticket_for(client, alice, path="/never.bin", size=5000)
    assert await reservations(app, alice) == (6000, 2)
    assert (await put(kept, content)).status_code == 200
    assert (await complete(client, alice, kept["id"])).status_code == 200
    assert await reservations(app, alice) == (5000, 1)
    async with app.state.sessionmaker() as session:
        await session.execute(
            update(Upload)
            .where(Upload.id == uuid.UUID(never["id"]))
            .values(expires_at=func.now() - func.make_interval(0, 0, 0, 0, 0, 1))
        )
        await session.commit()
    counts = await tasks.reconcile_uploads(worker_ctx(app, settings))
    assert counts["expired"] == 1
    assert await reservations(app, alice) == (0, 0)
    await tasks.drain_outbox(worker_ctx(app, settings))
    await assert_consistent(app, bucket, alice)


async def test_an_unsized_intent_reserves_what_is_left_and_its_form_is_bounded(
    client: httpx.AsyncClient, alice: Account, app: FastAPI, settings: Settings
) -> None:
    await leave_room(app, settings, alice, MIB)
    ticket = await ticket_for(client, alice, path="/unsized.bin")
    assert await reservations(app, alice) == (MIB, 1)
    policy = json.loads(base64.b64decode(ticket["post"]["fields"]["policy"]))
    assert ["content-length-range", 1, MIB] in policy["conditions"]
    refused = await intent(client, alice, path="/more.bin")
    assert refused.status_code == 413
    assert refused.json()["error"] == "quota_exceeded"
    async with httpx.AsyncClient() as browser:
        too_big = await browser.post(
            ticket["post"]["url"],
            data=ticket["post"]["fields"],
            files={"file": ("x", os.urandom(MIB + 1))},
        )
    assert too_big.status_code == 400  # storage refused it: EntityTooLarge


async def test_a_put_past_its_reservation_is_rejected(
    client: httpx.AsyncClient, alice: Account, app: FastAPI, settings: Settings, bucket: Bucket
) -> None:
    """A PUT without a declared size cannot be bounded by storage; confirmation refuses what
    it wrote past the reservation, and its object goes."""
    await leave_room(app, settings, alice, MIB)
    ticket = await ticket_for(client, alice, path="/over.bin")
    assert (await put(ticket, os.urandom(MIB + 1))).status_code == 200
    state = await completed_state(client, alice, ticket["id"])
    assert state["status"] == "rejected"
    assert f"exceeds the {MIB} bytes reserved for it" in state["reason"]
    assert await reservations(app, alice) == (0, 0)
    await tasks.drain_outbox(worker_ctx(app, settings))
    await refill(app, settings, alice, MIB)
    await assert_consistent(app, bucket, alice)


async def test_a_declared_size_is_exact_on_every_route(
    client: httpx.AsyncClient, alice: Account, app: FastAPI, settings: Settings, bucket: Bucket
) -> None:
    """The audit's repro: a 3-byte form completed a 10-byte intent."""
    ticket = await ticket_for(client, alice, path="/ten.txt", size=10)
    async with httpx.AsyncClient() as browser:
        short = await browser.post(
            ticket["post"]["url"], data=ticket["post"]["fields"], files={"file": ("t", b"abc")}
        )
    assert short.status_code == 400  # the policy's range is exactly 10..10
    # A storage that ignored the policy: the object is there, 3 bytes.
    await bucket.put(key_of(ticket, settings.storage.bucket), b"abc")
    state = await completed_state(client, alice, ticket["id"])
    assert state["status"] == "rejected"
    assert "differs from the declared size 10" in state["reason"]
    await tasks.drain_outbox(worker_ctx(app, settings))
    await assert_consistent(app, bucket, alice)


async def test_uppy_parts_are_signed_only_within_the_reservation(
    client: httpx.AsyncClient,
    alice: Account,
    app: FastAPI,
    settings: Settings,
    storage: Storage,
    bucket: Bucket,
) -> None:
    """The audit's repro: Uppy's unsized part URLs took 48 MiB with 1 MiB of room. Storage
    holds at most the reservation plus the part in flight; reconcile aborts the upload."""
    await leave_room(app, settings, alice, 6 * MIB)
    created = await signed(client, alice, method="POST", key="/uppy/big.bin")
    key = created["key"]
    assert await reservations(app, alice) == (6 * MIB, 1)
    async with httpx.AsyncClient(timeout=60) as page:
        opened = await page.post(created["url"])
        upload_id = xml_value(opened.text, "UploadId")
        for number in (1, 2):
            part = await signed(
                client, alice, method="PUT", key=key, uploadId=upload_id, partNumber=number
            )
            sent = await page.put(part["url"], content=os.urandom(5 * MIB))
            assert sent.status_code == 200, sent.text
    third = await sign(client, alice, method="PUT", key=key, uploadId=upload_id, partNumber=3)
    assert third.status_code == 413
    assert third.json()["error"] == "quota_exceeded"
    far = await sign(client, alice, method="PUT", key=key, uploadId=upload_id, partNumber=9)
    assert far.status_code == 413  # parts 1..8 would need 40 MiB at least
    counts = await tasks.reconcile_uploads(worker_ctx(app, settings))
    assert counts["over_reservation"] == 1
    upload_uuid = uuid.UUID(key.rsplit("/", 1)[1])
    async with app.state.sessionmaker() as session:
        closed = await session.get(Upload, upload_uuid)
        assert closed is not None
        assert closed.status == UploadStatus.rejected
        assert closed.reason is not None and "reserved" in closed.reason
    assert await reservations(app, alice) == (0, 0)
    await tasks.drain_outbox(worker_ctx(app, settings))
    left = await storage.list_multipart_uploads(f"uploads/{alice.id}/", 10)
    assert left.uploads == ()
    await refill(app, settings, alice, 6 * MIB)
    await assert_consistent(app, bucket, alice)


async def test_uppy_with_a_size_reserves_exactly_that(
    client: httpx.AsyncClient, alice: Account, app: FastAPI, settings: Settings
) -> None:
    await leave_room(app, settings, alice, 10 * MIB)
    small = await signed(client, alice, method="PUT", key="/s.txt", size=10)
    policy = json.loads(base64.b64decode(small["fields"]["policy"]))
    assert ["content-length-range", 10, 10] in policy["conditions"]
    big = await sign(client, alice, method="POST", key="/b.bin", size=7 * MIB)
    assert big.status_code == 200, big.text
    assert await reservations(app, alice) == (7 * MIB + 10, 2)
    again = await sign(client, alice, method="POST", key="/c.bin", size=7 * MIB)
    assert again.status_code == 413
    wrong = await sign(
        client, alice, method="PUT", key=big.json()["key"], uploadId="x", partNumber=1, size=1
    )
    assert wrong.status_code == 422


async def test_an_uppy_abort_is_finished_by_the_outbox(
    client: httpx.AsyncClient, alice: Account, app: FastAPI, settings: Settings, storage: Storage
) -> None:
    """The page may never send the abort it had signed: the outbox aborts it after the grace."""
    created = await signed(client, alice, method="POST", key="/dropped.bin")
    key = created["key"]
    async with httpx.AsyncClient(timeout=60) as page:
        upload_id = xml_value((await page.post(created["url"])).text, "UploadId")
        part = await signed(client, alice, method="PUT", key=key, uploadId=upload_id, partNumber=1)
        assert (await page.put(part["url"], content=os.urandom(MIB))).status_code == 200
    await signed(client, alice, method="DELETE", key=key, uploadId=upload_id)  # never sent
    async with app.state.sessionmaker() as session:
        row = (
            await session.execute(select(ObjectDeletion).where(ObjectDeletion.object_key == key))
        ).scalar_one()
        assert row.multipart_upload_id == upload_id
        await session.execute(update(ObjectDeletion).values(not_before=func.now()))
        await session.commit()
    assert await reservations(app, alice) == (0, 0)
    assert (await tasks.drain_outbox(worker_ctx(app, settings)))["deleted"] == 1
    left = await storage.list_multipart_uploads(f"uploads/{alice.id}/", 10)
    assert left.uploads == ()


async def test_a_proxied_upload_cannot_pass_the_quota(
    client: httpx.AsyncClient, alice: Account, app: FastAPI, settings: Settings, bucket: Bucket
) -> None:
    await leave_room(app, settings, alice, MIB)
    sent = await client.post(
        "/files/upload",
        headers=alice.headers,
        data={"path": "/p.bin"},
        files={"file": ("p.bin", os.urandom(2 * MIB))},
    )
    assert sent.status_code == 413
    assert sent.json()["error"] == "quota_exceeded"
    assert await reservations(app, alice) == (0, 0)
    await tasks.drain_outbox(worker_ctx(app, settings))
    await refill(app, settings, alice, MIB)
    await assert_consistent(app, bucket, alice)


async def chunked(total: int, chunk: int = MIB) -> AsyncIterator[bytes]:
    """A multipart form body without a Content-Length (sent chunked)."""
    yield b'--b\r\nContent-Disposition: form-data; name="path"\r\n\r\n/chunked.bin\r\n'
    yield b'--b\r\nContent-Disposition: form-data; name="file"; filename="c.bin"\r\n\r\n'
    for _ in range(total // chunk):
        yield os.urandom(chunk)
    yield b"\r\n--b--\r\n"


@pytest.mark.parametrize("room", [12 * MIB, 40 * MIB])
async def test_an_unsized_proxied_upload_grows_its_reservation(
    client: httpx.AsyncClient,
    alice: Account,
    app: FastAPI,
    settings: Settings,
    bucket: Bucket,
    room: int,
) -> None:
    """Without a Content-Length the upload reserves a part and grows by parts as it streams:
    past the room it stops with 413, within it it is stored."""
    await leave_room(app, settings, alice, room)
    sent = await client.post(
        "/files/upload",
        headers={**alice.headers, "Content-Type": "multipart/form-data; boundary=b"},
        content=chunked(20 * MIB),
    )
    if room < 20 * MIB:
        assert sent.status_code == 413, sent.text
        assert sent.json()["error"] == "quota_exceeded"
    else:
        assert sent.status_code == 201, sent.text
        assert sent.json()["size"] == 20 * MIB
    assert await reservations(app, alice) == (0, 0)
    await tasks.drain_outbox(worker_ctx(app, settings))
    await refill(app, settings, alice, room)
    await assert_consistent(app, bucket, alice)


async def test_a_proxied_multipart_upload_records_its_storage_upload_at_once(
    client: httpx.AsyncClient, alice: Account, app: FastAPI, settings: Settings, storage: Storage
) -> None:
    """The audit's repro: a proxied multipart upload killed with the API left its storage
    upload until the sweep's grace. Its id is on the row as soon as it exists, so reconcile
    aborts it (through the outbox) when the lease runs out."""
    threshold = settings.storage.multipart_threshold_bytes
    release = asyncio.Event()

    async def stalling() -> AsyncIterator[bytes]:
        yield b'--b\r\nContent-Disposition: form-data; name="file"; filename="s.bin"\r\n\r\n'
        yield os.urandom(threshold + MIB)
        await release.wait()
        yield b"\r\n--b--\r\n"

    request = asyncio.create_task(
        client.post(
            "/files/upload?path=/stalled.bin",
            headers={**alice.headers, "Content-Type": "multipart/form-data; boundary=b"},
            content=stalling(),
        )
    )
    recorded: Upload | None = None
    for _ in range(200):
        async with app.state.sessionmaker() as session:
            recorded = (
                await session.execute(select(Upload).where(Upload.owner_id == alice.id))
            ).scalar_one_or_none()
        if recorded is not None and recorded.multipart_upload_id is not None:
            break
        await asyncio.sleep(0.05)
    assert recorded is not None and recorded.multipart_upload_id is not None
    # The API process dies: nothing but reconcile will ever look at this upload again.
    async with app.state.sessionmaker() as session:
        await session.execute(
            update(Upload)
            .where(Upload.id == recorded.id)
            .values(expires_at=func.now() - func.make_interval(0, 0, 0, 0, 0, 1))
        )
        await session.commit()
    counts = await tasks.reconcile_uploads(worker_ctx(app, settings))
    assert counts["failed"] == 1
    await tasks.drain_outbox(worker_ctx(app, settings))
    left = await storage.list_multipart_uploads(f"uploads/{alice.id}/", 10)
    assert left.uploads == ()
    request.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await request


@contextlib.asynccontextmanager
async def app_with(settings: Settings, **overrides: Any) -> AsyncIterator[httpx.AsyncClient]:
    """A client of an app of its own, with some settings changed."""
    application = create_app(settings.with_changes(**overrides))
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://test/api/v1") as http:
            yield http


async def test_open_uploads_per_user_are_capped(settings: Settings, app: FastAPI) -> None:
    """The audit's repro: 3,000 intents in 9 s. Past the cap, 429 with Retry-After; the
    refused intent holds nothing, and another user is not affected."""
    async with app_with(settings, max_open_uploads_per_user=3) as client:
        alice = await make_account(client)
        bob = await make_account(client)
        tickets = [await ticket_for(client, alice, path=f"/{n}.txt", size=5) for n in range(3)]
        refused = await intent(client, alice, path="/4.txt", size=5)
        assert refused.status_code == 429
        assert refused.json()["error"] == "too_many_uploads"
        assert int(refused.headers["Retry-After"]) >= 1
        assert await reservations(app, alice) == (15, 3)
        assert (await intent(client, bob, path="/1.txt", size=5)).status_code == 201
        gone = await client.delete(f"/files/uploads/{tickets[0]['id']}", headers=alice.headers)
        assert gone.status_code == 204
        assert (await intent(client, alice, path="/4.txt", size=5)).status_code == 201
