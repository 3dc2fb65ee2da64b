"""Latency of each backing service, measured concurrently, each bounded by a timeout."""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from infra.storage.adapter import Storage
from infra.transient import storage_fields

log = logging.getLogger(__name__)


async def _timed(name: str, probe: Callable[[], Awaitable[object]], timeout: float) -> float | None:
    started = time.perf_counter()
    try:
        await asyncio.wait_for(probe(), timeout)
    except Exception as error:  # any failure means "unreachable", which is what ping reports
        extra = {"service": name, "error": repr(error), **storage_fields(error)}
        log.warning("ping failed", extra=extra)
        return None
    return round((time.perf_counter() - started) * 1000, 3)


async def ping(
    engine: AsyncEngine, redis: Redis, storage: Storage, timeout: float
) -> dict[str, float | None]:
    async def database() -> None:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    async def cache() -> None:
        await redis.ping()

    names = ("db", "cache", "storage")
    probes = (database, cache, storage.ping)
    results = await asyncio.gather(
        *(_timed(name, probe, timeout) for name, probe in zip(names, probes, strict=True))
    )
    return dict(zip(names, results, strict=True))
