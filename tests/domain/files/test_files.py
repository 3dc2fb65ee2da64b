import asyncio
import hashlib
import os
import uuid
from collections.abc import AsyncIterator
from urllib.parse import quote

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from domain.models import File, Upload, UploadStatus, User
from infra.config import Settings
from infra.storage.adapter import Storage, open_storage
from tests.helpers import Account, Bucket, RunWorker, make_account, upload


async def _object_keys(app: FastAPI) -> list[str | None]:
    async with app.state.sessionmaker() as session:
        return list((await session.execute(select(File.object_key))).scalars())


async def _count(app: FastAPI, model: type[File] | type[Upload]) -> int:
    async with app.state.sessionmaker() as session:
        return int((await session.execute(select(func.count()).select_from(model))).scalar_one())


async def _unfailed_uploads(app: FastAPI) -> int:
    """Uploads in any state but ``failed``: a refused proxied upload leaves only its record."""
    query = select(func.count()).select_from(Upload).where(Upload.status != UploadStatus.failed)
    async with app.state.sessionmaker() as session:
        return int((await session.execute(query)).scalar_one())


async def test_upload_then_list(client: httpx.AsyncClient, alice: Account) -> None:
    response = await upload(client, alice, "/docs/a.txt", b"hello", "ignored.txt", "text/plain")
    assert response.status_code == 201, response.text
    stored = response.json()
    assert stored["status"] == "ready"
    assert stored["path"] == "/docs/a.txt"
    assert stored["name"] == "a.txt"
    assert stored["size"] == 5
    assert stored["content_type"] == "text/plain"
    assert stored["etag"] == hashlib.md5(b"hello").hexdigest()
    listing = await client.get("/files", headers=alice.headers)
    assert listing.status_code == 200
    body = listing.json()
    assert body["account"] == alice.login
    assert body["next_cursor"] is None
    [entry] = body["files"]
    assert {"id", "name", "created_ad", "path", "size"} <= entry.keys()
    assert entry["id"] == stored["id"]


async def test_folder_path_keeps_the_file_name(client: httpx.AsyncClient, alice: Account) -> None:
    response = await upload(client, alice, "/reports/", b"data", "отчёт 2024.txt")
    assert response.status_code == 201
    assert response.json()["path"] == "/reports/отчёт 2024.txt"
    assert response.json()["name"] == "отчёт 2024.txt"


async def test_path_as_query_parameter(client: httpx.AsyncClient, alice: Account) -> None:
    response = await client.post(
        "/files/upload",
        params={"path": "/q/"},
        headers=alice.headers,
        files={"file": ("x.bin", b"123")},
    )
    assert response.status_code == 201
    assert response.json()["path"] == "/q/x.bin"


@pytest.mark.usefixtures("final_deletes")
async def test_overwrite_keeps_id_and_deletes_replaced_object(
    client: httpx.AsyncClient, alice: Account, app: FastAPI, storage: Storage, run_worker: RunWorker
) -> None:
    created = await upload(client, alice, "/a.txt", b"version one")
    assert created.status_code == 201  # a new file
    first = created.json()
    [old_key] = await _object_keys(app)
    assert old_key is not None
    overwritten = await upload(client, alice, "/a.txt", b"version two!")
    assert overwritten.status_code == 200  # an overwrite
    second = overwritten.json()
    assert second["id"] == first["id"]
    assert second["size"] == 12
    [new_key] = await _object_keys(app)
    assert new_key is not None
    assert new_key != old_key
    await run_worker()
    assert await storage.head(old_key) is None
    assert await storage.head(new_key) is not None
    listing = (await client.get("/files", headers=alice.headers)).json()["files"]
    assert [entry["size"] for entry in listing] == [12]
    async with app.state.sessionmaker() as session:
        user = await session.get(User, alice.id)
        assert user is not None
        assert user.used_bytes == 12


