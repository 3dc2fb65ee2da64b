"""Direct uploads: intents, presigned PUT/POST against the real S3 server, confirmation."""

import asyncio
import base64
import hashlib
import json
import os
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select, update

from api.main import create_app
from domain.models import File, Upload, User
from domain.uploads.confirmation import confirm_upload
from infra.config import Settings
from infra.storage.adapter import Storage, is_proxied_key, open_storage
from scripts.seaweed import free_port
from tests.helpers import (
    EVENT_FIXTURES,
    Account,
    Bucket,
    RunWorker,
    complete,
    intent,
    listed,
    put,
    upload,
    user_keys,
    webhook_headers,
    worker_ctx,
)
from worker.tasks import reconcile_uploads

FIXTURES = EVENT_FIXTURES


async def test_intent_signs_a_put_and_a_post(
    client: httpx.AsyncClient, alice: Account, settings: Settings
) -> None:
    content = b"hello direct"
    digest = hashlib.sha256(content).hexdigest()
    response = await intent(
        client, alice, path="/d/", name="a.txt", size=len(content), sha256=digest
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["status"] == "pending"
    assert body["path"] == "/d/a.txt"
    ticket = body["upload"]
    assert ticket["method"] == "PUT"
    assert ticket["url"].startswith(
        f"{settings.storage.endpoint_url}/{settings.storage.bucket}/uploads/"
    )
    assert ticket["headers"]["Content-Type"] == "text/plain"
    assert ticket["headers"]["Content-Length"] == str(len(content))
    checksum = base64.b64encode(bytes.fromhex(digest)).decode()
    assert ticket["headers"]["x-amz-checksum-sha256"] == checksum
    assert ticket["post"] is None  # a POST policy cannot make storage check the checksum
    unsummed = (await intent(client, alice, path="/e.txt", size=len(content))).json()["upload"]
    policy = json.loads(base64.b64decode(unsummed["post"]["fields"]["policy"]))
    assert ["content-length-range", len(content), len(content)] in policy["conditions"]
    assert await listed(client, alice) == []  # nothing is listed before it is confirmed
    assert (await put(ticket, content)).status_code == 200
    confirmed = await complete(client, alice, ticket["id"])
    assert confirmed.status_code == 200
    assert confirmed.json()["status"] == "completed"
    [file] = await listed(client, alice)
    assert file["id"] == body["id"]
    assert file["size"] == len(content)
    assert file["content_type"] == "text/plain"
    assert file["etag"] == hashlib.md5(content).hexdigest()
    assert file["sha256"] == digest  # as storage reports it


async def test_presigned_post_as_a_browser_form(client: httpx.AsyncClient, alice: Account) -> None:
    ticket = (await intent(client, alice, path="/form.png", content_type="image/png")).json()[
        "upload"
    ]
    post = ticket["post"]
    async with httpx.AsyncClient() as browser:
        sent = await browser.post(
            post["url"],
            data=post["fields"],
            files={"file": ("form.png", b"\x89PNG....", "image/png")},
        )
    assert sent.status_code == 204, sent.text
    assert (await complete(client, alice, ticket["id"])).status_code == 200
    [file] = await listed(client, alice)
    assert file["content_type"] == "image/png"
    assert file["size"] == 8


async def test_storage_refuses_what_was_not_signed(
    client: httpx.AsyncClient,
    alice: Account,
    settings: Settings,
    storage: Storage,
    bucket: Bucket,
) -> None:
    content = b"exactly this"
    digest = hashlib.sha256(content).hexdigest()
    ticket = (
        await intent(client, alice, path="/s.txt", size=len(content), content_type="text/plain")
    ).json()["upload"]
    tampered = ticket["url"][:-4] + ("0000" if not ticket["url"].endswith("0000") else "1111")
    async with httpx.AsyncClient() as plain:
        forged = await plain.put(tampered, content=content, headers={"Content-Type": "text/plain"})
    assert forged.status_code == 403
    assert (await put(ticket, content, **{"Content-Type": "text/html"})).status_code == 403
    assert (await put(ticket, content + b"!")).status_code == 403
    with_sum = (await intent(client, alice, path="/c.txt", sha256=digest)).json()["upload"]
    assert (await put(with_sum, b"something else")).status_code in {400, 403}
    small = (await intent(client, alice, path="/p.bin", size=4)).json()["upload"]
    async with httpx.AsyncClient() as browser:
        oversize = await browser.post(
            small["post"]["url"], data=small["post"]["fields"], files={"file": ("p", b"12345")}
        )
    assert oversize.status_code == 400
    assert b"EntityTooLarge" in oversize.content
    short = settings.with_changes(**{"upload_url_ttl_seconds": 1})
    async with open_storage(short) as expiring:
        url = expiring.presign_put(
            f"uploads/{alice.id}/{uuid.uuid4()}", "text/plain", None, None
        ).url
    await asyncio.sleep(2.2)
    async with httpx.AsyncClient() as plain:
        expired = await plain.put(url, content=b"late", headers={"Content-Type": "text/plain"})
    assert expired.status_code == 403
    assert await user_keys(bucket, alice) == set()


async def test_limits_are_checked_before_signing(
    client: httpx.AsyncClient, alice: Account, settings: Settings, app: FastAPI
) -> None:
    too_big = await intent(client, alice, path="/big", size=settings.uploads.max_upload_bytes + 1)
    assert too_big.status_code == 413
    assert too_big.json()["error"] == "payload_too_large"
    async with app.state.sessionmaker() as session:
        await session.execute(
            update(User).values(used_bytes=settings.uploads.user_quota_bytes - 100)
        )
        await session.commit()
    over_quota = await intent(client, alice, path="/q", size=101)
    assert over_quota.status_code == 413
    assert over_quota.json()["error"] == "quota_exceeded"
    assert (await intent(client, alice, path="/q", size=100)).status_code == 201


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"path": "relative"}, 400, "invalid_path"),
        ({"path": "/a/../b"}, 400, "invalid_path"),
        ({"path": "/folder/"}, 400, "invalid_path"),
        ({"path": "/x", "size": 0}, 422, "validation_error"),
        ({"path": "/x", "size": "big"}, 422, "validation_error"),
        ({"path": "/x", "sha256": "nothex"}, 422, "validation_error"),
        ({"path": "/x", "content_type": "not a type"}, 422, "validation_error"),
        ({"path": "/x", "colour": "red"}, 422, "validation_error"),
        ({}, 422, "validation_error"),
        ([], 422, "validation_error"),
    ],
)
async def test_bad_intents(
    client: httpx.AsyncClient, alice: Account, body: object, status: int, code: str
) -> None:
    response = await client.post("/files/upload", json=body, headers=alice.headers)
    assert (response.status_code, response.json()["error"]) == (status, code), response.text


