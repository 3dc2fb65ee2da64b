"""Rate limits in Redis, fixed windows: login throttling per login and per client address, and
a plain limit of hits per key (an upload link's intents a minute).

Every attempt is counted before its password is checked, and counted and judged in one atomic
Redis step, so concurrent attempts cannot all slip under the limit. A successful login takes
its attempt back (and clears the login's counter): only failures add up. A ``RateLimit`` counts
every hit the same way, and takes none back.
"""

import logging

from redis.asyncio import Redis

from domain.errors import TooManyAttempts
from infra.cache import REDIS_FAILURES
from infra.config import Settings

log = logging.getLogger(__name__)

# KEYS: the login's and the address's counters; ARGV[1]: the window in seconds.
# Returns each counter's value and its TTL, in KEYS order.
_ATTEMPT = """
local result = {}
for _, key in ipairs(KEYS) do
    local count = redis.call('INCR', key)
    redis.call('EXPIRE', key, ARGV[1], 'NX')
    table.insert(result, count)
    table.insert(result, redis.call('TTL', key))
end
return result
"""

# KEYS: the login's and the address's counters. Only decrements a live counter: a DECR on a
# counter that has just expired would leave a negative one with no expiry.
_SUCCEEDED = """
redis.call('DEL', KEYS[1])
if redis.call('EXISTS', KEYS[2]) == 1 then
    redis.call('DECR', KEYS[2])
end
return 0
"""


class AuthThrottle:
    """Logins by default; ``prefix`` keeps the counters of another secret apart (a share's
    password, counted per share and per address: ``login`` is then the share's id)."""

    def __init__(self, redis: Redis, settings: Settings, prefix: str = "fs:authfail") -> None:
        self._prefix = prefix
        self._window = settings.auth.failure_window_seconds
        self._limits = {
            "login": settings.auth.max_failures_per_login,
            "addr": settings.auth.max_failures_per_address,
        }
        self._attempt = redis.register_script(_ATTEMPT)
        self._succeeded = redis.register_script(_SUCCEEDED)

    def _keys(self, login: str, address: str) -> dict[str, str]:
        return {
            "login": f"{self._prefix}:login:{login.lower()}",
            "addr": f"{self._prefix}:addr:{address}",
        }

    async def attempt(self, login: str, address: str) -> None:
        """Count an attempt; raise ``TooManyAttempts`` if it is over either limit.

        Fails open: with Redis down, logins are not limited (a warning is logged).
        """
        keys = self._keys(login, address)
        try:
            results = await self._attempt(keys=list(keys.values()), args=[self._window])
        except REDIS_FAILURES as error:
            log.warning("auth throttle unavailable; not limiting", extra={"error": repr(error)})
            return
        retry_after = 0
        for index, kind in enumerate(keys):
            count, ttl = int(results[2 * index]), int(results[2 * index + 1])
            if count > self._limits[kind]:
                log.warning(
                    "auth throttled", extra={"scope": kind, "login": login, "keys": self._prefix}
                )
                retry_after = max(retry_after, ttl if ttl > 0 else self._window)
        if retry_after:
            raise TooManyAttempts(retry_after=retry_after)

    async def succeeded(self, login: str, address: str) -> None:
        """Forget the login's attempts and take this one back from the address's count."""
        try:
            await self._succeeded(keys=list(self._keys(login, address).values()))
        except REDIS_FAILURES as error:
            log.warning("auth throttle unavailable", extra={"error": repr(error)})


class RateLimit:
    """At most ``limit`` hits per key in each fixed window of ``window_seconds``, counted with
    the throttle's atomic step. Fails open, as the throttle does: with Redis down nothing is
    limited (a warning is logged)."""

    def __init__(self, redis: Redis, prefix: str, limit: int, window_seconds: int) -> None:
        self._prefix = prefix
        self._limit = limit
        self._window = window_seconds
        self._attempt = redis.register_script(_ATTEMPT)

    async def hit(self, key: str) -> int:
        """Count a hit on ``key``: 0 while within the limit, else the seconds until the window
        ends (a ``Retry-After``)."""
        try:
            count, ttl = await self._attempt(keys=[f"{self._prefix}:{key}"], args=[self._window])
        except REDIS_FAILURES as error:
            log.warning("rate limit unavailable; not limiting", extra={"error": repr(error)})
            return 0
        if int(count) <= self._limit:
            return 0
        log.warning("rate limited", extra={"keys": self._prefix, "key": key, "limit": self._limit})
        return int(ttl) if int(ttl) > 0 else self._window
