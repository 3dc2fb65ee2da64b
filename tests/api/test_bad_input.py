"""Hostile input is a clean 4xx with a stable code, never a 500 or 503, and stores nothing."""

import asyncio
import base64
import json
from collections import Counter
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from api.main import create_app
from domain.errors import InvalidPath
from domain.files.paths import normalize_path
from domain.media_types import is_media_type
from domain.models import Upload, UploadStatus
from infra.config import Settings
from infra.storage.adapter import Storage
from scripts.seaweed import free_port
from tests.helpers import Account, Bucket, make_account, webhook_headers

DEEP = b"[" * 10_000 + b"]" * 10_000
JSON = {"Content-Type": "application/json"}
BOUNDARY = "badinputboundary"


def json_webhook_headers(settings: Settings) -> dict[str, str]:
    return {**JSON, **webhook_headers(settings)}


def assert_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"] == code, response.text


# -- JSON nesting ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "route", ["/user/auth", "/user/register", "/files/upload", "/storage/events"]
)
async def test_deeply_nested_json_is_400(
    client: httpx.AsyncClient, alice: Account, settings: Settings, route: str
) -> None:
    headers = {
        "/files/upload": {**JSON, **alice.headers},
        "/storage/events": json_webhook_headers(settings),
    }
    for body in (DEEP, b'{"login": ' + DEEP + b', "password": "x"}'):
        response = await client.post(route, content=body, headers=headers.get(route, JSON))
        assert_error(response, 400, "malformed_json")
        assert str(settings.requests.max_json_depth) in response.json()["detail"]


async def test_json_at_the_depth_limit_is_parsed(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    depth = settings.requests.max_json_depth
    at_limit = {"login": json.loads("[" * (depth - 1) + "]" * (depth - 1)), "password": "x"}
    response = await client.post("/user/auth", json=at_limit)
    assert_error(response, 422, "validation_error")  # parsed, then refused by the model
    over = {"login": json.loads("[" * depth + "]" * depth), "password": "x"}
    assert_error(await client.post("/user/auth", json=over), 400, "malformed_json")


async def test_brackets_inside_strings_do_not_count(client: httpx.AsyncClient) -> None:
    login = '[{"\\' * 60  # 120 brackets, escaped quotes and backslashes, within the length limit
    response = await client.post("/user/auth", json={"login": login, "password": "x" * 20})
    assert_error(response, 401, "invalid_credentials")


# -- NUL and unpaired surrogates ---------------------------------------------------------------


async def test_nul_in_a_json_login_is_422(client: httpx.AsyncClient, alice: Account) -> None:
    for body in (
        {"login": alice.login + "\x00", "password": alice.password},
        {"login": alice.login, "password": "pass\x00word"},
    ):
        assert_error(await client.post("/user/auth", json=body), 422, "validation_error")
    # Escaped by hand: json.dumps would turn a lone surrogate into exactly this escape too.
    surrogate = b'{"login": "a\\ud800b", "password": "12345678"}'
    for route in ("/user/auth", "/user/register"):
        response = await client.post(route, content=surrogate, headers=JSON)
        assert_error(response, 422, "validation_error")
        assert "login" in response.json()["detail"]
    registered = await client.post("/user/register", json={"login": "n\x00l", "password": "1" * 8})
    assert_error(registered, 422, "validation_error")


async def test_nul_in_an_oauth2_form_login_is_422(
    client: httpx.AsyncClient, alice: Account
) -> None:
    for form in (
        {"username": alice.login + "\x00", "password": alice.password},
        {"username": alice.login, "password": "\x00"},
    ):
        response = await client.post("/user/auth", data=form)
        assert_error(response, 422, "validation_error")
    fine = await client.post(
        "/user/auth", data={"username": alice.login, "password": alice.password}
    )
    assert fine.status_code == 200


async def test_nul_in_any_json_body_is_422(
    client: httpx.AsyncClient, alice: Account, settings: Settings
) -> None:
    intent = await client.post(
        "/files/upload", json={"path": "/a.txt", "name": "x\x00"}, headers=alice.headers
    )
    assert_error(intent, 422, "validation_error")
    event = await client.post(
        "/storage/events",
        content=b'{"Records": [{"s3": {"object": {"key": "uploads/\\u0000"}}}]}',
        headers=json_webhook_headers(settings),
    )
    assert_error(event, 422, "validation_error")
    assert "Records.0.s3.object.key" in event.json()["detail"]


def _cursor(after: object) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": after}).encode()).decode()


@pytest.mark.parametrize(
    "cursor",
    [
        _cursor("/a\x00b"),
        _cursor("\ud800"),
        _cursor(["/a"]),
        base64.urlsafe_b64encode(b"[" * 3_000 + b"]" * 3_000).decode(),
        base64.urlsafe_b64encode(b'{"after": "\xff"}').decode(),
        "not base64 at all!",
    ],
)
async def test_forged_cursors_are_400(
    client: httpx.AsyncClient, alice: Account, cursor: str
) -> None:
    response = await client.get("/files", params={"cursor": cursor}, headers=alice.headers)
    assert_error(response, 400, "invalid_cursor")


def test_paths_refuse_lone_surrogates() -> None:
    for raw in ("/a\ud800", "/\udfff/b.txt", "/a\x00b"):
        with pytest.raises(InvalidPath):
            normalize_path(raw)
    assert normalize_path("/\U0001f600.txt") == "/\U0001f600.txt"


# -- content types ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("text/plain", True),
        ("application/vnd.api+json", True),
        ('text/plain; charset="utf-8"', True),
        ("multipart/form-data; boundary=abc", True),
        ("text/plain;charset=utf-8;format=flowed", True),
        ('text/plain; title="a \\"quoted\\" word"', True),
        ("", False),
        ("text", False),
        ("text/", False),
        ("/plain", False),
        ("text/pl\u0430in", False),  # a Cyrillic a
        ("text/plain; charset=\u00e9", False),
        ("text/plain\x01", False),
        ("text/plain\x7f", False),
        ("text/plain\n", False),
        ("text/plain;", False),
        ("text/plain; charset", False),
        ('text/plain; charset="utf-8', False),
        ("te xt/plain", False),
        ("text /plain", False),
        ("text/ plain", False),
        ("text/plain/x", False),
        ("text/" + "x" * 300, False),
    ],
)
def test_is_media_type(value: str, valid: bool) -> None:
    assert is_media_type(value) is valid