async def test_over_quota_object_is_rejected_and_deleted(
    client: httpx.AsyncClient,
    alice: Account,
    app: FastAPI,
    settings: Settings,
    storage: Storage,
    run_worker: RunWorker,
    bucket: Bucket,
) -> None:
    ticket = (await intent(client, alice, path="/sneaky.bin")).json()["upload"]
    async with app.state.sessionmaker() as session:
        await session.execute(
            update(User).values(used_bytes=settings.uploads.user_quota_bytes - 10)
        )
        await session.commit()
    assert (await put(ticket, os.urandom(11))).status_code == 200
    response = await complete(client, alice, ticket["id"])
    assert response.status_code == 409
    assert response.json()["error"] == "upload_closed"
    state = (await client.get(f"/files/uploads/{ticket['id']}", headers=alice.headers)).json()
    assert state["status"] == "rejected"
    assert "quota" in state["reason"]
    await run_worker()
    assert await user_keys(bucket, alice) == set()
    assert await listed(client, alice) == []


async def test_declared_size_is_enforced_at_confirmation(
    client: httpx.AsyncClient,
    alice: Account,
    storage: Storage,
    run_worker: RunWorker,
    bucket: Bucket,
) -> None:
    """A POST policy allows up to the declared size; a PUT could only be bigger if unsigned."""
    ticket = (await intent(client, alice, path="/d.bin", size=5)).json()["upload"]
    key = ticket["url"].split("?")[0].split(f"/{storage.bucket}/", 1)[1]
    await bucket.put(key, b"123456")
    assert (await complete(client, alice, ticket["id"])).status_code == 409
    await run_worker()
    assert await user_keys(bucket, alice) == set()


