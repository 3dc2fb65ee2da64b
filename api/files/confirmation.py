"""Upload confirmation: the one idempotent step that makes an uploaded object a file's content.

The worker (after a bucket notification or reconcile), a proxied upload and the ``complete``
endpoint all run it.
"""

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from arq.connections import ArqRedis
from sqlalchemy.ext.asyncio import AsyncSession

from api.config import Settings
from api.db import after_commit
from api.files.repository import FileRepository, UploadRepository
from api.files.service import guess_content_type
from api.jobs import schedule_delete
from api.models import File, Upload, UploadStatus
from api.storage import ObjectInfo, Storage

log = logging.getLogger(__name__)

Outcome = Literal["confirmed", "already_done", "not_arrived", "rejected", "unknown"]


@dataclass(frozen=True, slots=True)
class Confirmation:
    outcome: Outcome
    upload: Upload | None = None
    file: File | None = None
    replaced_key: str | None = None


def _violation(
    info: ObjectInfo, upload: Upload, used: int, file: File, settings: Settings
) -> str | None:
    if info.size == 0:
        return "empty object"
    if info.size > settings.max_upload_bytes:
        return f"size {info.size} exceeds the upload limit {settings.max_upload_bytes}"
    if upload.declared_size is not None and info.size > upload.declared_size:
        return f"size {info.size} exceeds the declared size {upload.declared_size}"
    if used - (file.size or 0) + info.size > settings.user_quota_bytes:
        return f"size {info.size} exceeds the remaining quota"
    return None


async def confirm_upload(
    session: AsyncSession, storage: Storage, queue: ArqRedis, settings: Settings, object_key: str
) -> Confirmation:
    """Make the uploaded object its file's content. Idempotent; the caller commits.

    The object is HEADed before any row is locked; then upload, file and user rows are locked in
    that order (deletion takes file then user), so concurrent confirmations cannot deadlock.
    Objects to delete (the replaced one, a rejected or late one) are queued after the commit.
    A presigned PUT reused after confirmation changes the object under the file: it is checked
    again like a new upload.
    """
    info = await storage.head(object_key)
    upload = await UploadRepository(session).lock_by_key(object_key)
    if upload is None:
        return Confirmation("unknown")
    files = FileRepository(session, upload.owner_id)

    async def remove(key: str, reason: str) -> None:
        await schedule_delete(queue, storage, key, reason)

    file = await files.lock(upload.file_id) if upload.file_id else None
    if info is None:
        pending = upload.status == UploadStatus.pending
        return Confirmation("not_arrived" if pending else "already_done", upload, file)
    is_current = file is not None and file.object_key == object_key
    if upload.status != UploadStatus.pending:
        if is_current and file is not None and info.etag == file.etag:
            return Confirmation("already_done", upload, file)
        if not is_current:
            late = f"late object of a {upload.status} upload"
            after_commit(session, lambda: remove(object_key, late))
            return Confirmation("already_done", upload, file)
    if file is None:
        upload.status, upload.reason = UploadStatus.rejected, "the file was deleted meanwhile"
        upload.completed_at = datetime.now(UTC)
        after_commit(session, lambda: remove(object_key, "its file was deleted"))
        return Confirmation("rejected", upload)
    used = await files.lock_used_bytes()
    now = datetime.now(UTC)
    ids = {"upload_id": str(upload.id), "file_id": str(file.id), "object_key": object_key}

    reason = _violation(info, upload, used, file, settings)
    if reason is not None:
        upload.status, upload.reason, upload.completed_at = UploadStatus.rejected, reason, now
        if file.object_key == object_key:
            await files.account_change(-(file.size or 0))
            file.object_key, file.size, file.etag = None, None, None
            await session.flush()
        await files.delete_if_empty(file.id)
        after_commit(session, lambda: remove(object_key, "upload rejected"))
        log.warning("upload rejected", extra={**ids, "reason": reason, "size": info.size})
        return Confirmation("rejected", upload, file)

    replaced_key = file.object_key if file.object_key != object_key else None
    size_delta = info.size - (file.size or 0)
    file.object_key, file.size, file.etag = object_key, info.size, info.etag
    file.content_type = upload.content_type or info.content_type or guess_content_type(file.name)
    file.modified_at = now
    upload.status, upload.completed_at = UploadStatus.completed, now
    await files.account_change(size_delta)
    await session.flush()
    if replaced_key is not None:
        after_commit(session, lambda: remove(replaced_key, "replaced by a newer upload"))
    log.info(
        "file overwritten" if replaced_key else "file stored",
        extra={**ids, "size": info.size, "etag": info.etag, "replaced_key": replaced_key},
    )
    return Confirmation("confirmed", upload, file, replaced_key)
