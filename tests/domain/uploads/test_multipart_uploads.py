"""Presigned multipart uploads (DESIGN §9) against the real SeaweedFS: parts straight to storage,
resumable, checked, completed, aborted, reconciled."""

import asyncio
import hashlib
import os
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, update

from domain.errors import ValidationFailed
from domain.models import Upload, User
from domain.objects.tasks.sweep import sweep_bucket
from domain.uploads.multipart import choose_part_size, wants_multipart
from domain.uploads.schemas import UploadIntentIn
from infra.config import Settings
from infra.storage.adapter import Storage
from tests.helpers import (
    Account,
    Bucket,
    RunWorker,
    complete,
    intent,
    listed,
    upload,
    user_keys,
    worker_ctx,
)
from worker.tasks import drain_outbox, reconcile_uploads

MIB = 1024 * 1024


async def multipart_ticket(
    client: httpx.AsyncClient, account: Account, path: str, size: int, part_size: int = 5 * MIB
) -> dict[str, Any]:
    response = await intent(
        client, account, path=path, size=size, multipart=True, part_size=part_size
    )
    assert response.status_code == 201, response.text
    ticket: dict[str, Any] = response.json()["upload"]
    return ticket


async def sign(
    client: httpx.AsyncClient, account: Account, upload_id: str, parts: list[dict[str, Any]]
) -> httpx.Response:
    return await client.post(
        f"/files/uploads/{upload_id}/parts", json={"parts": parts}, headers=account.headers
    )


async def send_part(signed: dict[str, Any], body: bytes) -> httpx.Response:
    headers = {k: v for k, v in signed["headers"].items() if k.lower() != "content-length"}
    async with httpx.AsyncClient(timeout=60) as plain:
        return await plain.put(signed["url"], content=body, headers=headers)


