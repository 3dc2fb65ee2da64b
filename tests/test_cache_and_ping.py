from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import update

from api.config import Settings
from api.main import create_app
from api.models import File
from scripts.seaweed import free_port
from tests.helpers import Account, OwnRedis, upload


async def test_ping_reports_every_service(client: httpx.AsyncClient, alice: Account) -> None:
    response = await client.get("/files/ping", headers=alice.headers)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"db", "cache", "storage"}
    assert all(isinstance(value, float) and value >= 0 for value in body.values())


async def test_ping_requires_a_token(client: httpx.AsyncClient) -> None:
    assert (await client.get("/files/ping")).status_code == 401


async def test_list_is_cached_and_invalidated_by_writes(
    client: httpx.AsyncClient, alice: Account, app: FastAPI
) -> None:
    await upload(client, alice, "/c/one.txt", b"1")
    first = (await client.get("/files", headers=alice.headers)).json()
    # Change the row behind the API's back: a cached page must not notice...
    async with app.state.sessionmaker() as session:
        await session.execute(update(File).values(name="renamed-behind-the-back"))
        await session.commit()
    cached = (await client.get("/files", headers=alice.headers)).json()
    assert cached == first
    # ...and any write through the API must invalidate it.
    await upload(client, alice, "/c/two.txt", b"2")
    fresh = (await client.get("/files", headers=alice.headers)).json()
    assert [f["path"] for f in fresh["files"]] == ["/c/one.txt", "/c/two.txt"]
    assert fresh["files"][0]["name"] == "renamed-behind-the-back"


async def test_deleted_file_is_not_served_from_cache(
    client: httpx.AsyncClient, alice: Account
) -> None:
    await upload(client, alice, "/d.txt", b"1")
    params = {"path": "/d.txt"}
    assert (
        await client.get("/files/download", params=params, headers=alice.headers)
    ).status_code == 307
    assert (await client.delete("/files", params=params, headers=alice.headers)).status_code == 204
    assert (
        await client.get("/files/download", params=params, headers=alice.headers)
    ).status_code == 404


@pytest.fixture
async def fragile_client(
    settings: Settings, own_redis: OwnRedis, app: FastAPI
) -> AsyncIterator[httpx.AsyncClient]:
    fragile = create_app(settings.model_copy(update={"redis_url": own_redis.url}))
    async with fragile.router.lifespan_context(fragile):
        transport = httpx.ASGITransport(app=fragile)
        async with httpx.AsyncClient(transport=transport, base_url="http://test/api/v1") as http:
            yield http


async def test_cache_fails_open_when_redis_stops(
    fragile_client: httpx.AsyncClient,
    client: httpx.AsyncClient,
    alice: Account,
    own_redis: OwnRedis,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await upload(client, alice, "/f/one.txt", b"1")
    warm = await fragile_client.get("/files", headers=alice.headers)
    assert warm.status_code == 200
    own_redis.stop()
    with caplog.at_level("WARNING"):
        listing = await fragile_client.get("/files", headers=alice.headers)
        download = await fragile_client.get(
            "/files/download", params={"path": "/f/one.txt"}, headers=alice.headers
        )
        ping = await fragile_client.get("/files/ping", headers=alice.headers)
        stored = await upload(fragile_client, alice, "/f/two.txt", b"2")
        deleted = await fragile_client.delete(
            "/files", params={"path": "/f/one.txt"}, headers=alice.headers
        )
    assert listing.status_code == 200
    assert [f["path"] for f in listing.json()["files"]] == ["/f/one.txt"]
    assert download.status_code == 307
    assert stored.status_code == 201
    assert deleted.status_code == 204  # the object is deleted inline when the queue is down
    assert ping.status_code == 503
    assert ping.json()["cache"] is None
    assert isinstance(ping.json()["db"], float)
    assert any("serving from the database" in record.getMessage() for record in caplog.records)


async def test_ping_names_dead_storage(settings: Settings, alice: Account, app: FastAPI) -> None:
    dead = create_app(
        settings.model_copy(update={"s3_endpoint_url": f"http://127.0.0.1:{free_port()}"})
    )
    async with dead.router.lifespan_context(dead):
        transport = httpx.ASGITransport(app=dead)
        async with httpx.AsyncClient(transport=transport, base_url="http://test/api/v1") as http:
            response = await http.get("/files/ping", headers=alice.headers)
    assert response.status_code == 503
    assert response.json()["storage"] is None
    assert isinstance(response.json()["cache"], float)
