"""Read-through cache for list pages and lookups; it fails open.

Keys embed the user's ``generation`` (a column every write bumps in the same transaction), so a
write invalidates everything cached for that user at once and a missed Redis call can never leave
a stale entry behind. Any Redis failure is a miss plus a warning: PostgreSQL stays the truth.
"""

import json
import logging
from typing import Any
from uuid import UUID

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

CACHE_PREFIX = "fs:cache"
REDIS_FAILURES = (RedisError, OSError, TimeoutError)


class Cache:
    def __init__(self, redis: Redis, ttl_seconds: int) -> None:
        self._redis = redis
        self._ttl = ttl_seconds

    @staticmethod
    def key(user_id: UUID, generation: int, name: str) -> str:
        return f"{CACHE_PREFIX}:{user_id}:{generation}:{name}"

    async def get_raw(self, key: str) -> bytes | None:
        try:
            raw: bytes | None = await self._redis.get(key)
        except REDIS_FAILURES as error:
            log.warning(
                "cache read failed; serving from the database", extra={"error": repr(error)}
            )
            return None
        return raw

    async def set_raw(self, key: str, value: bytes) -> None:
        try:
            await self._redis.set(key, value, ex=self._ttl)
        except REDIS_FAILURES as error:
            log.warning("cache write failed", extra={"error": repr(error)})

    async def get(self, key: str) -> Any | None:
        raw = await self.get_raw(key)
        return None if raw is None else json.loads(raw)

    async def set(self, key: str, value: Any) -> None:
        await self.set_raw(key, json.dumps(value, separators=(",", ":")).encode())
