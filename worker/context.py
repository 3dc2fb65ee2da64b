"""The worker's context: one factory for the arq worker's startup, the one-shot CLI and tests."""

import contextlib
from dataclasses import dataclass
from typing import Any

from arq.connections import ArqRedis

from infra.config import Settings
from infra.db import Database, open_database
from infra.redis import create_redis
from infra.storage.adapter import Storage, open_storage

Context = dict[str, Any]
"""arq's job context: arq's own keys (``redis``, ``job_try``, ...) and ours, ``deps``."""


@dataclass(frozen=True, slots=True)
class Deps:
    """What the jobs use, typed."""

    settings: Settings
    database: Database
    storage: Storage
    redis: ArqRedis


def deps_of(ctx: Context) -> Deps:
    deps = ctx["deps"]
    assert isinstance(deps, Deps), "the worker's startup puts its Deps in the context"
    return deps


async def open_context(
    settings: Settings, stack: contextlib.AsyncExitStack, redis: ArqRedis | None = None
) -> Context:
    """Database, storage and Redis (``redis``, arq's own pool, when given) for the jobs;
    ``stack`` closes what this opened."""
    engine, database = open_database(settings)
    stack.push_async_callback(engine.dispose)
    if redis is None:
        redis = create_redis(settings)
        stack.push_async_callback(redis.aclose)
    storage = await stack.enter_async_context(open_storage(settings))
    return {"deps": Deps(settings, database, storage, redis), "redis": redis}