async def test_other_users_files_are_404_by_path_and_id(
    client: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    file_id = (await upload(client, alice, "/secret.txt", b"mine")).json()["id"]
    for reference in ("/secret.txt", file_id):
        for method in ("GET", "DELETE"):
            url = "/files/download" if method == "GET" else "/files"
            response = await client.request(
                method, url, params={"path": reference}, headers=bob.headers
            )
            assert response.status_code == 404, (method, reference)
            assert response.json()["error"] == "file_not_found"
    assert (await client.get("/files", headers=bob.headers)).json()["files"] == []
    same_path = await upload(client, bob, "/secret.txt", b"bob's")
    assert same_path.json()["id"] != file_id


async def test_listing_prefix_and_pagination(client: httpx.AsyncClient, alice: Account) -> None:
    paths = ["/a/1", "/a/2", "/a/3", "/a/b/4", "/a_b/5", "/a%/6", "/z"]
    for path in paths:
        assert (await upload(client, alice, path, b"x")).status_code == 201
    folder = await client.get("/files", params={"path": "/a"}, headers=alice.headers)
    assert [f["path"] for f in folder.json()["files"]] == ["/a/1", "/a/2", "/a/3", "/a/b/4"]
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, str | int] = {"limit": 3}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get("/files", params=params, headers=alice.headers)).json()
        seen += [f["path"] for f in page["files"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(paths)


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"limit": 0}, "validation_error"),
        ({"limit": 1001}, "validation_error"),
        ({"limit": "x"}, "validation_error"),
        ({"cursor": "!!!"}, "invalid_cursor"),
        ({"cursor": "eyJ4IjoxfQ=="}, "invalid_cursor"),
        ({"path": "relative"}, "invalid_path"),
        ({"path": "/a/../b"}, "invalid_path"),
    ],
)
async def test_listing_bad_input(
    client: httpx.AsyncClient, alice: Account, params: dict[str, object], code: str
) -> None:
    response = await client.get("/files", params=params, headers=alice.headers)  # type: ignore[arg-type]
    assert response.status_code == (422 if code == "validation_error" else 400)
    assert response.json()["error"] == code


@pytest.mark.parametrize(
    "path",
    ["relative.txt", "/a/../b.txt", "/./b.txt", "/a\x00b", "/a\x07b", "/" + "x" * 256, "/a" * 600],
)
async def test_bad_paths_are_400(client: httpx.AsyncClient, alice: Account, path: str) -> None:
    response = await upload(client, alice, path, b"x")
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_path"


async def test_paths_are_normalised(client: httpx.AsyncClient, alice: Account) -> None:
    decomposed = "/cafe\u0301//x.txt"
    response = await upload(client, alice, decomposed, b"x")
    assert response.json()["path"] == "/caf\u00e9/x.txt"
    found = await client.get(
        "/files/download", params={"path": "/café/x.txt", "proxy": "true"}, headers=alice.headers
    )
    assert found.status_code == 200


async def test_multipart_bad_input(client: httpx.AsyncClient, alice: Account, app: FastAPI) -> None:
    empty = await upload(client, alice, "/empty.txt", b"")
    assert empty.status_code == 400
    assert empty.json()["error"] == "empty_file"
    no_file = await client.post("/files/upload", headers=alice.headers, data={"path": "/x"})
    assert no_file.status_code == 400
    assert no_file.json()["error"] == "missing_part"
    unknown = await client.post(
        "/files/upload",
        headers=alice.headers,
        data={"path": "/x", "colour": "red"},
        files={"file": ("x", b"1")},
    )
    assert unknown.status_code == 422
    wrong_part = await client.post(
        "/files/upload", headers=alice.headers, data={"path": "/x"}, files={"doc": ("x", b"1")}
    )
    assert wrong_part.status_code == 422
    no_path = await client.post("/files/upload", headers=alice.headers, files={"file": ("x", b"1")})
    assert no_path.status_code == 400
    assert no_path.json()["error"] == "invalid_path"
    not_multipart = await client.post("/files/upload", headers=alice.headers, content=b"raw")
    assert not_multipart.status_code == 400
    assert not_multipart.json()["error"] == "malformed_body"
    garbage = await client.post(
        "/files/upload",
        headers={**alice.headers, "Content-Type": "multipart/form-data; boundary=xyz"},
        content=b"--xyz\r\nnonsense",
    )
    assert garbage.status_code == 400
    assert garbage.json()["error"] == "malformed_body"
    assert await _count(app, File) == 0
    assert await _unfailed_uploads(app) == 0


