import contextlib
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis
from sqlalchemy import update

from api.main import create_app
from domain.models import File
from infra.cache import Cache
from infra.config import Settings
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


@contextlib.asynccontextmanager
async def _client_of(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """A client of an app of its own, built from ``settings``."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test/api/v1") as http:
            yield http


@pytest.fixture
async def fragile_client(
    settings: Settings, own_redis: OwnRedis, app: FastAPI
) -> AsyncIterator[httpx.AsyncClient]:
    """On a Redis of its own, and Redis alone: the database takes the reads once it stops."""
    overrides = {"redis_url": own_redis.url, "cache_memory_bytes": 0}
    async with _client_of(settings.with_changes(**overrides)) as http:
        yield http


@pytest.fixture
async def fragile_memory_client(
    settings: Settings, own_redis: OwnRedis, app: FastAPI
) -> AsyncIterator[httpx.AsyncClient]:
    """On a Redis of its own, with the cache's memory in front of it."""
    async with _client_of(settings.with_changes(**{"redis_url": own_redis.url})) as http:
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


async def test_memory_in_front_of_redis_keeps_recent_values_within_its_budget() -> None:
    redis = Redis(port=free_port(), socket_connect_timeout=0.2)  # nobody listens: Redis fails
    cache = Cache(redis, ttl_seconds=60, memory_bytes=10)
    try:
        await cache.set_raw("a", b"12345")
        await cache.set_raw("b", b"6789")
        assert await cache.get_raw("a") == b"12345"  # from memory, with Redis down
        await cache.set_raw("c", b"xy")  # 11 bytes: the least recently read ("b") goes
        assert (await cache.get_raw("b"), await cache.get_raw("c")) == (None, b"xy")
        assert await cache.get_raw("a") == b"12345"
        await cache.set_raw("huge", b"x" * 11)  # larger than the whole budget: not kept
        assert await cache.get_raw("huge") is None
        assert await cache.get_raw("a") == b"12345"
        expired = Cache(redis, ttl_seconds=0, memory_bytes=10)
        await expired.set_raw("a", b"1")
        assert await expired.get_raw("a") is None
    finally:
        await redis.aclose()


async def test_a_hot_lookup_needs_no_redis_round_trip(
    fragile_memory_client: httpx.AsyncClient,
    client: httpx.AsyncClient,
    alice: Account,
    own_redis: OwnRedis,
    app: FastAPI,
) -> None:
    await upload(client, alice, "/m/one.txt", b"1")
    params = {"path": "/m/one.txt"}
    warm = await fragile_memory_client.get("/files/download", params=params, headers=alice.headers)
    assert warm.status_code == 307
    own_redis.stop()
    async with app.state.sessionmaker() as session:  # behind the API's back: memory won't see it
        await session.execute(update(File).values(name="renamed-behind-the-back"))
        await session.commit()
    hot = await fragile_memory_client.get("/files/download", params=params, headers=alice.headers)
    assert hot.status_code == 307
    assert "one.txt" in hot.headers["location"]
    assert "renamed" not in hot.headers["location"]
    # A write bumps the generation: the remembered value is not reached any more.
    assert (await client.delete("/files", params=params, headers=alice.headers)).status_code == 204
    gone = await fragile_memory_client.get("/files/download", params=params, headers=alice.headers)
    assert gone.status_code == 404


async def test_ping_names_dead_storage(settings: Settings, alice: Account, app: FastAPI) -> None:
    dead = create_app(
        settings.with_changes(**{"s3_endpoint_url": f"http://127.0.0.1:{free_port()}"})
    )
    async with dead.router.lifespan_context(dead):
        transport = httpx.ASGITransport(app=dead)
        async with httpx.AsyncClient(transport=transport, base_url="http://test/api/v1") as http:
            response = await http.get("/files/ping", headers=alice.headers)
    assert response.status_code == 503
    assert response.json()["storage"] is None
    assert isinstance(response.json()["cache"], float)
