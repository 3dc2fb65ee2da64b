import time
import uuid
from collections.abc import AsyncIterator

import httpx
import jwt
import pytest

from api.main import create_app
from domain.users.security import TokenReader
from infra.config import Settings
from tests.helpers import make_account


async def test_register_returns_user(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/user/register", json={"login": "ада", "password": "correct horse"}
    )
    assert response.status_code == 201
    body = response.json()
    assert body["login"] == "ада"
    assert set(body) == {"id", "login", "created_at"}


async def test_login_is_unique_regardless_of_case(client: httpx.AsyncClient) -> None:
    first = await client.post("/user/register", json={"login": "Alice", "password": "12345678"})
    assert first.status_code == 201
    again = await client.post("/user/register", json={"login": "alice", "password": "12345678"})
    assert again.status_code == 409
    assert again.json()["error"] == "login_taken"


@pytest.mark.parametrize(
    "body",
    [
        {"login": "ab", "password": "12345678"},
        {"login": "valid_login", "password": "short"},
        {"login": "bad login!", "password": "12345678"},
        {"login": "valid_login"},
        {"login": 5, "password": "12345678"},
        {"login": "valid_login", "password": "12345678", "admin": True},
        [],
    ],
)
async def test_register_rejects_invalid_input(client: httpx.AsyncClient, body: object) -> None:
    response = await client.post("/user/register", json=body)
    assert response.status_code == 422
    assert response.json()["error"] == "validation_error"


