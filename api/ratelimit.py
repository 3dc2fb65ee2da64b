"""Failed-login throttling in Redis: fixed windows per login and per client address."""

import logging

from redis.asyncio import Redis

from api.cache import REDIS_FAILURES
from api.config import Settings
from api.errors import TooManyAttempts

log = logging.getLogger(__name__)


class AuthThrottle:
    def __init__(self, redis: Redis, settings: Settings) -> None:
        self._redis = redis
        self._window = settings.auth_failure_window_seconds
        self._limits = {
            "login": settings.auth_max_failures_per_login,
            "addr": settings.auth_max_failures_per_address,
        }

    def _keys(self, login: str, address: str) -> dict[str, str]:
        return {
            "login": f"fs:authfail:login:{login.lower()}",
            "addr": f"fs:authfail:addr:{address}",
        }

    async def check(self, login: str, address: str) -> None:
        """Raise ``TooManyAttempts`` while either counter is at its limit."""
        keys = self._keys(login, address)
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for key in keys.values():
                    pipe.get(key)
                    pipe.ttl(key)
                results = await pipe.execute()
        except REDIS_FAILURES as error:
            log.warning("auth throttle unavailable; not limiting", extra={"error": repr(error)})
            return
        for index, kind in enumerate(keys):
            count, ttl = results[2 * index], results[2 * index + 1]
            if count is not None and int(count) >= self._limits[kind]:
                log.warning("auth throttled", extra={"scope": kind, "login": login})
                raise TooManyAttempts(retry_after=ttl if ttl and ttl > 0 else self._window)

    async def record_failure(self, login: str, address: str) -> None:
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for key in self._keys(login, address).values():
                    pipe.incr(key)
                    pipe.expire(key, self._window, nx=True)
                await pipe.execute()
        except REDIS_FAILURES as error:
            log.warning("auth throttle unavailable", extra={"error": repr(error)})

    async def record_success(self, login: str, address: str) -> None:
        try:
            await self._redis.delete(self._keys(login, address)["login"])
        except REDIS_FAILURES as error:
            log.warning("auth throttle unavailable", extra={"error": repr(error)})
