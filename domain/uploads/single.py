"""Direct uploads: intents with presigned PUT/POST, their state, and confirming one on demand."""

import base64
import logging
import math
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from domain.errors import PayloadTooLarge, UploadNotFound, ValidationFailed
from domain.files.content import guess_content_type
from domain.files.paths import file_path
from domain.files.schemas import FileOut
from domain.models import File, Upload, UploadKind
from domain.uploads.confirmation import confirm_upload
from domain.uploads.pending import open_direct_upload
from domain.uploads.schemas import (
    MAX_SINGLE_PUT_BYTES,
    PendingFile,
    PresignedPostOut,
    UploadIntentIn,
    UploadState,
    UploadTicket,
)
from infra.config import Settings
from infra.logging import redact_url
from infra.storage.adapter import Storage

log = logging.getLogger(__name__)


async def issue_upload(
    session: AsyncSession,
    storage: Storage,
    settings: Settings,
    owner_id: uuid.UUID,
    intent: UploadIntentIn,
) -> PendingFile:
    """Record a pending upload and sign a PUT and a browser POST for it.

    Limits are checked and the bytes reserved before anything is signed; the signatures pin
    the content type, and the declared size and checksum when given, so storage itself refuses
    anything else. The POST policy's size range is the declared size, else the reservation;
    a PUT without a declared size cannot be bounded by storage, and what it writes past its
    reservation is rejected at confirmation. A POST policy cannot pin a checksum, so an intent
    with ``sha256`` gets the PUT alone.
    """
    path, name = file_path(intent.path, intent.name)
    content_type = intent.content_type or guess_content_type(name)
    if intent.size is not None and intent.size > settings.uploads.max_upload_bytes:
        raise PayloadTooLarge.over(settings.uploads.max_upload_bytes)
    if intent.size is not None and intent.size > MAX_SINGLE_PUT_BYTES:
        raise ValidationFailed("size: a single PUT is at most 5 GiB; use a multipart upload")
    url_expires_at = datetime.now(UTC) + timedelta(seconds=settings.uploads.upload_url_ttl_seconds)
    file, upload, reserved = await open_direct_upload(
        session,
        storage,
        settings,
        owner_id,
        (path, name, content_type),
        url_expires_at,
        declared_size=intent.size,
        sha256=intent.sha256,
        reserve=min(settings.uploads.undeclared_upload_reservation_bytes, MAX_SINGLE_PUT_BYTES),
        own_name=intent.name,
    )
    upload_id, object_key = upload.id, upload.object_key
    checksum = base64.b64encode(bytes.fromhex(intent.sha256)).decode() if intent.sha256 else None
    put = storage.presign_put(object_key, content_type, intent.size, checksum)
    post = None
    if checksum is None:
        # A declared size is exact; without one the form may carry what is reserved.
        max_size = min(settings.uploads.max_upload_bytes, reserved, MAX_SINGLE_PUT_BYTES)
        min_size = intent.size or 1
        signed_post = storage.presign_post(object_key, content_type, max_size, min_size)
        post = PresignedPostOut(url=signed_post.url, fields=signed_post.fields)
    log.info(
        "upload issued",
        extra={
            "user_id": str(owner_id),
            "file_id": str(file.id),
            "upload_id": str(upload_id),
            "object_key": object_key,
            "declared_size": intent.size,
            "reserved_bytes": reserved,
            "url": redact_url(put.url),
        },
    )
    ticket = UploadTicket(
        id=upload_id,
        url=put.url,
        headers=put.headers,
        expires_at=url_expires_at,
        post=post,
    )
    return PendingFile(**FileOut.of(file).model_dump(), upload=ticket)


def _state(upload: Upload, file: File | None, settings: Settings) -> UploadState:
    """The stored ``expires_at`` is when reconcile may close the upload; a direct upload's URLs
    expired a grace period before that."""
    url_expiry = upload.expires_at
    if upload.kind == UploadKind.direct:
        url_expiry -= timedelta(seconds=settings.uploads.upload_grace_seconds)
    return UploadState(
        id=upload.id,
        status=upload.status,
        reason=upload.reason,
        created_at=upload.created_at,
        expires_at=url_expiry,
        closes_at=upload.expires_at,
        completed_at=upload.completed_at,
        file=FileOut.of(file) if file is not None and file.object_key is not None else None,
        multipart=upload.multipart_upload_id is not None,
        part_size=upload.part_size,
        part_count=(
            math.ceil(upload.declared_size / upload.part_size)
            if upload.part_size and upload.declared_size
            else None
        ),
    )


async def upload_state(session: AsyncSession, settings: Settings, upload: Upload) -> UploadState:
    file = await session.get(File, upload.file_id) if upload.file_id else None
    return _state(upload, file, settings)


async def complete_upload(
    session: AsyncSession, storage: Storage, settings: Settings, upload: Upload
) -> UploadState:
    """Confirm now instead of waiting for the notification; the state says how it went.

    A rejection is a state, not an exception: it must commit (its object goes to the outbox).
    A proxied upload is confirmed by its own request only: its state is returned as it is.
    """
    result = await confirm_upload(session, storage, settings, upload.object_key)
    if result.upload is None:
        raise UploadNotFound()
    if result.outcome == "not_ours":
        return await upload_state(session, settings, result.upload)
    return _state(result.upload, result.file, settings)