async def test_over_the_limit_is_413_and_leaves_nothing(
    client: httpx.AsyncClient,
    alice: Account,
    app: FastAPI,
    settings: Settings,
    storage: Storage,
    bucket: Bucket,
) -> None:
    too_big = os.urandom(settings.uploads.max_upload_bytes + 1)
    response = await upload(client, alice, "/big.bin", too_big)
    assert response.status_code == 413
    assert response.json()["error"] == "payload_too_large"
    assert await _count(app, File) == 0
    assert await _unfailed_uploads(app) == 0
    assert await bucket.keys(f"uploads/{alice.id}/") == set()
    assert await bucket.multipart_uploads(f"uploads/{alice.id}/") == set()


async def test_over_the_limit_overwrite_keeps_the_old_content(
    client: httpx.AsyncClient, alice: Account, settings: Settings
) -> None:
    await upload(client, alice, "/keep.bin", b"old")
    response = await upload(
        client, alice, "/keep.bin", os.urandom(settings.uploads.max_upload_bytes + 10)
    )
    assert response.status_code == 413
    kept = await client.get(
        "/files/download", params={"path": "/keep.bin", "proxy": "true"}, headers=alice.headers
    )
    assert kept.content == b"old"


async def test_quota_is_enforced(
    client: httpx.AsyncClient, app: FastAPI, settings: Settings, alice: Account
) -> None:
    async with app.state.sessionmaker() as session:
        user = await session.get(User, alice.id)
        assert user is not None
        user.used_bytes = settings.uploads.user_quota_bytes - 10
        await session.commit()
    response = await upload(client, alice, "/q.bin", b"x" * 11)
    assert response.status_code == 413
    assert response.json()["error"] == "quota_exceeded"
    assert (await upload(client, alice, "/q.bin", b"x" * 10)).status_code == 201


async def test_large_round_trip_through_the_proxy(
    client: httpx.AsyncClient, alice: Account, settings: Settings
) -> None:
    content = os.urandom(20 * 1024 * 1024 + 123)
    assert len(content) > settings.storage.multipart_threshold_bytes  # exercises S3 multipart
    stored = await upload(client, alice, "/big/blob.bin", content)
    assert stored.status_code == 201, stored.text
    assert stored.json()["size"] == len(content)
    assert stored.json()["etag"].endswith("-3")
    fetched = await client.get(
        "/files/download", params={"path": "/big/blob.bin", "proxy": "true"}, headers=alice.headers
    )
    assert fetched.status_code == 200
    assert hashlib.sha256(fetched.content).digest() == hashlib.sha256(content).digest()


async def test_download_redirects_to_a_presigned_url(
    client: httpx.AsyncClient, alice: Account
) -> None:
    name = "отчёт 2024.txt"
    stored = (await upload(client, alice, "/r/", "привет".encode(), name, "text/plain")).json()
    for reference in (stored["path"], stored["id"]):
        response = await client.get(
            "/files/download", params={"path": reference}, headers=alice.headers
        )
        assert response.status_code == 307
        url = response.headers["location"]
        async with httpx.AsyncClient() as plain:
            fetched = await plain.get(url)
        assert fetched.status_code == 200
        assert fetched.content == "привет".encode()
        disposition = fetched.headers["content-disposition"]
        assert f"filename*=UTF-8''{quote(name)}" in disposition
        assert fetched.headers["content-type"].startswith("text/plain")