async def test_malformed_json_is_400(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/user/register", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json() == {"error": "malformed_json", "detail": "The body is not valid JSON."}


async def test_auth_with_json_and_oauth2_form(client: httpx.AsyncClient) -> None:
    await client.post("/user/register", json={"login": "bob", "password": "hunter2hunter2"})
    as_json = await client.post("/user/auth", json={"login": "BOB", "password": "hunter2hunter2"})
    assert as_json.status_code == 200
    token = as_json.json()
    assert token["token_type"] == "bearer"
    assert token["expires_in"] > 0
    as_form = await client.post(
        "/user/auth",
        data={"username": "bob", "password": "hunter2hunter2", "grant_type": "password"},
    )
    assert as_form.status_code == 200
    listing = await client.get(
        "/files", headers={"Authorization": f"Bearer {as_form.json()['access_token']}"}
    )
    assert listing.status_code == 200
    assert listing.json()["account"] == "bob"


async def test_register_takes_the_same_form_as_auth(client: httpx.AsyncClient) -> None:
    as_form = await client.post(
        "/user/register", data={"username": "dora", "password": "hunter2hunter2"}
    )
    assert as_form.status_code == 201, as_form.text
    assert as_form.json()["login"] == "dora"
    as_multipart = await client.post(
        "/user/register",
        files={"login": (None, "erin"), "password": (None, "hunter2hunter2")},
    )
    assert as_multipart.status_code == 201, as_multipart.text
    short = await client.post("/user/register", data={"username": "finn", "password": "short"})
    assert (short.status_code, short.json()["error"]) == (422, "validation_error")
    taken = await client.post("/user/register", data={"login": "DORA", "password": "x" * 12})
    assert (taken.status_code, taken.json()["error"]) == (409, "login_taken")
    signed_in = await client.post(
        "/user/auth", data={"username": "erin", "password": "hunter2hunter2"}
    )
    assert signed_in.status_code == 200


async def test_wrong_password_and_unknown_login_are_401(client: httpx.AsyncClient) -> None:
    await client.post("/user/register", json={"login": "carol", "password": "12345678"})
    wrong = await client.post("/user/auth", json={"login": "carol", "password": "87654321"})
    unknown = await client.post("/user/auth", json={"login": "nobody", "password": "87654321"})
    for response in (wrong, unknown):
        assert response.status_code == 401
        assert response.json()["error"] == "invalid_credentials"
        assert response.headers["www-authenticate"] == "Bearer"


async def test_auth_shape_errors(client: httpx.AsyncClient) -> None:
    missing = await client.post("/user/auth", json={"login": "x"})
    assert missing.status_code == 422
    garbage = await client.post(
        "/user/auth", content=b"\xff\xfe", headers={"Content-Type": "application/json"}
    )
    assert garbage.status_code == 400


async def test_failed_attempts_are_throttled_per_login(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    await client.post("/user/register", json={"login": "dave", "password": "12345678"})
    for _ in range(settings.auth.max_failures_per_login):
        response = await client.post("/user/auth", json={"login": "dave", "password": "wrongpass"})
        assert response.status_code == 401
    blocked = await client.post("/user/auth", json={"login": "dave", "password": "12345678"})
    assert blocked.status_code == 429
    assert blocked.json()["error"] == "too_many_attempts"
    assert 0 < int(blocked.headers["retry-after"]) <= settings.auth.failure_window_seconds
    other = await client.post("/user/auth", json={"login": "erin", "password": "12345678"})
    assert other.status_code == 401  # another login from the same address is not blocked yet


async def test_many_registrations_from_one_address_are_not_throttled(
    client: httpx.AsyncClient,
) -> None:
    for _ in range(30):
        await make_account(client)


def _forge(settings: Settings, claims: dict[str, object], key: str | None = None) -> str:
    secret = key or settings.auth.jwt_secret.get_secret_value()
    return jwt.encode(claims, secret, algorithm="HS256")


async def test_bad_tokens_are_401(client: httpx.AsyncClient, settings: Settings) -> None:
    account = await make_account(client)
    good = account.headers["Authorization"].removeprefix("Bearer ")
    header, payload, signature = good.split(".")
    now = int(time.time())
    none_token = jwt.encode({"sub": str(account.id), "exp": now + 60}, None, algorithm="none")
    tokens = [
        None,
        "not-a-token",
        f"{header}.{payload}.{signature[:-2]}AA",
        none_token,
        _forge(settings, {"sub": str(account.id), "exp": now - 10}),
        _forge(settings, {"sub": str(account.id), "exp": now + 60}, key="another-secret-" * 3),
        _forge(settings, {"sub": "not-a-uuid", "exp": now + 60}),
        _forge(settings, {"sub": str(account.id)}),
    ]
    for token in tokens:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = await client.get("/files", headers=headers)
        assert response.status_code == 401, token
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.json()["error"] == "not_authenticated"
    assert (await client.get("/files", headers=account.headers)).status_code == 200
    me = await client.get("/user/me", headers=account.headers)
    assert me.json() == {
        "id": str(account.id),
        "login": account.login,
        "created_at": me.json()["created_at"],
        "usage": {
            "files": 0,
            "versions": 0,
            "trash": 0,
            "quota": settings.uploads.user_quota_bytes,
        },
    }


async def test_a_token_of_no_user_is_401_on_every_kind_of_upload(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    """Uploads do not load the user before their own statement: that statement must find out."""
    nobody = _forge(settings, {"sub": str(uuid.uuid4()), "exp": int(time.time()) + 60})
    headers = {"Authorization": f"Bearer {nobody}"}
    intents = [
        {"path": "/a.txt", "size": 3},
        {"path": "/big.bin", "size": 20 * 2**20, "multipart": True},
    ]
    for intent in intents:
        response = await client.post("/files/upload", headers=headers, json=intent)
        assert (response.status_code, response.json()["error"]) == (401, "not_authenticated")
    form = {"data": {"path": "/b.txt"}, "files": {"file": ("b.txt", b"abc")}}
    response = await client.post("/files/upload", headers=headers, **form)  # type: ignore[arg-type]
    assert (response.status_code, response.json()["error"]) == (401, "not_authenticated")
    assert (await client.get("/user/me", headers=headers)).status_code == 401


async def test_failed_attempts_are_throttled_per_address(
    settings: Settings, app: object, client: httpx.AsyncClient
) -> None:
    strict = create_app(settings.with_changes(**{"auth_max_failures_per_address": 3}))
    async with strict.router.lifespan_context(strict):
        transport = httpx.ASGITransport(app=strict, client=("203.0.113.9", 4000))
        async with httpx.AsyncClient(transport=transport, base_url="http://t/api/v1") as http:
            for login in ("a_one", "a_two", "a_three"):
                response = await http.post("/user/auth", json={"login": login, "password": "x"})
                assert response.status_code == 401
            blocked = await http.post("/user/auth", json={"login": "a_four", "password": "x"})
            assert blocked.status_code == 429
            assert int(blocked.headers["retry-after"]) > 0
    other_address = await client.post("/user/auth", json={"login": "a_four", "password": "x"})
    assert other_address.status_code == 401


def test_remembered_token_still_expires(settings: Settings) -> None:
    now = time.time()
    clock = [now]
    reader = TokenReader(settings, capacity=2, clock=lambda: clock[0])
    user_id = uuid.uuid4()
    token = _forge(settings, {"sub": str(user_id), "exp": int(now) + 60})
    assert reader.read(token) == user_id
    assert reader.read(token) == user_id  # served from memory
    clock[0] = now + 61
    assert reader.read(token) is None
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    assert reader.read(tampered) is None
    for _ in range(3):  # the capacity bounds memory
        reader.read(_forge(settings, {"sub": str(uuid.uuid4()), "exp": int(now) + 600}))
    assert len(reader._verified) <= 2


async def test_oversized_bodies_are_413(client: httpx.AsyncClient, settings: Settings) -> None:
    huge = {"login": "x" * settings.requests.max_request_body_bytes, "password": "12345678"}
    for url in ("/user/register", "/user/auth"):
        response = await client.post(url, json=huge)
        assert response.status_code == 413, url
        assert response.json()["error"] == "payload_too_large"

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it streams
        yield b'{"login": "'
        for _ in range(settings.requests.max_request_body_bytes // 65536 + 1):
            yield b"x" * 65536
        yield b'", "password": "12345678"}'

    streamed = await client.post(
        "/user/auth", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert streamed.status_code == 413
    webhook = await client.post(
        "/storage/events",
        content=chunks(),
        headers={
            "Content-Type": "application/json",
            "Authorization": f"Bearer {settings.auth.webhook_token.get_secret_value()}",
        },
    )
    assert webhook.status_code == 413