async def test_complete_before_the_object_arrives_is_202(
    client: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    ticket = (await intent(client, alice, path="/later.txt")).json()["upload"]
    early = await complete(client, alice, ticket["id"])
    assert early.status_code == 202
    assert early.json()["status"] == "pending"
    assert (await complete(client, bob, ticket["id"])).status_code == 404
    assert (
        await client.get(f"/files/uploads/{ticket['id']}", headers=bob.headers)
    ).status_code == 404
    assert (await client.get("/files/uploads/not-a-uuid", headers=alice.headers)).status_code == 422
    await put(ticket, b"now")
    assert (await complete(client, alice, ticket["id"])).status_code == 200
    again = await complete(client, alice, ticket["id"])
    assert again.status_code == 200
    assert again.json()["file"]["size"] == 3


def _minio_event(bucket: str, key: str, etag: str, name: str = "s3:ObjectCreated:Put") -> Any:
    event = json.loads((FIXTURES / "minio-put-event.json").read_text())
    record = event["Records"][0]
    record["eventName"] = name
    record["s3"]["bucket"]["name"] = bucket
    record["s3"]["object"]["key"] = quote(key, safe="").replace("%20", "+")
    record["s3"]["object"]["eTag"] = etag
    return event


async def test_webhook_authentication_and_bad_bodies(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    event = _minio_event(settings.storage.bucket, "uploads/x/y", "e")
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic abc"}):
        response = await client.post("/storage/events", json=event, headers=headers)
        assert response.status_code == 401
    good = webhook_headers(settings)
    for body in (b"not json", b'{"hello": "world"}', b"[1, 2]", b'{"Records": "x"}'):
        response = await client.post(
            "/storage/events", content=body, headers={**good, "Content-Type": "application/json"}
        )
        assert response.status_code == 400, body
    assert (
        await client.post("/storage/events", json={"Records": []}, headers=good)
    ).status_code == 204


async def test_webhook_enqueues_the_right_keys(
    client: httpx.AsyncClient, settings: Settings, app: FastAPI
) -> None:
    bucket, headers = settings.storage.bucket, webhook_headers(settings)
    odd_key = "uploads/owner/a b+c/d%e"
    bodies: list[Any] = [
        _minio_event(bucket, odd_key, "etag1"),
        _minio_event(bucket, odd_key, "etag1"),  # a duplicate collapses
        _minio_event(
            bucket, "uploads/owner/mp", "abc-4", "s3:ObjectCreated:CompleteMultipartUpload"
        ),
        _minio_event("another-bucket", "uploads/owner/z", "e"),
        _minio_event(bucket, "elsewhere/owner/z", "e"),
        _minio_event(bucket, "uploads/owner/gone", "e", "s3:ObjectRemoved:Delete"),
        # Written by the API for a proxied upload, which its own request confirms.
        _minio_event(bucket, "uploads/owner/proxied-0b7c4a1e", "e"),
    ]
    aws = json.loads((FIXTURES / "aws-s3-put-event.json").read_text())
    aws["Records"][0]["s3"]["bucket"]["name"] = bucket
    aws["Records"][0]["s3"]["object"]["key"] = "uploads%2Fowner%2Faws+file"
    bodies.append(aws)
    seaweed = json.loads((FIXTURES / "seaweedfs-filer-events.json").read_text())
    bodies += [
        json.loads(json.dumps(event).replace("/buckets/filestore/", f"/buckets/{bucket}/"))
        for event in seaweed
    ]
    for body in bodies:
        response = await client.post("/storage/events", json=body, headers=headers)
        assert response.status_code == 204, response.text
    jobs = await app.state.redis.queued_jobs()
    assert sorted(job.args[0] for job in jobs) == sorted(
        [
            odd_key,
            "uploads/owner/mp",
            "uploads/owner/aws file",
            "uploads/hooked.bin",
            "uploads/mp.bin",
        ]
    )
    assert {job.function for job in jobs} == {"confirm_upload"}


async def test_a_proxied_uploads_notification_costs_no_job(
    client: httpx.AsyncClient, alice: Account, settings: Settings, app: FastAPI
) -> None:
    stored = await upload(client, alice, "/via-api.bin", b"streamed by the API")
    assert stored.status_code == 201, stored.text
    async with app.state.sessionmaker() as session:
        key = await session.scalar(select(File.object_key).where(File.id == stored.json()["id"]))
    assert key is not None and is_proxied_key(key)
    response = await client.post(
        "/storage/events",
        json=_minio_event(
            settings.storage.bucket, key, hashlib.md5(b"streamed by the API").hexdigest()
        ),
        headers=webhook_headers(settings),
    )
    assert response.status_code == 204
    assert await app.state.redis.queued_jobs() == []
    [file] = await listed(client, alice)
    assert file["size"] == len(b"streamed by the API")


async def test_webhook_is_503_when_the_queue_is_down(settings: Settings, app: FastAPI) -> None:
    dead = create_app(settings.with_changes(**{"redis_url": f"redis://127.0.0.1:{free_port()}/0"}))
    async with dead.router.lifespan_context(dead):
        transport = httpx.ASGITransport(app=dead)
        async with httpx.AsyncClient(transport=transport, base_url="http://test/api/v1") as http:
            response = await http.post(
                "/storage/events",
                json=_minio_event(settings.storage.bucket, "uploads/a/b", "e"),
                headers=webhook_headers(settings),
            )
    assert response.status_code == 503
    assert response.json()["error"] == "queue_unavailable"


async def test_notification_to_worker_confirms(
    client: httpx.AsyncClient, alice: Account, settings: Settings, run_worker: RunWorker
) -> None:
    ticket = (await intent(client, alice, path="/hooked.txt")).json()["upload"]
    assert (await put(ticket, b"via the webhook")).status_code == 200
    key = ticket["url"].split("?")[0].split(f"/{settings.storage.bucket}/", 1)[1]
    etag = hashlib.md5(b"via the webhook").hexdigest()
    for _ in range(3):  # duplicates are harmless
        await client.post(
            "/storage/events",
            json=_minio_event(settings.storage.bucket, key, etag),
            headers=webhook_headers(settings),
        )
    await run_worker()
    [file] = await listed(client, alice)
    assert file["size"] == len(b"via the webhook")
    state = (await client.get(f"/files/uploads/{ticket['id']}", headers=alice.headers)).json()
    assert state["status"] == "completed"


@pytest.mark.usefixtures("final_deletes")
async def test_out_of_order_and_concurrent_uploads_to_one_path(
    client: httpx.AsyncClient,
    alice: Account,
    app: FastAPI,
    storage: Storage,
    run_worker: RunWorker,
    bucket: Bucket,
) -> None:
    first = (await intent(client, alice, path="/same.txt")).json()["upload"]
    second = (await intent(client, alice, path="/same.txt")).json()["upload"]
    await put(first, b"first")
    await put(second, b"second")
    results = await asyncio.gather(
        complete(client, alice, second["id"]), complete(client, alice, first["id"])
    )
    assert {response.status_code for response in results} == {200}
    await run_worker()
    files = await listed(client, alice)
    assert len(files) == 1
    objects = await user_keys(bucket, alice)
    assert len(objects) == 1  # the replaced object was deleted
    async with app.state.sessionmaker() as session:
        key = (await session.execute(select(File.object_key))).scalar_one()
        used = (await session.execute(select(User.used_bytes))).scalar_one()
    assert objects == {key}
    assert used == files[0]["size"]


async def test_reused_put_url_is_checked_again(
    client: httpx.AsyncClient, alice: Account, app: FastAPI
) -> None:
    ticket = (await intent(client, alice, path="/reuse.txt")).json()["upload"]
    await put(ticket, b"small")
    assert (await complete(client, alice, ticket["id"])).status_code == 200
    await put(ticket, b"a bigger body this time")
    assert (await complete(client, alice, ticket["id"])).status_code == 200
    [file] = await listed(client, alice)
    assert file["size"] == len(b"a bigger body this time")
    async with app.state.sessionmaker() as session:
        used = (await session.execute(select(User.used_bytes))).scalar_one()
    assert used == file["size"]


async def test_confirmation_twice_or_interrupted_is_consistent(
    client: httpx.AsyncClient, alice: Account, app: FastAPI, settings: Settings, storage: Storage
) -> None:
    ticket = (await intent(client, alice, path="/twice.txt")).json()["upload"]
    await put(ticket, b"12345")
    key = ticket["url"].split("?")[0].split(f"/{settings.storage.bucket}/", 1)[1]
    async with app.state.sessionmaker() as session:  # interrupted: never committed
        result = await confirm_upload(session, storage, settings, key)
        assert result.outcome == "confirmed"
        await session.rollback()
    assert await listed(client, alice) == []
    outcomes = []
    for _ in range(2):
        async with app.state.sessionmaker() as session:
            outcomes.append((await confirm_upload(session, storage, settings, key)).outcome)
            await session.commit()
    assert outcomes == ["confirmed", "already_done"]
    async with app.state.sessionmaker() as session:
        used = (await session.execute(select(User.used_bytes))).scalar_one()
    assert used == 5


async def _reconcile(app: FastAPI, settings: Settings, storage: Storage) -> dict[str, int]:
    return await reconcile_uploads(worker_ctx(app, settings, storage))


async def test_reconcile_recovers_a_missed_notification(
    client: httpx.AsyncClient,
    alice: Account,
    app: FastAPI,
    settings: Settings,
    storage: Storage,
    run_worker: RunWorker,
) -> None:
    ticket = (await intent(client, alice, path="/missed.txt")).json()["upload"]
    await put(ticket, b"no notification came")
    counts = await _reconcile(app, settings, storage)
    assert counts["confirmed"] == 1
    [file] = await listed(client, alice)
    assert file["path"] == "/missed.txt"


async def test_abandoned_intents_expire(
    client: httpx.AsyncClient, alice: Account, app: FastAPI, settings: Settings, storage: Storage
) -> None:
    await upload(client, alice, "/kept.txt", b"already here")
    abandoned = (await intent(client, alice, path="/never.txt")).json()["upload"]
    overwrite = (await intent(client, alice, path="/kept.txt")).json()["upload"]
    fresh = (await intent(client, alice, path="/fresh.txt")).json()["upload"]
    past = datetime.now(UTC) - timedelta(seconds=1)
    async with app.state.sessionmaker() as session:
        await session.execute(
            update(Upload)
            .where(Upload.id.in_([uuid.UUID(abandoned["id"]), uuid.UUID(overwrite["id"])]))
            .values(expires_at=past)
        )
        await session.commit()
    counts = await _reconcile(app, settings, storage)
    assert counts["expired"] == 2
    assert counts["files_removed"] == 1
    for ticket, expected in ((abandoned, "expired"), (overwrite, "expired"), (fresh, "pending")):
        state = (await client.get(f"/files/uploads/{ticket['id']}", headers=alice.headers)).json()
        assert state["status"] == expected
    async with app.state.sessionmaker() as session:
        paths = set((await session.execute(select(File.path))).scalars())
        count = (await session.execute(select(func.count()).select_from(Upload))).scalar_one()
    assert paths == {"/kept.txt", "/fresh.txt"}
    assert count == 4
    assert [f["path"] for f in await listed(client, alice)] == ["/kept.txt"]


async def test_presigned_urls_use_the_public_endpoint(
    settings: Settings, alice: Account, client: httpx.AsyncClient
) -> None:
    public = settings.storage.endpoint_url.replace("127.0.0.1", "localhost")
    other = create_app(settings.with_changes(**{"s3_public_endpoint_url": public}))
    async with other.router.lifespan_context(other):
        transport = httpx.ASGITransport(app=other)
        async with httpx.AsyncClient(transport=transport, base_url="http://test/api/v1") as http:
            ticket = (await intent(http, alice, path="/pub.txt")).json()["upload"]
            assert ticket["url"].startswith(public)
            assert ticket["post"]["url"].startswith(public)
            assert (await put(ticket, b"via localhost")).status_code == 200
            assert (await complete(http, alice, ticket["id"])).status_code == 200
            await upload(http, alice, "/pub2.txt", b"x")
            redirect = await http.get(
                "/files/download", params={"path": "/pub2.txt"}, headers=alice.headers
            )
            assert redirect.headers["location"].startswith(public)


async def test_oversized_intent_body_is_413(
    client: httpx.AsyncClient, alice: Account, settings: Settings
) -> None:
    body = {"path": "/x", "name": "n" * settings.requests.max_request_body_bytes}
    response = await client.post("/files/upload", json=body, headers=alice.headers)
    assert response.status_code == 413