async def test_expired_presigned_url_is_refused(
    client: httpx.AsyncClient, alice: Account, settings: Settings
) -> None:
    await upload(client, alice, "/short.txt", b"short-lived")
    short = settings.with_changes(**{"download_url_ttl_seconds": 1})
    async with open_storage(short) as storage, httpx.AsyncClient() as plain:
        key = (await _keys_for(client, alice))[0]
        url = storage.presign_get(key, "attachment", None)
        assert (await plain.get(url)).status_code == 200
        await asyncio.sleep(2.2)
        expired = await plain.get(url)
        assert expired.status_code == 403
        assert b"expired" in expired.content.lower()


async def _keys_for(client: httpx.AsyncClient, account: Account) -> list[str]:
    response = await client.get(
        "/files/download", params={"path": "/short.txt"}, headers=account.headers
    )
    location = response.headers["location"]
    return [location.split("?", 1)[0].split("/", 4)[4]]


async def test_proxy_download_range_and_conditionals(
    client: httpx.AsyncClient, alice: Account
) -> None:
    content = bytes(range(256)) * 4
    etag = (await upload(client, alice, "/r.bin", content)).json()["etag"]
    params = {"path": "/r.bin", "proxy": "true"}
    full = await client.get("/files/download", params=params, headers=alice.headers)
    assert full.status_code == 200
    assert full.headers["etag"] == f'"{etag}"'
    assert full.headers["accept-ranges"] == "bytes"
    assert full.headers["content-length"] == str(len(content))
    part = await client.get(
        "/files/download", params=params, headers={**alice.headers, "Range": "bytes=10-19"}
    )
    assert part.status_code == 206
    assert part.content == content[10:20]
    assert part.headers["content-range"] == f"bytes 10-19/{len(content)}"
    suffix = await client.get(
        "/files/download", params=params, headers={**alice.headers, "Range": "bytes=-5"}
    )
    assert suffix.content == content[-5:]
    outside = await client.get(
        "/files/download", params=params, headers={**alice.headers, "Range": "bytes=5000-"}
    )
    assert outside.status_code == 416
    assert outside.headers["content-range"] == f"bytes */{len(content)}"
    nonsense = await client.get(
        "/files/download", params=params, headers={**alice.headers, "Range": "lines=1-2"}
    )
    assert nonsense.status_code == 200
    cached = await client.get(
        "/files/download", params=params, headers={**alice.headers, "If-None-Match": f'"{etag}"'}
    )
    assert cached.status_code == 304
    assert cached.content == b""
    since = await client.get(
        "/files/download",
        params=params,
        headers={**alice.headers, "If-Modified-Since": full.headers["last-modified"]},
    )
    assert since.status_code == 304


@pytest.mark.usefixtures("final_deletes")
async def test_delete_by_path_and_id(
    client: httpx.AsyncClient, alice: Account, app: FastAPI, storage: Storage, run_worker: RunWorker
) -> None:
    one = (await upload(client, alice, "/one", b"1")).json()
    await upload(client, alice, "/two", b"22")
    keys = await _object_keys(app)
    assert (
        await client.delete("/files", params={"path": one["id"]}, headers=alice.headers)
    ).status_code == 204
    assert (
        await client.delete("/files", params={"path": "/two"}, headers=alice.headers)
    ).status_code == 204
    assert (
        await client.delete("/files", params={"path": "/two"}, headers=alice.headers)
    ).status_code == 404
    assert (await client.get("/files", headers=alice.headers)).json()["files"] == []
    await run_worker()
    for key in keys:
        assert key is not None
        assert await storage.head(key) is None
    async with app.state.sessionmaker() as session:
        user = await session.get(User, alice.id)
        assert user is not None
        assert user.used_bytes == 0


