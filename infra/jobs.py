"""Job names and enqueueing shared by the API and the worker.

Only confirmations travel through the queue, and losing one costs nothing but time: reconcile
HEADs every pending upload. Deletions never do: they are rows of the outbox (``files.outbox``).
"""

from datetime import datetime

from arq.connections import ArqRedis

CONFIRM_UPLOAD = "confirm_upload"
RECONCILE_UPLOADS = "reconcile_uploads"
DRAIN_OUTBOX = "drain_outbox"
SWEEP_BUCKET = "sweep_bucket"
PURGE = "purge"


async def enqueue_confirm(
    queue: ArqRedis, object_key: str, etag: str | None, landed_at: datetime | None = None
) -> None:
    """Queue the object's confirmation. Notifications of one object version (same etag)
    collapse into one job; without an etag every notification is a job of its own. The
    worker keeps no results, so a finished job's id never hides a later version.

    ``landed_at`` (when the object landed, as a POSIX timestamp: the job's optional second
    argument, so jobs queued without it still run) times the confirmation; ``etag`` (the third)
    lets the worker skip a version its file already holds with one lookup."""
    job_id = f"{CONFIRM_UPLOAD}:{object_key}:{etag}" if etag else None
    when = landed_at.timestamp() if landed_at is not None else None
    await queue.enqueue_job(CONFIRM_UPLOAD, object_key, when, etag, _job_id=job_id)
