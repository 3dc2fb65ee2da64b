"""Opening an upload: the file row locked (or created) and a pending upload recorded for it."""

import uuid
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from api import metrics
from api.config import Settings
from api.errors import QuotaExceeded, Unauthorized
from api.files.repository import FileRepository
from api.models import File, Upload, UploadKind
from api.storage import Storage


async def open_upload(
    files: FileRepository,
    storage: Storage,
    settings: Settings,
    path: str,
    name: str,
    *,
    content_type: str,
    expires_at: datetime,
    declared_size: int | None = None,
    sha256: str | None = None,
    kind: UploadKind = UploadKind.direct,
) -> tuple[File, Upload, int]:
    """Lock (or create) the file row and record a pending upload for it; returns the room
    left in the quota, counting the bytes the upload would replace. Over quota, the caller's
    rollback takes the upload back; an owner that does not exist is not authenticated."""
    upload_id = uuid.uuid4()
    object_key = storage.object_key(files.owner_id, upload_id, proxied=kind == UploadKind.proxied)
    opened = await files.open_upload(
        path,
        name,
        {
            "id": upload_id,
            "object_key": object_key,
            "kind": kind,
            "declared_size": declared_size,
            "content_type": content_type,
            "sha256": sha256,
            "expires_at": expires_at,
        },
    )
    if opened is None:
        raise Unauthorized()
    file, upload, used_bytes = opened
    room = settings.user_quota_bytes - used_bytes + (file.size or 0)
    if room <= 0 or (declared_size is not None and declared_size > room):
        raise QuotaExceeded.over(room)
    metrics.upload_issued(files.session, kind)
    return file, upload, room


async def open_direct_upload(
    session: AsyncSession,
    storage: Storage,
    settings: Settings,
    owner_id: uuid.UUID,
    target: tuple[str, str, str],
    url_expires_at: datetime,
    *,
    declared_size: int | None = None,
    sha256: str | None = None,
) -> tuple[File, Upload, int]:
    """A direct upload to ``target`` (path, name, content type): the client sends the bytes
    until ``url_expires_at``, and its row stays open a grace period longer for a slow PUT."""
    path, name, content_type = target
    return await open_upload(
        FileRepository(session, owner_id),
        storage,
        settings,
        path,
        name,
        content_type=content_type,
        expires_at=url_expires_at + timedelta(seconds=settings.upload_grace_seconds),
        declared_size=declared_size,
        sha256=sha256,
    )
