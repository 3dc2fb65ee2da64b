"""Job names and enqueueing helpers shared by the API and the worker."""

import logging

from arq.connections import ArqRedis

from api.cache import REDIS_FAILURES
from api.storage import Storage

log = logging.getLogger(__name__)

CONFIRM_UPLOAD = "confirm_upload"
DELETE_OBJECT = "delete_object"


def confirm_job_id(object_key: str, etag: str | None) -> str:
    """Duplicate notifications of one object version collapse into one job."""
    return f"confirm:{object_key}:{etag or '-'}"


async def schedule_delete(queue: ArqRedis, storage: Storage, object_key: str, reason: str) -> None:
    """Queue the object's deletion; with the queue down, delete it now rather than leak it."""
    try:
        await queue.enqueue_job(DELETE_OBJECT, object_key, _job_id=f"delete:{object_key}")
        log.info("object deletion queued", extra={"object_key": object_key, "reason": reason})
        return
    except REDIS_FAILURES as error:
        log.warning("queue unavailable; deleting inline", extra={"error": repr(error)})
    await storage.delete(object_key)
    log.info("object deleted", extra={"object_key": object_key, "reason": reason})
