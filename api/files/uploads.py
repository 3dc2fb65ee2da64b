"""Uploads: intents for direct uploads (presigned PUT/POST), proxied multipart uploads, states."""

import asyncio
import base64
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from arq.connections import ArqRedis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.config import Settings
from api.db import run_after_commit
from api.errors import (
    EmptyFile,
    InvalidPath,
    MalformedBody,
    MissingPart,
    PayloadTooLarge,
    QuotaExceeded,
    UploadClosed,
    UploadNotFound,
    ValidationFailed,
)
from api.files.confirmation import confirm_upload
from api.files.multipart import Event, Field, FilePart, PartEnd
from api.files.repository import FileRepository
from api.files.schemas import (
    FileOut,
    PendingFile,
    PresignedPostOut,
    UploadIntentIn,
    UploadState,
    UploadTicket,
)
from api.files.service import guess_content_type
from api.logging import redact_url
from api.models import File, Upload, User
from api.paths import file_path
from api.storage import Storage

log = logging.getLogger(__name__)


async def _open_upload(
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
) -> tuple[File, Upload, int]:
    """Lock (or create) the file row and record a pending upload for it; returns the room
    left in the quota, counting the bytes the upload would replace."""
    file, used_bytes = await files.get_or_create(path, name)
    room = settings.user_quota_bytes - used_bytes + (file.size or 0)
    if room <= 0 or (declared_size is not None and declared_size > room):
        raise QuotaExceeded()
    upload_id = uuid.uuid4()
    upload = await files.add_upload(
        Upload(
            id=upload_id,
            file_id=file.id,
            owner_id=files.owner_id,
            object_key=storage.object_key(files.owner_id, upload_id),
            declared_size=declared_size,
            content_type=content_type,
            sha256=sha256,
            expires_at=expires_at,
        )
    )
    return file, upload, room


@dataclass(frozen=True, slots=True)
class UploadContext:
    sessionmaker: async_sessionmaker[AsyncSession]
    storage: Storage
    queue: ArqRedis
    settings: Settings


async def _file_bytes(events: AsyncIterator[Event]) -> AsyncIterator[bytes]:
    """The file part's bytes, then the rest of the body, read and checked before the stream
    ends: a body cut short or carrying a second file fails the upload before it is stored."""
    async for event in events:
        if isinstance(event, PartEnd):
            break
        if isinstance(event, bytes):
            yield event
    else:
        raise MalformedBody("The body ends inside the file part.")
    async for event in events:
        if isinstance(event, FilePart):
            raise MalformedBody("Send exactly one file part.")


async def _read_up_to_file(
    events: AsyncIterator[Event], query_path: str | None
) -> tuple[str, FilePart]:
    form_path: str | None = None
    async for event in events:
        if isinstance(event, Field):
            if event.name != "path":
                raise ValidationFailed(f"Unknown form field '{event.name}'.")
            form_path = event.value
        elif isinstance(event, FilePart):
            if event.name != "file":
                raise ValidationFailed(f"Unknown file part '{event.name}'; send it as 'file'.")
            raw_path = form_path if form_path is not None else query_path
            if raw_path is None:
                raise InvalidPath(
                    "Give 'path' as a query parameter or as a form field before the file part."
                )
            return raw_path, event
    raise MissingPart()


async def upload_proxied(
    ctx: UploadContext, user: User, events: AsyncIterator[Event], query_path: str | None
) -> File:
    """Stream a multipart upload to storage, then confirm it as the worker would.

    The pending upload row is committed before any byte moves, so a crash mid-way leaves
    something ``reconcile_uploads`` can finish or expire; any failure removes what was written.
    """
    raw_path, part = await _read_up_to_file(events, query_path)
    path, name = file_path(raw_path, part.filename)
    content_type = part.content_type or guess_content_type(name)
    settings = ctx.settings
    expires_at = datetime.now(UTC) + timedelta(seconds=settings.proxied_upload_timeout_seconds)
    async with ctx.sessionmaker() as session:
        file, upload, room = await _open_upload(
            FileRepository(session, user.id),
            ctx.storage,
            settings,
            path,
            name,
            content_type=content_type,
            expires_at=expires_at,
        )
        await session.commit()
    file_id, upload_id, object_key = file.id, upload.id, upload.object_key

    limit = min(settings.max_upload_bytes, room)
    try:
        size = await ctx.storage.put_stream(object_key, _file_bytes(events), content_type, limit)
        if size == 0:
            raise EmptyFile()
    except BaseException as error:
        await asyncio.shield(_discard(ctx, user, upload_id, file_id, object_key))
        if isinstance(error, PayloadTooLarge) and limit < settings.max_upload_bytes:
            raise QuotaExceeded() from None
        raise

    async with ctx.sessionmaker() as session:
        result = await confirm_upload(session, ctx.storage, ctx.queue, settings, object_key)
        await session.commit()
        await run_after_commit(session)
    if result.outcome == "rejected":
        reason = result.upload.reason if result.upload else None
        # Streaming enforced the size limit; what is left is the quota (a concurrent upload
        # took the room) or the file being deleted meanwhile.
        raise QuotaExceeded(reason) if result.file is not None else UploadClosed(reason)
    assert result.file is not None and result.file.object_key is not None
    return result.file