@pytest.mark.parametrize("content_type", ["text/pl\u0430in", "text/plain\x01"])
async def test_intent_content_type_must_be_an_ascii_media_type(
    client: httpx.AsyncClient, alice: Account, content_type: str
) -> None:
    response = await client.post(
        "/files/upload",
        json={"path": "/t.txt", "content_type": content_type},
        headers=alice.headers,
    )
    assert_error(response, 422, "validation_error")
    assert "content_type" in response.json()["detail"]
    assert await _listed(client, alice) == []


async def test_intent_with_parameters_is_accepted(
    client: httpx.AsyncClient, alice: Account
) -> None:
    response = await client.post(
        "/files/upload",
        json={"path": "/t.txt", "content_type": 'text/plain; charset="utf-8"'},
        headers=alice.headers,
    )
    assert response.status_code == 201, response.text
    assert response.json()["upload"]["headers"]["Content-Type"] == 'text/plain; charset="utf-8"'


# -- multipart bodies ------------------------------------------------------------------------


def _part_headers(content_type: bytes = b"text/plain") -> bytes:
    return (
        f"--{BOUNDARY}\r\n".encode()
        + b'Content-Disposition: form-data; name="file"; filename="f.txt"\r\n'
        + b"Content-Type: "
        + content_type
        + b"\r\n\r\n"
    )


def _path_field(path: str) -> bytes:
    return f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="path"\r\n\r\n{path}\r\n'.encode()


