"""Contract defects a new user met: each answer says what is wrong and names the limit."""

from datetime import datetime, timedelta

import httpx
from fastapi import FastAPI
from sqlalchemy import update

from domain.models import User
from infra.config import Settings
from tests.helpers import Account


async def form_upload(
    client: httpx.AsyncClient, account: Account, form_path: str | None, query_path: str | None
) -> httpx.Response:
    data = {"path": form_path} if form_path is not None else {}
    params = {"path": query_path} if query_path is not None else {}
    return await client.post(
        "/files/upload",
        headers=account.headers,
        params=params,
        data=data,
        files={"file": ("f.txt", b"content")},
    )


async def test_an_empty_form_path_leaves_the_query_path(
    client: httpx.AsyncClient, alice: Account
) -> None:
    """Swagger UI sends the empty ``path`` field it shows next to the query parameter."""
    response = await form_upload(client, alice, "", "/from-query.txt")
    assert response.status_code == 201, response.text
    assert response.json()["path"] == "/from-query.txt"


async def test_form_and_query_paths_that_disagree_are_refused(
    client: httpx.AsyncClient, alice: Account
) -> None:
    response = await form_upload(client, alice, "/form.txt", "/query.txt")
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "invalid_path"
    assert "/form.txt" in body["detail"]
    assert "/query.txt" in body["detail"]
    same = await form_upload(client, alice, "/same.txt", "/same.txt")
    assert same.status_code == 201


async def test_a_413_names_the_limit(
    client: httpx.AsyncClient, alice: Account, settings: Settings, app: FastAPI
) -> None:
    limit = settings.uploads.max_upload_bytes
    too_big = await client.post(
        "/files/upload", json={"path": "/big", "size": limit + 1}, headers=alice.headers
    )
    assert too_big.status_code == 413
    assert str(limit) in too_big.json()["detail"]
    async with app.state.sessionmaker() as session:
        await session.execute(
            update(User).values(used_bytes=settings.uploads.user_quota_bytes - 100)
        )
        await session.commit()
    over_quota = await client.post(
        "/files/upload", json={"path": "/q", "size": 101}, headers=alice.headers
    )
    assert over_quota.status_code == 413
    assert over_quota.json()["error"] == "quota_exceeded"
    assert "100 bytes" in over_quota.json()["detail"]


async def test_json_sent_as_a_form_login_says_so(client: httpx.AsyncClient, alice: Account) -> None:
    """``curl -d '{...}'`` sends JSON labelled as a form: the answer names the content type."""
    body = f'{{"login": "{alice.login}", "password": "{alice.password}"}}'
    response = await client.post(
        "/user/auth",
        content=body,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 422
    assert "Content-Type" in response.json()["detail"]


async def test_me_and_healthz_are_documented(client: httpx.AsyncClient) -> None:
    paths = (await client.get("http://test/openapi.json")).json()["paths"]
    assert "get" in paths["/healthz"]
    assert "get" in paths["/api/v1/user/me"]


async def test_a_pending_complete_says_when_to_retry_and_times_are_named_apart(
    client: httpx.AsyncClient, alice: Account, settings: Settings
) -> None:
    ticket = (
        await client.post("/files/upload", json={"path": "/later.txt"}, headers=alice.headers)
    ).json()["upload"]
    early = await client.post(f"/files/uploads/{ticket['id']}/complete", headers=alice.headers)
    assert early.status_code == 202
    assert early.headers["Retry-After"] == "1"
    state = early.json()
    assert datetime.fromisoformat(state["expires_at"]) == datetime.fromisoformat(
        ticket["expires_at"]
    )
    grace = datetime.fromisoformat(state["closes_at"]) - datetime.fromisoformat(state["expires_at"])
    assert grace == timedelta(seconds=settings.uploads.upload_grace_seconds)
