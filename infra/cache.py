"""Read-through cache for list pages and lookups; it fails open.

Keys embed the user's ``generation`` (a column every write bumps in the same transaction), so a
write invalidates everything cached for that user at once and a missed Redis call can never leave
a stale entry behind. Any Redis failure is a miss plus a warning: PostgreSQL stays the truth.

Because a key's value never changes, each process also keeps the entries it read or wrote in a
small memory of its own, in front of Redis: a hot lookup (a download redirect) then costs no
round trip at all. Memory is bounded in bytes; entries keep Redis' expiry.
"""

import logging
import time
from collections import OrderedDict
from uuid import UUID

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

CACHE_PREFIX = "fs:cache"
REDIS_FAILURES = (RedisError, OSError, TimeoutError)


class _Memory:
    """Least recently used entries up to ``capacity`` bytes of values, each until its expiry."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._size = 0
        self._entries: OrderedDict[str, tuple[bytes, float]] = OrderedDict()

    def get(self, key: str) -> bytes | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        value, expires = entry
        if time.monotonic() >= expires:
            self._drop(key)
            return None
        self._entries.move_to_end(key)
        return value

    def put(self, key: str, value: bytes, ttl_seconds: float) -> None:
        if len(value) > self._capacity:
            return
        if key in self._entries:
            self._drop(key)
        self._entries[key] = (value, time.monotonic() + ttl_seconds)
        self._size += len(value)
        while self._size > self._capacity:
            self._drop(next(iter(self._entries)))

    def _drop(self, key: str) -> None:
        value, _ = self._entries.pop(key)
        self._size -= len(value)


class Cache:
    def __init__(self, redis: Redis, ttl_seconds: int, memory_bytes: int = 0) -> None:
        self._redis = redis
        self._ttl = ttl_seconds
        self._memory = _Memory(memory_bytes)

    @staticmethod
    def key(user_id: UUID, generation: int, name: str) -> str:
        return f"{CACHE_PREFIX}:{user_id}:{generation}:{name}"

    async def get_raw(self, key: str) -> bytes | None:
        remembered = self._memory.get(key)
        if remembered is not None:
            return remembered
        try:
            raw: bytes | None = await self._redis.get(key)
        except REDIS_FAILURES as error:
            log.warning(
                "cache read failed; serving from the database", extra={"error": repr(error)}
            )
            return None
        if raw is not None:
            # Redis' remaining expiry is not read back: a full TTL here outlives it by at most
            # one TTL, harmless for a value that never changes under its key.
            self._memory.put(key, raw, self._ttl)
        return raw

    async def set_raw(self, key: str, value: bytes) -> None:
        self._memory.put(key, value, self._ttl)
        try:
            await self._redis.set(key, value, ex=self._ttl)
        except REDIS_FAILURES as error:
            log.warning("cache write failed", extra={"error": repr(error)})