async def _discard(
    ctx: UploadContext, user: User, upload_id: uuid.UUID, file_id: uuid.UUID, object_key: str
) -> None:
    try:
        await ctx.storage.delete(object_key)
        async with ctx.sessionmaker() as session:
            files = FileRepository(session, user.id)
            await files.delete_upload(upload_id)
            await files.delete_if_empty(file_id)
            await session.commit()
        log.info("proxied upload discarded", extra={"upload_id": str(upload_id)})
    except Exception:
        log.exception("proxied upload cleanup failed", extra={"upload_id": str(upload_id)})


async def issue_upload(
    session: AsyncSession, storage: Storage, settings: Settings, user: User, intent: UploadIntentIn
) -> PendingFile:
    """Record a pending upload and sign a PUT and a browser POST for it.

    Limits are checked before anything is signed; the signatures pin the content type, and the
    declared size and checksum when given, so storage itself refuses anything else.
    """
    path, name = file_path(intent.path, intent.name)
    content_type = intent.content_type or guess_content_type(name)
    if intent.size is not None and intent.size > settings.max_upload_bytes:
        raise PayloadTooLarge()
    url_expires_at = datetime.now(UTC) + timedelta(seconds=settings.upload_url_ttl_seconds)
    file, upload, room = await _open_upload(
        FileRepository(session, user.id),
        storage,
        settings,
        path,
        name,
        content_type=content_type,
        expires_at=url_expires_at + timedelta(seconds=settings.upload_grace_seconds),
        declared_size=intent.size,
        sha256=intent.sha256,
    )
    upload_id, object_key = upload.id, upload.object_key
    checksum = base64.b64encode(bytes.fromhex(intent.sha256)).decode() if intent.sha256 else None
    put_url = storage.presign_put(object_key, content_type, intent.size, checksum)
    max_size = intent.size or min(settings.max_upload_bytes, room)
    post = storage.presign_post(object_key, content_type, max_size)
    headers = {"Content-Type": content_type}
    if intent.size is not None:
        headers["Content-Length"] = str(intent.size)
    if checksum is not None:
        headers["x-amz-checksum-sha256"] = checksum
    log.info(
        "upload issued",
        extra={
            "user_id": str(user.id),
            "file_id": str(file.id),
            "upload_id": str(upload_id),
            "object_key": object_key,
            "declared_size": intent.size,
            "url": redact_url(put_url),
        },
    )
    ticket = UploadTicket(
        id=upload_id,
        url=put_url,
        headers=headers,
        expires_at=url_expires_at,
        post=PresignedPostOut(url=post.url, fields=post.fields),
    )
    return PendingFile(**FileOut.of(file).model_dump(), upload=ticket)


def _state(upload: Upload, file: File | None) -> UploadState:
    return UploadState(
        id=upload.id,
        status=upload.status,
        reason=upload.reason,
        created_at=upload.created_at,
        expires_at=upload.expires_at,
        completed_at=upload.completed_at,
        file=FileOut.of(file) if file is not None and file.object_key is not None else None,
    )


async def upload_state(session: AsyncSession, user: User, upload_id: uuid.UUID) -> UploadState:
    upload = await FileRepository(session, user.id).get_upload(upload_id)
    if upload is None:
        raise UploadNotFound()
    file = await session.get(File, upload.file_id) if upload.file_id else None
    return _state(upload, file)


async def complete_upload(
    session: AsyncSession,
    storage: Storage,
    queue: ArqRedis,
    settings: Settings,
    user: User,
    upload_id: uuid.UUID,
) -> UploadState:
    """Confirm now instead of waiting for the notification; the state says how it went.

    A rejection is a state, not an exception: it must commit (and its object be deleted).
    """
    upload = await FileRepository(session, user.id).get_upload(upload_id)
    if upload is None:
        raise UploadNotFound()
    result = await confirm_upload(session, storage, queue, settings, upload.object_key)
    if result.upload is None:
        raise UploadNotFound()
    return _state(result.upload, result.file)