@pytest.mark.parametrize(
    ("reference", "status", "code"),
    [
        ("not-a-uuid", 400, "invalid_path"),
        ("12345", 400, "invalid_path"),
        ("", 400, "invalid_path"),
        ("/", 404, "file_not_found"),
    ],
)
async def test_bad_references(
    client: httpx.AsyncClient, alice: Account, reference: str, status: int, code: str
) -> None:
    response = await client.get(
        "/files/download", params={"path": reference}, headers=alice.headers
    )
    assert (response.status_code, response.json()["error"]) == (status, code)


async def test_unknown_id_is_404(client: httpx.AsyncClient, alice: Account) -> None:
    response = await client.get(
        "/files/download", params={"path": str(uuid.uuid4())}, headers=alice.headers
    )
    assert response.status_code == 404


async def test_login_names_the_account(client: httpx.AsyncClient) -> None:
    account = await make_account(client, "Ünïcödé_user")
    assert (await client.get("/files", headers=account.headers)).json()["account"] == "Ünïcödé_user"


async def test_chunked_upload_without_content_length(
    client: httpx.AsyncClient, alice: Account
) -> None:
    boundary = "chunkedboundary"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="path"\r\n\r\n/chunked.bin\r\n',
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="c.bin"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n",
    ]

    async def body() -> AsyncIterator[bytes]:
        for part in parts:
            yield part.encode()
        for _ in range(4):
            yield b"x" * 1000
        yield f"\r\n--{boundary}--\r\n".encode()

    response = await client.post(
        "/files/upload",
        content=body(),
        headers={**alice.headers, "Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert response.status_code == 201, response.text
    assert response.json()["size"] == 4000


async def test_client_disconnect_mid_upload_leaves_nothing(
    app: FastAPI,
    alice: Account,
    storage: Storage,
    settings: Settings,
    bucket: Bucket,
) -> None:
    """The client hangs up after 12 MiB of a multipart upload (past the multipart threshold)."""
    boundary = "cutboundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="path"\r\n\r\n/cut.bin\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="cut.bin"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    chunk = os.urandom(1024 * 1024)
    messages = [head, *[chunk] * 12]
    assert 12 * len(chunk) > settings.storage.multipart_threshold_bytes
    sent: list[dict[str, object]] = []

    async def receive() -> dict[str, object]:
        if messages:
            return {"type": "http.request", "body": messages.pop(0), "more_body": True}
        return {"type": "http.disconnect"}

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    headers = [
        (b"authorization", alice.headers["Authorization"].encode()),
        (b"content-type", f"multipart/form-data; boundary={boundary}".encode()),
        (b"content-length", str(64 * 1024 * 1024).encode()),
    ]
    scope = _upload_scope(headers)
    await app(scope, receive, send)  # type: ignore[arg-type]
    assert sent[0]["status"] == 400
    assert await _count(app, File) == 0
    assert await _unfailed_uploads(app) == 0
    assert await bucket.keys(f"uploads/{alice.id}/") == set()
    assert await bucket.multipart_uploads(f"uploads/{alice.id}/") == set()


def _upload_scope(headers: list[tuple[bytes, bytes]]) -> dict[str, object]:
    """An ASGI scope for POST /files/upload with exactly these headers (and a host)."""
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/api/v1/files/upload",
        "raw_path": b"/api/v1/files/upload",
        "query_string": b"path=/x.bin",
        "root_path": "",
        "headers": [(b"host", b"test"), *headers],
        "client": ("127.0.0.1", 5000),
        "server": ("test", 80),
        "state": {},
    }


async def test_body_without_length_or_chunking_is_411(app: FastAPI, alice: Account) -> None:
    sent: list[dict[str, object]] = []

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    headers = [
        (b"authorization", alice.headers["Authorization"].encode()),
        (b"content-type", b"multipart/form-data; boundary=x"),
    ]
    await app(_upload_scope(headers), receive, send)  # type: ignore[arg-type]
    assert sent[0]["status"] == 411
    assert b"length_required" in sent[1]["body"]  # type: ignore[operator]