async def _post_multipart(
    client: httpx.AsyncClient, account: Account, body: bytes
) -> httpx.Response:
    return await client.post(
        "/files/upload",
        content=body,
        headers={**account.headers, "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
    )


async def _listed(client: httpx.AsyncClient, account: Account) -> list[str]:
    listing = await client.get("/files", headers=account.headers)
    assert listing.status_code == 200
    return [file["path"] for file in listing.json()["files"]]


async def _assert_nothing_stored(
    client: httpx.AsyncClient, app: FastAPI, bucket: Bucket, settings: Settings, account: Account
) -> None:
    assert await _listed(client, account) == []
    assert await bucket.keys(f"{settings.storage.key_prefix}/{account.id}/") == set()
    async with app.state.sessionmaker() as session:
        statuses = (await session.execute(select(Upload.status))).scalars().all()
    assert UploadStatus.pending not in statuses


@pytest.mark.parametrize(
    "content_type", [b"text/pl\x01ain", b"text/pl\xe9in", b"text", b"text/plain; charset="]
)
async def test_part_content_type_must_be_a_media_type(
    client: httpx.AsyncClient,
    alice: Account,
    app: FastAPI,
    storage: Storage,
    settings: Settings,
    content_type: bytes,
    bucket: Bucket,
) -> None:
    body = (
        _path_field("/ct.txt")
        + _part_headers(content_type)
        + b"hello"
        + f"\r\n--{BOUNDARY}--\r\n".encode()
    )
    response = await _post_multipart(client, alice, body)
    assert_error(response, 422, "validation_error")
    assert "Content-Type" in response.json()["detail"]
    await _assert_nothing_stored(client, app, bucket, settings, alice)


@pytest.mark.parametrize(
    "tail",
    [
        b"hello",  # ends inside the file part
        f"hello\r\n--{BOUNDARY}".encode(),  # a boundary, but not the closing one
        f"hello\r\n--{BOUNDARY}\r\n".encode(),  # the file part ended, another part began
        f'hello\r\n--{BOUNDARY}\r\nContent-Disposition: form-data; name="x"\r\n\r\nv'.encode(),
    ],
)
async def test_body_without_its_closing_boundary_is_400(
    client: httpx.AsyncClient,
    alice: Account,
    app: FastAPI,
    storage: Storage,
    settings: Settings,
    tail: bytes,
    bucket: Bucket,
) -> None:
    response = await _post_multipart(
        client, alice, _path_field("/cut.txt") + _part_headers() + tail
    )
    assert_error(response, 400, "malformed_body")
    await _assert_nothing_stored(client, app, bucket, settings, alice)


async def test_two_file_parts_are_400(
    client: httpx.AsyncClient,
    alice: Account,
    app: FastAPI,
    storage: Storage,
    settings: Settings,
    bucket: Bucket,
) -> None:
    body = (
        _path_field("/two.txt")
        + _part_headers()
        + b"first\r\n"
        + _part_headers()
        + b"second"
        + f"\r\n--{BOUNDARY}--\r\n".encode()
    )
    response = await _post_multipart(client, alice, body)
    assert_error(response, 400, "malformed_body")
    await _assert_nothing_stored(client, app, bucket, settings, alice)


async def test_a_well_formed_body_with_an_epilogue_is_stored(
    client: httpx.AsyncClient, alice: Account
) -> None:
    body = (
        _path_field("/ok.txt") + _part_headers() + b"hello" + f"\r\n--{BOUNDARY}--\r\nbye".encode()
    )
    response = await _post_multipart(client, alice, body)
    assert response.status_code == 201, response.text
    assert response.json()["size"] == 5
    assert response.json()["content_type"] == "text/plain"


# -- login throttle --------------------------------------------------------------------------


async def test_concurrent_wrong_passwords_are_throttled_exactly(
    client: httpx.AsyncClient, alice: Account, settings: Settings
) -> None:
    limit = settings.auth.max_failures_per_login
    attempts = 3 * limit
    responses = await asyncio.gather(
        *(
            client.post("/user/auth", json={"login": alice.login, "password": f"wrong-{n}"})
            for n in range(attempts)
        )
    )
    statuses = Counter(response.status_code for response in responses)
    assert statuses == {401: limit, 429: attempts - limit}
    for response in responses:
        if response.status_code == 429:
            assert response.json()["error"] == "too_many_attempts"
            assert 0 < int(response.headers["retry-after"]) <= settings.auth.failure_window_seconds
    right = await client.post("/user/auth", json={"login": alice.login, "password": alice.password})
    assert_error(right, 429, "too_many_attempts")  # blocked until the window ends


async def test_a_successful_login_clears_the_login_counter(
    client: httpx.AsyncClient, alice: Account, settings: Settings
) -> None:
    for _ in range(settings.auth.max_failures_per_login - 1):
        wrong = await client.post("/user/auth", json={"login": alice.login, "password": "nope"})
        assert_error(wrong, 401, "invalid_credentials")
    right = await client.post("/user/auth", json={"login": alice.login, "password": alice.password})
    assert right.status_code == 200
    for _ in range(settings.auth.max_failures_per_login):
        wrong = await client.post("/user/auth", json={"login": alice.login, "password": "nope"})
        assert_error(wrong, 401, "invalid_credentials")


async def test_successful_logins_do_not_count_against_the_address(
    settings: Settings, app: FastAPI, client: httpx.AsyncClient
) -> None:
    account = await make_account(client)
    strict = create_app(settings.with_changes(**{"auth_max_failures_per_address": 3}))
    async with strict.router.lifespan_context(strict):
        transport = httpx.ASGITransport(app=strict, client=("203.0.113.7", 4000))
        async with httpx.AsyncClient(transport=transport, base_url="http://t/api/v1") as http:
            good = {"login": account.login, "password": account.password}
            for _ in range(10):
                assert (await http.post("/user/auth", json=good)).status_code == 200
            for login in ("b_one", "b_two", "b_three"):
                wrong = await http.post("/user/auth", json={"login": login, "password": "x"})
                assert_error(wrong, 401, "invalid_credentials")
            blocked = await http.post("/user/auth", json={"login": "b_four", "password": "x"})
            assert_error(blocked, 429, "too_many_attempts")


@pytest.fixture
async def redisless_client(settings: Settings, app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """An app whose Redis is down (made before the test runs: creating an app sets up logging)."""
    dead = create_app(settings.with_changes(**{"redis_url": f"redis://127.0.0.1:{free_port()}/0"}))
    async with dead.router.lifespan_context(dead):
        transport = httpx.ASGITransport(app=dead)
        async with httpx.AsyncClient(transport=transport, base_url="http://t/api/v1") as http:
            yield http


async def test_throttle_fails_open_without_redis(
    redisless_client: httpx.AsyncClient,
    client: httpx.AsyncClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    account = await make_account(client)
    with caplog.at_level("WARNING"):
        wrong = await redisless_client.post(
            "/user/auth", json={"login": account.login, "password": "x"}
        )
        right = await redisless_client.post(
            "/user/auth", json={"login": account.login, "password": account.password}
        )
    assert_error(wrong, 401, "invalid_credentials")
    assert right.status_code == 200
    assert any("auth throttle unavailable" in record.getMessage() for record in caplog.records)