def chunks(data: bytes, part_size: int) -> dict[int, bytes]:
    return {i // part_size + 1: data[i : i + part_size] for i in range(0, len(data), part_size)}


async def send_parts(
    client: httpx.AsyncClient,
    account: Account,
    upload_id: str,
    parts: dict[int, bytes],
    *,
    with_sha256: bool = False,
    in_flight: int = 4,
) -> dict[int, str]:
    """Sign and send ``parts`` (number → bytes), ``in_flight`` at a time; number → etag."""
    wanted = [
        {"number": n, **({"sha256": hashlib.sha256(b).hexdigest()} if with_sha256 else {})}
        for n, b in parts.items()
    ]
    signed = await sign(client, account, upload_id, wanted)
    assert signed.status_code == 200, signed.text
    gate = asyncio.Semaphore(in_flight)

    async def one(item: dict[str, Any]) -> tuple[int, str]:
        async with gate:
            sent = await send_part(item, parts[item["number"]])
        assert sent.status_code == 200, sent.text
        return item["number"], sent.headers["etag"].strip('"')

    return dict(await asyncio.gather(*(one(item) for item in signed.json()["parts"])))


async def stored_parts(client: httpx.AsyncClient, account: Account, upload_id: str) -> Any:
    response = await client.get(f"/files/uploads/{upload_id}/parts", headers=account.headers)
    assert response.status_code == 200, response.text
    return response.json()["parts"]


async def multipart_uploads_of(bucket: Bucket, account: Account) -> list[str]:
    return sorted(key for key, _ in await bucket.multipart_uploads(f"uploads/{account.id}/"))


async def test_64_mib_in_5_mib_parts(
    client: httpx.AsyncClient,
    alice: Account,
    storage: Storage,
    bucket: Bucket,
) -> None:
    data = os.urandom(64 * MIB)
    ticket = await multipart_ticket(client, alice, "/big/video.bin", len(data))
    assert ticket["method"] == "multipart"
    assert ticket["part_size"] == 5 * MIB
    assert ticket["part_count"] == 13  # 12 parts of 5 MiB and one of 4 MiB
    assert await multipart_uploads_of(bucket, alice) != []
    etags = await send_parts(
        client, alice, ticket["id"], chunks(data, 5 * MIB), with_sha256=True, in_flight=4
    )
    assert sorted(etags) == list(range(1, 14))
    done = await complete(client, alice, ticket["id"])
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "completed"
    [file] = await listed(client, alice)
    assert file["path"] == "/big/video.bin"
    assert file["size"] == len(data)
    assert file["content_type"] == "application/octet-stream"
    async with httpx.AsyncClient(timeout=60) as plain:
        location = (
            await client.get("/files/download", params={"path": file["id"]}, headers=alice.headers)
        ).headers["location"]
        fetched = await plain.get(location)
    assert hashlib.sha256(fetched.content).digest() == hashlib.sha256(data).digest()
    assert await multipart_uploads_of(bucket, alice) == []
    again = await complete(client, alice, ticket["id"])  # idempotent
    assert again.status_code == 200
    assert again.json()["status"] == "completed"


async def test_each_part_is_signed_for_its_exact_length(
    client: httpx.AsyncClient, alice: Account
) -> None:
    data = os.urandom(11 * MIB)
    ticket = await multipart_ticket(client, alice, "/len.bin", len(data))
    signed = (await sign(client, alice, ticket["id"], [{"number": 1}, {"number": 3}])).json()
    first, last = signed["parts"]
    assert first["method"] == "PUT"
    assert first["headers"]["Content-Length"] == str(5 * MIB)
    assert last["headers"]["Content-Length"] == str(1 * MIB)
    assert "x-amz-checksum-sha256" not in first["headers"]
    assert (await send_part(first, data[: 5 * MIB - 1])).status_code == 403
    assert (await send_part(last, data[10 * MIB :])).status_code == 200


async def test_resume_after_losing_the_client(
    client: httpx.AsyncClient,
    alice: Account,
    storage: Storage,
    bucket: Bucket,
) -> None:
    data = os.urandom(18 * MIB)
    parts = chunks(data, 5 * MIB)
    ticket = await multipart_ticket(client, alice, "/resumed.bin", len(data))
    await send_parts(client, alice, ticket["id"], {n: parts[n] for n in (1, 3)})
    # The client crashed: all it still knows is the upload id. The state gives the part size,
    # storage says what it holds.
    state = (await client.get(f"/files/uploads/{ticket['id']}", headers=alice.headers)).json()
    assert (state["multipart"], state["part_size"], state["part_count"]) == (True, 5 * MIB, 4)
    held = await stored_parts(client, alice, ticket["id"])
    assert [(p["number"], p["size"]) for p in held] == [(1, 5 * MIB), (3, 5 * MIB)]
    assert held[0]["etag"] == hashlib.md5(parts[1]).hexdigest()
    missing = {n: parts[n] for n in range(1, ticket["part_count"] + 1)} | {}
    for part in held:
        missing.pop(part["number"])
    assert sorted(missing) == [2, 4]
    new = await send_parts(client, alice, ticket["id"], missing)
    listing = {p["number"]: p["etag"] for p in held} | new
    body = {"parts": [{"number": n, "etag": listing[n]} for n in sorted(listing)]}
    done = await complete(client, alice, ticket["id"], body)
    assert done.status_code == 200, done.text
    assert done.json()["file"]["size"] == len(data)
    assert await multipart_uploads_of(bucket, alice) == []


async def test_a_part_not_matching_its_sha256_is_refused_by_storage(
    client: httpx.AsyncClient, alice: Account
) -> None:
    ticket = await multipart_ticket(client, alice, "/sum.bin", 6 * MIB)
    body = os.urandom(5 * MIB)
    claimed = hashlib.sha256(b"other bytes" + body[11:]).hexdigest()
    signed = (await sign(client, alice, ticket["id"], [{"number": 1, "sha256": claimed}])).json()
    [part] = signed["parts"]
    assert part["headers"]["x-amz-checksum-sha256"]
    refused = await send_part(part, body)
    assert refused.status_code in {400, 403}, refused.text
    assert await stored_parts(client, alice, ticket["id"]) == []
    right = hashlib.sha256(body).hexdigest()
    resigned = (await sign(client, alice, ticket["id"], [{"number": 1, "sha256": right}])).json()
    assert (await send_part(resigned["parts"][0], body)).status_code == 200


async def test_complete_with_a_missing_part_is_409(
    client: httpx.AsyncClient, alice: Account, storage: Storage
) -> None:
    data = os.urandom(16 * MIB)
    parts = chunks(data, 5 * MIB)
    ticket = await multipart_ticket(client, alice, "/gap.bin", len(data))
    etags = await send_parts(client, alice, ticket["id"], {n: parts[n] for n in (1, 3)})
    gap = await complete(client, alice, ticket["id"])
    assert gap.status_code == 409
    assert gap.json()["error"] == "parts_missing"
    assert "2, 4" in gap.json()["detail"]
    listed_without_3 = {"parts": [{"number": 1, "etag": etags[1]}]}
    named = await complete(client, alice, ticket["id"], listed_without_3)
    assert named.status_code == 409
    assert "2-4" in named.json()["detail"]
    etags |= await send_parts(client, alice, ticket["id"], {n: parts[n] for n in (2, 4)})
    wrong = {"parts": [{"number": n, "etag": etags[1]} for n in range(1, 5)]}
    mismatch = await complete(client, alice, ticket["id"], wrong)
    assert mismatch.status_code == 409
    assert "etag" in mismatch.json()["detail"]
    assert (await complete(client, alice, ticket["id"], {"parts": "x"})).status_code == 422
    assert (
        await complete(client, alice, ticket["id"], {"parts": [{"number": 5, "etag": "e"}]})
    ).json()["error"] == "validation_error"
    assert (await complete(client, alice, ticket["id"])).status_code == 200
    assert [f["size"] for f in await listed(client, alice)] == [len(data)]


async def test_abort_leaves_nothing_in_the_bucket(
    client: httpx.AsyncClient,
    alice: Account,
    storage: Storage,
    run_worker: RunWorker,
    bucket: Bucket,
) -> None:
    ticket = await multipart_ticket(client, alice, "/aborted.bin", 12 * MIB)
    await send_parts(client, alice, ticket["id"], {1: os.urandom(5 * MIB)})
    single = (await intent(client, alice, path="/single.txt")).json()["upload"]
    async with httpx.AsyncClient() as plain:
        put = await plain.put(single["url"], content=b"landed", headers=single["headers"])
    assert put.status_code == 200
    for upload_id in (ticket["id"], single["id"]):
        gone = await client.delete(f"/files/uploads/{upload_id}", headers=alice.headers)
        assert gone.status_code == 204, gone.text
        state = (await client.get(f"/files/uploads/{upload_id}", headers=alice.headers)).json()
        assert state["status"] == "aborted"
        again = await client.delete(f"/files/uploads/{upload_id}", headers=alice.headers)
        assert again.status_code == 204
        closed = await complete(client, alice, upload_id)
        assert closed.status_code == 409
        assert closed.json()["error"] == "upload_closed"
    assert (await sign(client, alice, ticket["id"], [{"number": 2}])).status_code == 409
    await run_worker()
    assert await multipart_uploads_of(bucket, alice) == []
    assert await user_keys(bucket, alice) == set()
    assert await listed(client, alice) == []
    done = await client.post(
        "/files/upload", headers=alice.headers, files={"file": ("a", b"1")}, data={"path": "/p"}
    )
    assert done.status_code == 201
    uploads = await client.get("/files", headers=alice.headers)
    assert [f["path"] for f in uploads.json()["files"]] == ["/p"]


async def test_a_completed_upload_cannot_be_aborted(
    client: httpx.AsyncClient, alice: Account
) -> None:
    ticket = await multipart_ticket(client, alice, "/kept.bin", 5 * MIB)
    await send_parts(client, alice, ticket["id"], {1: os.urandom(5 * MIB)})
    assert (await complete(client, alice, ticket["id"])).status_code == 200
    refused = await client.delete(f"/files/uploads/{ticket['id']}", headers=alice.headers)
    assert refused.status_code == 409
    assert refused.json()["error"] == "upload_closed"


async def test_expired_multipart_intent_is_aborted_by_reconcile(
    client: httpx.AsyncClient,
    alice: Account,
    app: FastAPI,
    settings: Settings,
    storage: Storage,
    bucket: Bucket,
) -> None:
    ticket = await multipart_ticket(client, alice, "/late.bin", 10 * MIB)
    await send_parts(client, alice, ticket["id"], {1: os.urandom(5 * MIB)})
    live = await multipart_ticket(client, alice, "/live.bin", 10 * MIB)
    assert len(await multipart_uploads_of(bucket, alice)) == 2
    async with app.state.sessionmaker() as session:
        await session.execute(
            update(Upload)
            .where(Upload.id == uuid.UUID(ticket["id"]))
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
        await session.commit()
    refused = await sign(client, alice, ticket["id"], [{"number": 2}])
    assert refused.status_code == 409  # past its expiry, even before reconcile ran
    ctx = worker_ctx(app, settings, storage)
    counts = await reconcile_uploads(ctx)
    assert counts["expired"] == 1
    assert counts["multipart_aborted"] == 1
    state = (await client.get(f"/files/uploads/{ticket['id']}", headers=alice.headers)).json()
    assert state["status"] == "expired"
    await drain_outbox(ctx)  # the outbox aborts it, retried until storage answers
    remaining = await multipart_uploads_of(bucket, alice)
    async with app.state.sessionmaker() as session:
        live_key = (
            await session.execute(
                select(Upload.object_key).where(Upload.id == uuid.UUID(live["id"]))
            )
        ).scalar_one()
    assert remaining == [live_key]


async def test_the_sweep_leaves_a_pending_multipart_upload_alone(
    client: httpx.AsyncClient,
    alice: Account,
    app: FastAPI,
    settings: Settings,
    storage: Storage,
    bucket: Bucket,
) -> None:
    await multipart_ticket(client, alice, "/claimed.bin", 10 * MIB)
    await sweep_bucket(
        app.state.database,
        storage,
        app.state.redis,
        settings.with_changes(**{"sweep_grace_seconds": 0}),
    )
    # Other tests' leftovers are aborted; the pending row's upload is claimed.
    assert len(await multipart_uploads_of(bucket, alice)) == 1


async def test_another_users_upload_is_404_on_every_route(
    client: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    ticket = await multipart_ticket(client, alice, "/mine.bin", 10 * MIB)
    upload_id = ticket["id"]
    for account, expected in ((bob, 404), (alice, None)):
        calls = [
            await sign(client, account, upload_id, [{"number": 1}]),
            await client.get(f"/files/uploads/{upload_id}/parts", headers=account.headers),
            await complete(client, account, upload_id, {"parts": [{"number": 1, "etag": "x"}]}),
            await client.get(f"/files/uploads/{upload_id}", headers=account.headers),
        ]
        if expected is None:
            assert [c.status_code for c in calls] == [200, 200, 409, 200]
            continue
        for call in calls:
            assert call.status_code == 404, call.text
            assert call.json()["error"] == "upload_not_found"
    stranger = await client.delete(f"/files/uploads/{upload_id}", headers=bob.headers)
    assert stranger.status_code == 404
    unknown = uuid.uuid4()
    assert (await sign(client, alice, str(unknown), [{"number": 1}])).status_code == 404
    assert (
        await client.delete(f"/files/uploads/{unknown}", headers=alice.headers)
    ).status_code == 404


async def test_quota_is_checked_again_after_completion(
    client: httpx.AsyncClient,
    alice: Account,
    app: FastAPI,
    settings: Settings,
    storage: Storage,
    run_worker: RunWorker,
    bucket: Bucket,
) -> None:
    ticket = await multipart_ticket(client, alice, "/quota.bin", 6 * MIB)
    await send_parts(client, alice, ticket["id"], chunks(os.urandom(6 * MIB), 5 * MIB))
    # Meanwhile other uploads filled the quota.
    async with app.state.sessionmaker() as session:
        await session.execute(
            update(User)
            .where(User.id == alice.id)
            .values(used_bytes=settings.uploads.user_quota_bytes - MIB)
        )
        await session.commit()
    closed = await complete(client, alice, ticket["id"])
    assert closed.status_code == 409
    assert closed.json()["error"] == "upload_closed"
    assert "quota" in closed.json()["detail"]
    await run_worker()
    assert await user_keys(bucket, alice) == set()
    assert await multipart_uploads_of(bucket, alice) == []
    assert await listed(client, alice) == []


async def test_a_proxied_upload_is_unaffected(
    client: httpx.AsyncClient,
    alice: Account,
    storage: Storage,
    bucket: Bucket,
) -> None:
    data = os.urandom(12 * MIB)  # above the proxied multipart threshold: the API's own parts
    stored = await upload(client, alice, "/proxied.bin", data)
    assert stored.status_code == 201, stored.text
    assert stored.json()["status"] == "ready"
    assert stored.json()["size"] == len(data)
    assert await multipart_uploads_of(bucket, alice) == []
    [file] = await listed(client, alice)
    assert file["size"] == len(data)


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        ({"path": "/m.bin", "multipart": True}, 422, "size"),
        ({"path": "/m.bin", "size": 10 * MIB, "part_size": MIB}, 422, "part_size"),
        ({"path": "/m.bin", "size": 10 * MIB, "part_size": 6 * 1024**3}, 422, "part_size"),
        (
            {"path": "/m.bin", "size": 10 * MIB, "multipart": True, "sha256": "0" * 64},
            422,
            "sha256",
        ),
        ({"path": "/m.bin", "size": 65 * MIB, "multipart": True}, 413, "payload_too_large"),
        ({"path": "/m.bin", "size": 10 * MIB, "multipart": "yes"}, 422, "multipart"),
    ],
)
async def test_bad_multipart_intents(
    client: httpx.AsyncClient, alice: Account, body: dict[str, Any], status: int, needle: str
) -> None:
    response = await intent(client, alice, **body)
    assert response.status_code == status, response.text
    assert needle in response.text


async def test_bad_part_requests(client: httpx.AsyncClient, alice: Account) -> None:
    ticket = await multipart_ticket(client, alice, "/parts.bin", 10 * MIB)
    upload_id = ticket["id"]
    for parts, code in (
        ([], "validation_error"),
        ([{"number": 3}], "validation_error"),  # the upload has 2 parts
        ([{"number": 0}], "validation_error"),
        ([{"number": 1, "sha256": "nope"}], "validation_error"),
        ([{"number": 1}] * 1001, "validation_error"),
    ):
        response = await sign(client, alice, upload_id, parts)
        assert response.status_code == 422, response.text
        assert response.json()["error"] == code
    malformed = await client.post(
        f"/files/uploads/{upload_id}/parts", content=b"{", headers=alice.headers
    )
    assert malformed.status_code == 400
    single = (await intent(client, alice, path="/single.bin")).json()["upload"]
    not_multipart = await sign(client, alice, single["id"], [{"number": 1}])
    assert not_multipart.status_code == 409
    assert not_multipart.json()["error"] == "not_multipart"
    listing = await client.get(f"/files/uploads/{single['id']}/parts", headers=alice.headers)
    assert listing.status_code == 409
    with_parts = await complete(
        client, alice, single["id"], {"parts": [{"number": 1, "etag": "e"}]}
    )
    assert with_parts.status_code == 422


def test_part_size_choice_and_threshold() -> None:
    gib = 1024**3
    assert choose_part_size(64 * MIB, None, 8 * MIB) == 8 * MIB
    assert choose_part_size(1024 * gib, None, 8 * MIB) == 105 * MIB  # ≤ 10,000 parts
    assert choose_part_size(5 * 1024 * gib, None, 8 * MIB) == 525 * MIB
    assert choose_part_size(64 * MIB, 5 * MIB, 8 * MIB) == 5 * MIB
    with pytest.raises(ValidationFailed):
        choose_part_size(100 * gib, 5 * MIB, 8 * MIB)
    settings = Settings(multipart_threshold_bytes=100 * MIB)
    assert settings.uploads.max_upload_bytes == 5 * 1024 * gib
    assert wants_multipart(UploadIntentIn(path="/a", size=101 * MIB), settings)
    assert not wants_multipart(UploadIntentIn(path="/a", size=100 * MIB), settings)
    assert not wants_multipart(UploadIntentIn(path="/a"), settings)
    assert wants_multipart(UploadIntentIn(path="/a", size=1, multipart=True), settings)
    assert not wants_multipart(UploadIntentIn(path="/a", size=200 * MIB, multipart=False), settings)
