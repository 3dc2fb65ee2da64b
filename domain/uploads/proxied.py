"""Proxied uploads: the API streams a multipart form's file to storage and confirms it itself."""

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from domain.errors import (
    AppError,
    EmptyFile,
    InvalidPath,
    MalformedBody,
    MissingPart,
    PayloadTooLarge,
    QuotaExceeded,
    UploadClosed,
    ValidationFailed,
)
from domain.files.content import guess_content_type
from domain.files.paths import file_path
from domain.files.repository import FileRepository, Grant, UploadRepository
from domain.models import File, Upload, UploadKind, UploadStatus
from domain.objects.outbox import Outbox
from domain.uploads.confirmation import Confirmation, confirm_upload
from domain.uploads.form_data import Event, Field, FilePart, PartEnd
from domain.uploads.pending import open_upload
from infra import metrics
from infra.config import Settings
from infra.db import Database
from infra.storage.adapter import LimitExceeded, Storage

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Stored:
    """A proxied upload's file, and whether the path was new (201) or overwritten (200)."""

    file: File
    created: bool


@dataclass(frozen=True, slots=True)
class UploadContext:
    database: Database
    storage: Storage
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


async def _renewing_lease(
    ctx: UploadContext, upload_id: uuid.UUID, chunks: AsyncIterator[bytes]
) -> AsyncIterator[bytes]:
    """Pass ``chunks`` through, renewing the pending upload's lease every third of it. If the
    lease ran out meanwhile (reconcile failed the upload), the stream stops here."""
    lease = ctx.settings.uploads.proxied_upload_lease_seconds
    renew_at = time.monotonic() + lease / 3
    async for chunk in chunks:
        if time.monotonic() >= renew_at:
            renewed = await ctx.database.transaction(
                lambda session: UploadRepository(session).renew_lease(upload_id, lease)
            )
            if not renewed:
                raise UploadClosed("The upload's lease ran out; send it again.")
            renew_at = time.monotonic() + lease / 3
        yield chunk


async def _reserving(
    ctx: UploadContext,
    owner_id: uuid.UUID,
    upload_id: uuid.UUID,
    reserved: int,
    chunks: AsyncIterator[bytes],
) -> AsyncIterator[bytes]:
    """Pass ``chunks`` through, never past the upload's reservation: before a chunk would
    cross it, the reservation grows by at least a part (what the quota has left), or the
    upload stops with 413. Storage never holds more of it than was reserved."""
    step = ctx.settings.storage.part_size_bytes
    sent = 0
    async for chunk in chunks:
        sent += len(chunk)
        if sent > reserved:
            grant = await _reserve_more(ctx, owner_id, upload_id, max(step, sent - reserved))
            reserved = grant.reserved
            if sent > reserved:
                raise QuotaExceeded.over(reserved, freeable=grant.freeable())
        yield chunk


async def _reserve_more(
    ctx: UploadContext, owner_id: uuid.UUID, upload_id: uuid.UUID, wanted: int
) -> Grant:
    """Grow a pending upload's reservation by up to ``wanted``; returns the grant."""

    async def grow(session: AsyncSession) -> Grant:
        upload = await UploadRepository(session).lock(upload_id)  # before its owner
        if upload.status != UploadStatus.pending:
            raise UploadClosed(f"The upload is {upload.status}.")
        files = FileRepository(session, owner_id)
        grant = await files.reserve(upload_id, wanted, ctx.settings.uploads.user_quota_bytes)
        log.info(
            "upload reservation grown",
            extra={"upload_id": str(upload_id), "reserved_bytes": grant.reserved},
        )
        return grant

    return await ctx.database.transaction(grow)


async def _record_multipart(
    ctx: UploadContext, owner_id: uuid.UUID, upload_id: uuid.UUID, multipart_id: str
) -> None:
    """Keep the storage upload id on the row, so that if this process dies, reconcile aborts
    it when the lease runs out instead of the sweep an hour later."""

    async def record(session: AsyncSession) -> None:
        await FileRepository(session, owner_id).record_multipart_id(upload_id, multipart_id)

    await ctx.database.transaction(record)


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
            return _one_path(form_path, query_path), event
    raise MissingPart()


def _one_path(form_path: str | None, query_path: str | None) -> str:
    """The target path, from the form or the query. An empty form field (Swagger UI sends
    one) counts as none; a field and a parameter that disagree are refused, naming both."""
    if form_path and query_path and form_path != query_path:
        raise InvalidPath(
            f"The form field path={form_path!r} and the query parameter path={query_path!r} "
            "disagree; send one of them."
        )
    path = form_path or query_path
    if not path:
        raise InvalidPath(
            "Give 'path' as a query parameter or as a form field before the file part."
        )
    return path


