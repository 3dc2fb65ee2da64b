"""How many proxied uploads stream at once, per API process and per user.

A proxied upload holds file bytes in memory while it streams: up to P = max(multipart threshold,
part size) being read, plus one part per part in flight (F) on its way to storage. A process
streaming at most N uploads so holds about N × P × (1 + F) bytes for them: 16 × 8 MiB × 2 =
256 MiB with the defaults (``FILESTORE_PROXIED_UPLOADS_PER_PROCESS``,
``FILESTORE_S3_PART_SIZE_BYTES``, ``FILESTORE_S3_PARTS_IN_FLIGHT``), however many clients stall.

The process's count is a plain counter (one event loop per process). The user's count spans
processes: a sorted set in Redis of one entry per upload, scored by the Redis clock when it was
last renewed, renewed every third of ``FILESTORE_PROXIED_UPLOAD_LEASE_SECONDS`` while it
streams. Entries older than a lease do not count and are removed, so a process that dies leaks
its users' slots for one lease at most. With Redis down only the process's limit applies (a
warning is logged), as the cache and the login throttle fail open.
"""

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator

from redis.asyncio import Redis

from domain.errors import ServerBusy, TooManyUploads
from infra.cache import REDIS_FAILURES
from infra.config import Settings

log = logging.getLogger(__name__)

# When a slot frees cannot be known (an upload ends when its client is done); a few seconds
# keeps a refused client from hammering without making it wait long.
RETRY_AFTER_SECONDS = 5

# KEYS[1]: the user's set; ARGV: entry, limit, lease (ms). 1 if the entry was added, else 0.
_ACQUIRE = """
local now = redis.call('TIME')
local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ms - tonumber(ARGV[3]))
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
    return 0
end
redis.call('ZADD', KEYS[1], ms, ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
"""

# KEYS[1]: the user's set; ARGV: entry, lease (ms). Only renews an entry still there.
_RENEW = """
local now = redis.call('TIME')
local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
redis.call('ZADD', KEYS[1], 'XX', ms, ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 0
"""


def user_key(owner_id: uuid.UUID) -> str:
    return f"fs:proxied-uploads:{owner_id}"


class UploadSlots:
    def __init__(self, redis: Redis, settings: Settings) -> None:
        self._redis = redis
        self._per_process = settings.uploads.proxied_uploads_per_process
        self._per_user = settings.uploads.proxied_uploads_per_user
        self._lease_seconds = settings.uploads.proxied_upload_lease_seconds
        self._acquire = redis.register_script(_ACQUIRE)
        self._renew = redis.register_script(_RENEW)
        self.active = 0

    @contextlib.asynccontextmanager
    async def hold(self, owner_id: uuid.UUID) -> AsyncIterator[None]:
        """A slot for one proxied upload of ``owner_id`` while the block runs: 503
        ``server_busy`` when the process streams its limit, 429 ``too_many_uploads`` when
        the user does (both with ``Retry-After``)."""
        if self.active >= self._per_process:
            log.warning("proxied uploads at the process limit", extra={"limit": self._per_process})
            raise ServerBusy(headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
        self.active += 1
        try:
            async with self._user_slot(owner_id):
                yield
        finally:
            self.active -= 1

    @contextlib.asynccontextmanager
    async def _user_slot(self, owner_id: uuid.UUID) -> AsyncIterator[None]:
        key, entry = user_key(owner_id), uuid.uuid4().hex
        lease_ms = self._lease_seconds * 1000
        try:
            added = await self._acquire(keys=[key], args=[entry, self._per_user, lease_ms])
        except REDIS_FAILURES as error:
            log.warning("upload slots unavailable; not limiting", extra={"error": repr(error)})
            added = None
        if added is None:
            yield
            return
        if not added:
            log.info(
                "proxied uploads at the user's limit",
                extra={"owner_id": str(owner_id), "limit": self._per_user},
            )
            raise TooManyUploads(
                f"{self._per_user} uploads of yours are streaming through the API; "
                "retry when one has finished.",
                retry_after=RETRY_AFTER_SECONDS,
            )
        renewing = asyncio.create_task(self._keep_renewing(key, entry, lease_ms))
        try:
            yield
        finally:
            renewing.cancel()
            try:
                await asyncio.shield(self._redis.zrem(key, entry))
            except REDIS_FAILURES as error:
                # The entry stops counting when its lease runs out.
                log.warning("upload slot not released", extra={"error": repr(error)})

    async def _keep_renewing(self, key: str, entry: str, lease_ms: int) -> None:
        while True:
            await asyncio.sleep(self._lease_seconds / 3)
            try:
                await self._renew(keys=[key], args=[entry, lease_ms])
            except REDIS_FAILURES as error:
                log.warning("upload slot not renewed", extra={"error": repr(error)})
