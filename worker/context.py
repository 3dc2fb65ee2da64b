"""The worker's context: one factory for the arq worker's startup, the one-shot CLI and tests."""

import contextlib
from typing import Any

from arq.connections import ArqRedis

from infra.config import Settings
from infra.db import create_engine, create_sessionmaker
from infra.redis import create_redis
from infra.storage.adapter import open_storage


async def open_context(
    settings: Settings, stack: contextlib.AsyncExitStack, redis: ArqRedis | None = None
) -> dict[str, Any]:
    """Database, storage and Redis (``redis``, arq's own pool, when given) for the jobs;
    ``stack`` closes what this opened."""
    engine = create_engine(settings)
    stack.push_async_callback(engine.dispose)
    if redis is None:
        redis = create_redis(settings)
        stack.push_async_callback(redis.aclose)
    return {
        "settings": settings,
        "sessionmaker": create_sessionmaker(engine),
        "storage": await stack.enter_async_context(open_storage(settings)),
        "redis": redis,
    }
