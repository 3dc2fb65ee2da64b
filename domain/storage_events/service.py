"""Turn a bucket notification into ``confirm_upload`` jobs."""

import logging
from datetime import UTC, datetime

from arq.connections import ArqRedis

from domain.errors import MalformedBody, QueueUnavailable
from domain.storage_events.parser import MalformedEvent, parse_events
from infra.cache import REDIS_FAILURES
from infra.config import Settings
from infra.jobs import enqueue_confirm
from infra.storage.adapter import is_proxied_key

log = logging.getLogger(__name__)


async def accept(queue: ArqRedis, settings: Settings, body: object) -> int:
    """Enqueue a confirmation per created object; returns how many were enqueued.

    Events for other buckets, prefixes or types are acknowledged and dropped: a storage server
    with a persistent queue would otherwise retry them forever, blocking everything behind. So
    are those of objects the API wrote itself (proxied uploads): their request confirms them.
    """
    try:
        events = parse_events(body, settings.storage.bucket, settings.storage.key_prefix)
    except MalformedEvent as error:
        raise MalformedBody(f"Not a bucket notification: {error}") from None
    received_at = datetime.now(UTC)
    to_confirm = [event for event in events if not is_proxied_key(event.key)]
    try:
        for event in to_confirm:
            await enqueue_confirm(queue, event.key, event.etag, event.event_time or received_at)
    except REDIS_FAILURES as error:
        log.error("queue unreachable; storage will retry", extra={"error": repr(error)})
        raise QueueUnavailable() from None
    if to_confirm:
        log.info(
            "storage events accepted",
            extra={"object_keys": [event.key for event in to_confirm], "count": len(to_confirm)},
        )
    return len(to_confirm)
