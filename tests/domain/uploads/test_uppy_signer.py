"""``POST /files/uploads/sign`` (Uppy 6's ``signRequest``, DESIGN §10): every signed request is
sent to the real SeaweedFS exactly as Uppy's S3 client sends it."""

import base64
import json
import os
import re
import uuid
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from domain.models import Upload
from infra.storage.adapter import Storage
from tests.helpers import Account

MIB = 1024 * 1024


async def sign(client: httpx.AsyncClient, account: Account, **request: Any) -> httpx.Response:
    return await client.post("/files/uploads/sign", json=request, headers=account.headers)


async def signed(client: httpx.AsyncClient, account: Account, **request: Any) -> dict[str, Any]:
    response = await sign(client, account, **request)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def xml_value(body: str, tag: str) -> str:
    match = re.search(rf"<{tag}>([^<]*)</{tag}>", body)
    assert match, body
    return match.group(1)


def upload_id_of(key: str) -> str:
    return key.rsplit("/", 1)[1]


async def complete(client: httpx.AsyncClient, account: Account, key: str) -> httpx.Response:
    return await client.post(
        f"/files/uploads/{upload_id_of(key)}/complete", headers=account.headers
    )


async def listed(client: httpx.AsyncClient, account: Account) -> dict[str, dict[str, Any]]:
    files = (await client.get("/files", headers=account.headers)).json()["files"]
    return {file["path"]: file for file in files}


async def test_put_object_is_a_post_policy_with_the_size_limit(
    client: httpx.AsyncClient, alice: Account
) -> None:
    answer = await signed(client, alice, method="PUT", key="/docs/a.txt", contentType="text/plain")
    key = answer["key"]
    assert key.startswith(f"uploads/{alice.id}/")
    assert set(answer) == {"url", "key", "fields"}  # no nulls for Uppy to trip on
    fields = answer["fields"]
    assert fields["key"] == key
    assert fields["Content-Type"] == "text/plain"
    policy = json.loads(base64.b64decode(fields["policy"]))
    assert ["content-length-range", 1, 64 * MIB] in policy["conditions"]  # the test limit
    async with httpx.AsyncClient() as page:
        # Uppy's postObject: the fields, then the file, as multipart/form-data.
        sent = await page.post(
            answer["url"], data=fields, files={"file": ("a.txt", b"hello uppy", "text/plain")}
        )
    assert sent.status_code == 204, sent.text
    assert (await complete(client, alice, key)).status_code == 200
    file = (await listed(client, alice))["/docs/a.txt"]
    assert (file["size"], file["content_type"]) == (10, "text/plain")


async def test_a_multipart_upload_as_uppy_sends_it(
    client: httpx.AsyncClient, alice: Account, storage: Storage
) -> None:
    created = await signed(client, alice, method="POST", key="/big/b.bin")
    key = created["key"]
    assert "uploads=" in created["url"]
    parts = {1: os.urandom(5 * MIB), 2: os.urandom(MIB)}
    async with httpx.AsyncClient(timeout=60) as page:
        # CreateMultipartUpload: the file's type goes to storage unsigned.
        response = await page.post(created["url"], headers={"Content-Type": "video/x-custom"})
        assert response.status_code == 200, response.text
        upload_id = xml_value(response.text, "UploadId")
        etags = {}
        for number, body in parts.items():
            part = await signed(
                client, alice, method="PUT", key=key, uploadId=upload_id, partNumber=number
            )
            assert set(part) == {"url"}
            sent = await page.put(part["url"], content=body)
            assert sent.status_code == 200, sent.text
            etags[number] = sent.headers["etag"]
        listing = await signed(client, alice, method="GET", key=key, uploadId=upload_id)
        held = await page.get(listing["url"])
        assert held.status_code == 200, held.text
        assert held.text.count("<PartNumber>") == 2
        finish = await signed(client, alice, method="POST", key=key, uploadId=upload_id)
        xml = "<CompleteMultipartUpload>" + "".join(
            f"<Part><PartNumber>{n}</PartNumber><ETag>{etag}</ETag></Part>"
            for n, etag in etags.items()
        )
        done = await page.post(
            finish["url"],
            content=xml + "</CompleteMultipartUpload>",
            headers={"Content-Type": "application/xml"},
        )
    assert done.status_code == 200, done.text
    # Uppy refuses an answer without Location and Key.
    assert xml_value(done.text, "Key") == key
    assert xml_value(done.text, "Location")
    confirmed = await complete(client, alice, key)
    assert confirmed.status_code == 200, confirmed.text
    file = (await listed(client, alice))["/big/b.bin"]
    assert file["size"] == 6 * MIB
    assert file["content_type"] == "video/x-custom"  # as storage kept it
    left = await storage.list_multipart_uploads(f"uploads/{alice.id}/", 10)
    assert left.uploads == ()


