"""State changes are logged with their ids; secrets and presigned URLs never are."""

import logging
import uuid

import httpx
import pytest

from infra.logging import JsonFormatter
from tests.helpers import Account, RunWorker, upload


@pytest.mark.usefixtures("final_deletes")
async def test_state_changes_logged_without_secrets(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture, run_worker: RunWorker
) -> None:
    password = "correct-horse-battery-staple"
    with caplog.at_level(logging.INFO):
        user = await client.post("/user/register", json={"login": "logged", "password": password})
        token = (
            await client.post("/user/auth", json={"login": "logged", "password": password})
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        await client.post("/user/auth", json={"login": "logged", "password": "wrong-password"})
        intent = await client.post("/files/upload", json={"path": "/d.txt"}, headers=headers)
        assert intent.status_code == 201
        account = Account("logged", password, headers, uuid.UUID(user.json()["id"]))
        await upload(client, account, "/p.txt", b"one")
        await upload(client, account, "/p.txt", b"two")
        redirect = await client.get("/files/download", params={"path": "/p.txt"}, headers=headers)
        await client.delete("/files", params={"path": "/p.txt"}, headers=headers)
        await run_worker()
    formatter = JsonFormatter()
    lines = [formatter.format(record) for record in caplog.records]
    text = "\n".join(lines)
    for secret in (
        password,
        token,
        intent.json()["upload"]["url"].split("?", 1)[1],
        redirect.headers["location"].split("?", 1)[1],
        "X-Amz-Signature",
        intent.json()["upload"]["post"]["fields"]["policy"],
    ):
        assert secret not in text
    messages = {record.getMessage() for record in caplog.records}
    for expected in (
        "user registered",
        "authentication failed",
        "upload issued",
        "file stored",
        "file overwritten",
        "file deleted",
        "object deletion recorded",
        "object deleted",
    ):
        assert expected in messages, expected
    registered = next(r for r in caplog.records if r.getMessage() == "user registered")
    assert registered.__dict__["user_id"] == user.json()["id"]
    assert any('"request_id"' in line for line in lines)
