"""Uppy 6's ``signRequest`` contract (DESIGN §10): the page talks to storage, the API signs.

``@uppy/aws-s3`` 6 sends S3 requests itself and asks the app to sign each one, with
``{method, key, uploadId?, partNumber?, contentType?}``. What it really sends (its S3mini
client) shapes the rules:

- PutObject (``PUT``, no ``uploadId``) and CreateMultipartUpload (``POST``, no ``uploadId``)
  start a file: ``key`` is the target path (the page's ``generateObjectKey``), a pending upload
  is opened for it and the answer names our opaque ``key``, which Uppy uses from then on.
  PutObject gets a POST policy (``fields``), which carries the size limit the PUT could not
  (no request carries the file's size); CreateMultipartUpload is signed for ``host`` alone,
  since Uppy sends the file's type as an unsigned ``Content-Type`` that storage keeps.
- UploadPart (``PUT`` + ``uploadId`` + ``partNumber``), ListParts (``GET``),
  CompleteMultipartUpload (``POST``) and AbortMultipartUpload (``DELETE``) carry an
  ``uploadId`` and our key: signed only for the caller's own pending upload with that key.
  The first of them records the S3 upload id; another id later is refused. Signing an abort
  marks the upload ``aborted``.
- Anything else, or another user's key, is a 404.

A file's parts are signed one call each, one after another, so this stays cheap: one indexed
lookup, one ListParts, no rate limit. Limits and quota are enforced at confirmation (and by
the POST policy), which the bucket notification feeds as for any direct upload.

Quota: a file reserves its bytes when it starts (the page may pass ``size``, then exactly that;
else ``FILESTORE_UNDECLARED_UPLOAD_RESERVATION_BYTES`` or what is left); PutObject's POST
policy is bounded by the reservation, and a part is signed only while the parts storage holds
leave room in it (one ListParts per part after the first).
"""

import logging
from datetime import UTC, datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncSession

from domain.errors import (
    PayloadTooLarge,
    QuotaExceeded,
    UploadClosed,
    UploadIdMismatch,
    UploadNotFound,
    ValidationFailed,
)
from domain.files.content import guess_content_type
from domain.files.paths import file_path
from domain.files.repository import FileRepository
from domain.media_types import is_media_type
from domain.models import Upload, UploadKind, UploadStatus, User
from domain.uploads import multipart
from domain.uploads.pending import open_direct_upload
from domain.uploads.schemas import MAX_PARTS, MAX_SINGLE_PUT_BYTES, MIN_PART_SIZE
from infra.config import Settings
from infra.storage.adapter import MultipartGone, Storage

__all__ = ["SignRequestIn", "SignedRequestOut", "sign_request"]

log = logging.getLogger(__name__)


class SignRequestIn(BaseModel):
    """Uppy's request to sign, as its ``signRequest`` receives it."""

    model_config = ConfigDict(extra="forbid")

    method: Literal["PUT", "POST", "GET", "DELETE"]
    key: str = Field(
        min_length=1,
        max_length=4096,
        description="The target path when a file starts (PutObject, CreateMultipartUpload); "
        "afterwards the key this signer answered.",
    )
    uploadId: str | None = Field(default=None, min_length=1, max_length=1024)  # noqa: N815
    partNumber: int | None = Field(default=None, ge=1, le=MAX_PARTS)  # noqa: N815
    contentType: str | None = Field(default=None, max_length=1024)  # noqa: N815
    expiresIn: int | None = Field(default=None, ge=1)  # noqa: N815
    size: int | None = Field(
        default=None,
        ge=1,
        description="Not Uppy's: the file's size, when the page knows it (PutObject, "
        "CreateMultipartUpload). Given, it is reserved exactly and pinned; without it the upload "
        "reserves FILESTORE_UNDECLARED_UPLOAD_RESERVATION_BYTES (or what the quota has left).",
    )


class SignedRequestOut(BaseModel):
    url: str
    key: str | None = Field(default=None, description="Our object key, when a file starts.")
    headers: dict[str, str] | None = None
    fields: dict[str, str] | None = Field(
        default=None, description="A POST policy (PutObject): upload as a form to ``url``."
    )


async def _within_reservation(storage: Storage, upload: Upload, number: int) -> None:
    """Sign part ``number`` only while the upload's reservation has room for it: the parts
    before it are 5 MiB at least, and the parts storage holds (another part of that number
    aside, which this one replaces) must leave room. Uppy's part URLs carry no length, so a
    part in flight may still pass it; reconcile aborts an upload whose parts did."""
    reserved = upload.reserved_bytes
    if (number - 1) * MIN_PART_SIZE >= reserved:
        raise QuotaExceeded(
            f"Part {number} cannot fit: the upload reserved {reserved} bytes, and every part "
            f"but the last is {MIN_PART_SIZE} bytes at least."
        )
    if number == 1 or upload.multipart_upload_id is None:
        return
    try:
        parts = await storage.list_parts(upload.object_key, upload.multipart_upload_id)
    except MultipartGone:
        raise UploadClosed("Storage no longer holds this multipart upload.") from None
    stored = sum(part.size for part in parts if part.number != number)
    if stored >= reserved:
        raise QuotaExceeded(
            f"The upload's parts hold {stored} bytes of the {reserved} reserved for it: "
            "no room for another part."
        )


def _not_signed(request: SignRequestIn) -> UploadNotFound:
    return UploadNotFound(
        f"Nothing to sign for {request.method} {'with' if request.uploadId else 'without'} "
        "an uploadId on this key: only your own pending uploads, for PutObject, "
        "CreateMultipartUpload, UploadPart, ListParts, CompleteMultipartUpload and "
        "AbortMultipartUpload."
    )