async def test_abort_as_uppy_sends_it(
    client: httpx.AsyncClient, alice: Account, storage: Storage
) -> None:
    created = await signed(client, alice, method="POST", key="/gone.bin")
    key = created["key"]
    async with httpx.AsyncClient(timeout=60) as page:
        upload_id = xml_value((await page.post(created["url"])).text, "UploadId")
        part = await signed(client, alice, method="PUT", key=key, uploadId=upload_id, partNumber=1)
        assert (await page.put(part["url"], content=os.urandom(MIB))).status_code == 200
        abort = await signed(client, alice, method="DELETE", key=key, uploadId=upload_id)
        assert (await page.delete(abort["url"])).status_code == 204
    state = await client.get(f"/files/uploads/{upload_id_of(key)}", headers=alice.headers)
    assert state.json()["status"] == "aborted"
    again = await sign(client, alice, method="DELETE", key=key, uploadId=upload_id)
    assert again.status_code == 200  # Uppy retries a failed request: still signed
    closed = await sign(client, alice, method="PUT", key=key, uploadId=upload_id, partNumber=2)
    assert closed.status_code == 404
    left = await storage.list_multipart_uploads(f"uploads/{alice.id}/", 10)
    assert left.uploads == ()


async def test_the_first_upload_id_is_recorded_and_another_refused(
    client: httpx.AsyncClient, alice: Account, app: FastAPI
) -> None:
    created = await signed(client, alice, method="POST", key="/one.bin")
    key = created["key"]
    async with httpx.AsyncClient() as page:
        upload_id = xml_value((await page.post(created["url"])).text, "UploadId")
    await signed(client, alice, method="GET", key=key, uploadId=upload_id)
    async with app.state.sessionmaker() as session:
        recorded = (
            await session.execute(
                select(Upload.multipart_upload_id).where(Upload.id == uuid.UUID(upload_id_of(key)))
            )
        ).scalar_one()
    assert recorded == upload_id
    other = await sign(client, alice, method="PUT", key=key, uploadId="another", partNumber=1)
    assert other.status_code == 409
    assert other.json()["error"] == "upload_id_mismatch"


async def test_only_the_callers_own_pending_uploads_are_signed(
    client: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    created = await signed(client, alice, method="POST", key="/private.bin")
    key = created["key"]
    async with httpx.AsyncClient() as page:
        upload_id = xml_value((await page.post(created["url"])).text, "UploadId")
    for request in (
        {"method": "PUT", "key": key, "uploadId": upload_id, "partNumber": 1},
        {"method": "GET", "key": key, "uploadId": upload_id},
        {"method": "POST", "key": key, "uploadId": upload_id},
        {"method": "DELETE", "key": key, "uploadId": upload_id},
    ):
        stranger = await sign(client, bob, **request)
        assert stranger.status_code == 404, request
        assert stranger.json()["error"] == "upload_not_found"
    for request in (
        {"method": "DELETE", "key": key},  # DeleteObject is not signed
        {"method": "GET", "key": key},  # nor GetObject
        {"method": "PUT", "key": key, "uploadId": upload_id},  # a part without a number
        {"method": "GET", "key": "uploads/elsewhere", "uploadId": upload_id},
    ):
        assert (await sign(client, alice, **request)).status_code == 404, request
    folder = await sign(client, alice, method="PUT", key="/docs/")
    assert folder.status_code == 400
    assert folder.json()["error"] == "invalid_path"
    uuid_key = await sign(client, alice, method="PUT", key="0f2c-uuid-name.txt")
    assert uuid_key.status_code == 400  # Uppy's default key is not a path
    for bad in (
        {"method": "PATCH", "key": "/a"},
        {"method": "PUT"},
        {"method": "PUT", "key": "/a", "x": 1},
    ):
        assert (
            await client.post("/files/uploads/sign", json=bad, headers=alice.headers)
        ).status_code == 422
    anonymous = await client.post("/files/uploads/sign", json={"method": "PUT", "key": "/a"})
    assert anonymous.status_code == 401


async def test_signing_parts_is_cheap_and_never_limited(
    client: httpx.AsyncClient, alice: Account
) -> None:
    created = await signed(client, alice, method="POST", key="/many.bin")
    async with httpx.AsyncClient() as page:
        upload_id = xml_value((await page.post(created["url"])).text, "UploadId")
    # 200 calls: the 12 parts the tests' 64 MiB upload limit leaves room for, signed again
    # and again as retries are (a part past the reservation is refused: test_quota_reservations).
    for call in range(200):
        number = 1 + call % 12
        response = await sign(
            client, alice, method="PUT", key=created["key"], uploadId=upload_id, partNumber=number
        )
        assert response.status_code == 200