async def upload_proxied(
    ctx: UploadContext,
    owner_id: uuid.UUID,
    events: AsyncIterator[Event],
    query_path: str | None,
    body_length: int | None = None,
) -> Stored:
    """Stream a multipart upload to storage, then confirm it in this request.

    The pending upload row (a lease this request renews) is committed before any byte moves.
    Whatever goes wrong after that, the upload ends ``failed`` and its object goes to the
    outbox; if even that cannot be recorded, the lease runs out and reconcile does it. Nothing
    but this request ever confirms it, so a failed upload never becomes content later.
    The upload reserves the body's length (the file is no longer), or a part when the length
    is unknown, and grows its reservation as it streams past it.
    """
    raw_path, part = await _read_up_to_file(events, query_path)
    path, name = file_path(raw_path, part.filename)
    content_type = part.content_type or guess_content_type(name)
    settings = ctx.settings
    expires_at = datetime.now(UTC) + timedelta(
        seconds=settings.uploads.proxied_upload_lease_seconds
    )

    async def open_pending(session: AsyncSession) -> tuple[File, Upload, int]:
        return await open_upload(
            FileRepository(session, owner_id),
            ctx.storage,
            settings,
            path,
            name,
            content_type=content_type,
            expires_at=expires_at,
            kind=UploadKind.proxied,
            reserve=body_length or settings.storage.part_size_bytes,
            own_name=part.filename,
        )

    opened, upload, reserved = await ctx.database.transaction(open_pending)
    upload_id, object_key = upload.id, upload.object_key
    had_content = opened.object_key is not None

    async def confirm(session: AsyncSession) -> Confirmation:
        return await confirm_upload(session, ctx.storage, settings, object_key, stored=stored)

    async def record_multipart(multipart_id: str) -> None:
        await _record_multipart(ctx, owner_id, upload_id, multipart_id)

    limit = settings.uploads.max_upload_bytes
    file_bytes = _reserving(ctx, owner_id, upload_id, reserved, _file_bytes(events))
    chunks = metrics.count_bytes(_renewing_lease(ctx, upload_id, file_bytes), "in")
    try:
        stored = await ctx.storage.put_stream(
            object_key, chunks, content_type, limit, on_multipart=record_multipart
        )
        if stored.size == 0:
            raise EmptyFile()
        result = await ctx.database.transaction(confirm)
    except BaseException as error:
        landed = await asyncio.shield(_fail(ctx, upload_id, _failure_reason(error)))
        if landed is not None:  # the confirmation's answer was lost: what the path held then
            return Stored(landed, created=not had_content)
        metrics.proxied_upload_failed(error)
        if isinstance(error, LimitExceeded):
            raise PayloadTooLarge.over(limit) from None
        raise
    if result.stored:
        assert result.file is not None
        return Stored(result.file, created=result.replaced_key is None)
    reason = result.upload.reason if result.upload else None
    if result.outcome == "rejected" and result.file is not None:
        # Streaming enforced the size limit; what is left is the quota a concurrent upload took.
        raise QuotaExceeded(reason)
    raise UploadClosed(reason or "The upload was closed while it streamed.")


def _failure_reason(error: BaseException) -> str:
    if isinstance(error, AppError):
        return error.detail
    if isinstance(error, LimitExceeded):
        return "larger than the upload limit"
    return f"the upload was interrupted ({type(error).__name__})"


async def _fail(ctx: UploadContext, upload_id: uuid.UUID, reason: str) -> File | None:
    """Record that the proxied upload failed and queue its object's deletion; returns the file
    instead if the confirmation had landed after all (its commit's answer was lost)."""

    async def record(session: AsyncSession) -> File | None:
        uploads = UploadRepository(session)
        found = await session.get(Upload, upload_id)
        if found is None:
            return None
        files = FileRepository(session, found.owner_id)
        file = await files.lock(found.file_id) if found.file_id else None
        upload = await uploads.lock(upload_id)
        if file is not None and file.object_key == upload.object_key:
            return file if upload.status == UploadStatus.completed else None
        if upload.status == UploadStatus.pending:
            upload.status, upload.reason = UploadStatus.failed, reason
            upload.completed_at = datetime.now(UTC)
            await session.flush()
        await Outbox(session).add(upload.object_key, "proxied upload failed")
        if file is not None:
            await files.delete_if_empty(file.id)
        return None

    try:
        landed = await ctx.database.transaction(record)
    except Exception:
        log.exception("recording a failed upload failed", extra={"upload_id": str(upload_id)})
        return None
    if landed is None:
        log.info("proxied upload failed", extra={"upload_id": str(upload_id), "reason": reason})
    return landed