async def sign_request(
    session: AsyncSession, storage: Storage, settings: Settings, user: User, request: SignRequestIn
) -> SignedRequestOut:
    if request.uploadId is None:
        if request.partNumber is not None:
            raise _not_signed(request)
        if request.method == "PUT":
            return await _put_object(session, storage, settings, user, request)
        if request.method == "POST":
            return await _create_multipart(session, storage, settings, user, request)
        raise _not_signed(request)
    if request.size is not None:
        raise ValidationFailed("size: only PutObject and CreateMultipartUpload take a size")
    return await _in_upload(session, storage, settings, user, request)


async def _open(
    session: AsyncSession,
    storage: Storage,
    settings: Settings,
    user: User,
    request: SignRequestIn,
    content_type: str | None,
    expires_at: datetime,
) -> tuple[Upload, int, str]:
    path, name = file_path(request.key, None)
    chosen = content_type or guess_content_type(name)
    if request.size is not None and request.size > settings.uploads.max_upload_bytes:
        raise PayloadTooLarge.over(settings.uploads.max_upload_bytes)
    single = request.method == "PUT"
    if single and request.size is not None and request.size > MAX_SINGLE_PUT_BYTES:
        raise ValidationFailed("size: a PutObject is at most 5 GiB; use a multipart upload")
    file, upload, reserved = await open_direct_upload(
        session,
        storage,
        settings,
        user.id,
        (path, name, chosen),
        expires_at,
        declared_size=request.size,
        reserve=min(settings.uploads.undeclared_upload_reservation_bytes, MAX_SINGLE_PUT_BYTES)
        if single
        else None,
    )
    if content_type is None:
        # Uppy sends the type to storage itself: confirmation takes the one storage keeps.
        upload.content_type = None
        await session.flush()
    log.info(
        "uppy upload opened",
        extra={
            "user_id": str(user.id),
            "file_id": str(file.id),
            "upload_id": str(upload.id),
            "object_key": upload.object_key,
            "operation": "PutObject" if single else "CreateMultipartUpload",
            "declared_size": request.size,
            "reserved_bytes": reserved,
        },
    )
    return upload, reserved, chosen


async def _put_object(
    session: AsyncSession, storage: Storage, settings: Settings, user: User, request: SignRequestIn
) -> SignedRequestOut:
    """A POST policy: the content type pinned, the size limited to what fits."""
    content_type = request.contentType
    if content_type is not None and not is_media_type(content_type):
        content_type = None
    expires_at = datetime.now(UTC) + timedelta(seconds=settings.uploads.upload_url_ttl_seconds)
    upload, reserved, chosen = await _open(
        session, storage, settings, user, request, content_type, expires_at
    )
    upload.content_type = chosen
    post = storage.presign_post(upload.object_key, chosen, reserved, request.size or 1)
    return SignedRequestOut(url=post.url, key=upload.object_key, fields=post.fields)


async def _create_multipart(
    session: AsyncSession, storage: Storage, settings: Settings, user: User, request: SignRequestIn
) -> SignedRequestOut:
    expires_at = datetime.now(UTC) + timedelta(
        seconds=settings.uploads.multipart_upload_ttl_seconds
    )
    upload, _, _ = await _open(session, storage, settings, user, request, None, expires_at)
    url = storage.presign_request("POST", upload.object_key, {"uploads": ""})
    return SignedRequestOut(url=url, key=upload.object_key)


async def _in_upload(
    session: AsyncSession,
    storage: Storage,
    settings: Settings,
    user: User,
    request: SignRequestIn,
) -> SignedRequestOut:
    assert request.uploadId is not None
    files = FileRepository(session, user.id)
    upload = await files.get_upload_by_key(request.key)
    operation = {
        "PUT": "UploadPart",
        "GET": "ListParts",
        "POST": "CompleteMultipartUpload",
        "DELETE": "AbortMultipartUpload",
    }[request.method]
    if (
        upload is None
        or upload.kind != UploadKind.direct
        or (request.method == "PUT") != (request.partNumber is not None)
    ):
        raise _not_signed(request)
    # A retried abort finds its upload aborted already: sign it again, nothing else.
    retried_abort = (
        request.method == "DELETE"
        and upload.status == UploadStatus.aborted
        and upload.multipart_upload_id == request.uploadId
    )
    if not retried_abort:
        if upload.status != UploadStatus.pending or upload.expires_at < datetime.now(UTC):
            raise _not_signed(request)
        if upload.multipart_upload_id != request.uploadId:
            recorded = await files.record_multipart_id(upload.id, request.uploadId)
            if recorded != request.uploadId:
                raise UploadIdMismatch()
            upload.multipart_upload_id = recorded
            log.info(
                "multipart upload id recorded",
                extra={"upload_id": str(upload.id), "object_key": upload.object_key},
            )
    params = {"uploadId": request.uploadId}
    if request.partNumber is not None:
        await _within_reservation(storage, upload, request.partNumber)
        params["partNumber"] = str(request.partNumber)
    url = storage.presign_request(request.method, upload.object_key, params)
    if request.method == "DELETE" and not retried_abort:
        await multipart.abort_upload(
            session, storage, upload, storage_abort_delay=settings.uploads.upload_grace_seconds
        )
    if request.method != "PUT":
        log.info(
            "uppy request signed",
            extra={"upload_id": str(upload.id), "operation": operation},
        )
    return SignedRequestOut(url=url)
