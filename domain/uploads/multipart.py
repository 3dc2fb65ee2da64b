"""Presigned multipart uploads: the client sends parts straight to storage, resumably.

The API opens the S3 multipart upload at the intent (CreateMultipartUpload, in the intent's
transaction: the sweep's grace period covers a commit that never lands), signs parts in batches
(each URL pins the part's exact length and, when the client gives one, its SHA-256), lists what
storage holds so a client can resume, assembles the object (CompleteMultipartUpload) and hands
it to the one idempotent confirmation, which re-checks size, declared size and quota. Aborting
marks the upload ``aborted`` and its object goes to the outbox; reconcile aborts intents that
expired, and the bucket sweep any storage-side upload no pending row claims.
"""

import base64
import logging
import math
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from domain.errors import (
    NotMultipart,
    PartsMissing,
    PayloadTooLarge,
    UploadClosed,
    ValidationFailed,
)
from domain.files.content import guess_content_type
from domain.files.paths import file_path
from domain.files.repository import FileRepository, UploadRepository
from domain.files.schemas import FileOut
from domain.models import Upload, UploadKind, UploadStatus
from domain.objects.outbox import Outbox
from domain.uploads import single
from domain.uploads.pending import open_direct_upload
from domain.uploads.schemas import (
    MAX_PART_SIZE,
    MAX_PARTS,
    MIN_PART_SIZE,
    CompletedPartIn,
    MultipartTicket,
    PartIn,
    PendingFile,
    SignedPart,
    SignedParts,
    StoredPartOut,
    StoredParts,
    UploadIntentIn,
    UploadState,
)
from infra import metrics
from infra.config import Settings
from infra.storage.adapter import MultipartGone, PartsRefused, Storage, StoredPart

__all__ = [
    "abort_upload",
    "choose_part_size",
    "complete_multipart",
    "issue_multipart",
    "list_parts",
    "sign_parts",
    "wants_multipart",
]

log = logging.getLogger(__name__)

MIB = 1024 * 1024
# How many gaps a ``parts_missing`` detail names before it elides the rest.
MAX_GAPS_NAMED = 20


def wants_multipart(intent: UploadIntentIn, settings: Settings) -> bool:
    """``multipart`` when given; else a ``part_size``, or a size above the threshold, asks."""
    if intent.multipart is not None:
        return intent.multipart
    if intent.part_size is not None:
        return True
    return intent.size is not None and intent.size > settings.uploads.multipart_threshold_bytes


def choose_part_size(size: int, requested: int | None, default: int) -> int:
    """The part size: ``requested`` if it keeps to 10,000 parts, else the default part size or
    the smallest whole MiB that does. 422 when the requested size makes too many parts."""
    needed = max(MIN_PART_SIZE, math.ceil(math.ceil(size / MAX_PARTS) / MIB) * MIB)
    if requested is not None:
        if math.ceil(size / requested) > MAX_PARTS:
            raise ValidationFailed(
                f"part_size: {size} bytes in parts of {requested} make more than "
                f"{MAX_PARTS} parts; use at least {needed}"
            )
        return requested
    return min(max(default, needed), MAX_PART_SIZE)


def part_count(upload: Upload) -> int | None:
    if upload.part_size is None or upload.declared_size is None:
        return None
    return max(1, math.ceil(upload.declared_size / upload.part_size))


def _part_length(upload: Upload, number: int) -> int | None:
    """The exact length of part ``number``: the part size but for the last part."""
    count = part_count(upload)
    if count is None or upload.part_size is None or upload.declared_size is None:
        return None
    return (
        upload.part_size
        if number < count
        else upload.declared_size - (count - 1) * upload.part_size
    )


async def issue_multipart(
    session: AsyncSession,
    storage: Storage,
    settings: Settings,
    owner_id: uuid.UUID,
    intent: UploadIntentIn,
) -> PendingFile:
    """Record a pending upload and open its S3 multipart upload; limits come first."""
    path, name = file_path(intent.path, intent.name)
    content_type = intent.content_type or guess_content_type(name)
    if intent.size is not None and intent.size > settings.uploads.max_upload_bytes:
        raise PayloadTooLarge.over(settings.uploads.max_upload_bytes)
    if intent.size is None:
        raise ValidationFailed("size: required for a multipart upload")
    if intent.sha256 is not None:
        raise ValidationFailed(
            "sha256: storage cannot check a whole-file SHA-256 of a multipart upload; "
            "give each part's sha256 when signing it"
        )
    part_size = choose_part_size(intent.size, intent.part_size, settings.storage.part_size_bytes)
    expires_at = datetime.now(UTC) + timedelta(
        seconds=settings.uploads.multipart_upload_ttl_seconds
    )
    file, upload, _ = await open_direct_upload(
        session,
        storage,
        settings,
        owner_id,
        (path, name, content_type),
        expires_at,
        declared_size=intent.size,
        own_name=intent.name,
    )
    upload.multipart_upload_id = await storage.create_multipart_upload(
        upload.object_key, content_type
    )
    upload.part_size = part_size
    await session.flush()
    count = part_count(upload)
    assert count is not None
    log.info(
        "multipart upload issued",
        extra={
            "user_id": str(owner_id),
            "file_id": str(file.id),
            "upload_id": str(upload.id),
            "object_key": upload.object_key,
            "declared_size": intent.size,
            "part_size": part_size,
            "part_count": count,
        },
    )
    ticket = MultipartTicket(
        id=upload.id, part_size=part_size, part_count=count, expires_at=expires_at
    )
    return PendingFile(**FileOut.of(file).model_dump(), upload=ticket)


def _open_multipart(upload: Upload) -> Upload:
    """``upload`` if it is a pending multipart upload: 409 otherwise."""
    if upload.multipart_upload_id is None:
        raise NotMultipart()
    if upload.status != UploadStatus.pending:
        raise UploadClosed(f"The upload is {upload.status}.")
    if upload.expires_at < datetime.now(UTC):
        raise UploadClosed("The upload has expired.")
    return upload


def sign_parts(
    storage: Storage, settings: Settings, upload: Upload, parts: Sequence[PartIn]
) -> SignedParts:
    """Presigned UploadPart URLs, each pinning the part's length (and SHA-256 when given)."""
    upload = _open_multipart(upload)
    assert upload.multipart_upload_id is not None
    count = part_count(upload)
    beyond = [part.number for part in parts if count is not None and part.number > count]
    if beyond:
        raise ValidationFailed(f"parts: the upload has {count} parts, not {beyond[0]}")
    expires_at = datetime.now(UTC) + timedelta(seconds=settings.uploads.upload_url_ttl_seconds)
    signed = []
    for part in parts:
        checksum = base64.b64encode(bytes.fromhex(part.sha256)).decode() if part.sha256 else None
        put = storage.presign_part(
            upload.object_key,
            upload.multipart_upload_id,
            part.number,
            _part_length(upload, part.number),
            checksum,
        )
        signed.append(
            SignedPart(number=part.number, url=put.url, headers=put.headers, expires_at=expires_at)
        )
    log.info(
        "multipart parts signed",
        extra={
            "upload_id": str(upload.id),
            "object_key": upload.object_key,
            "parts": len(signed),
            "first_part": parts[0].number,
            "with_sha256": sum(1 for part in parts if part.sha256),
        },
    )
    return SignedParts(parts=signed)


async def _stored_parts(storage: Storage, upload: Upload) -> list[StoredPart]:
    assert upload.multipart_upload_id is not None
    try:
        return await storage.list_parts(upload.object_key, upload.multipart_upload_id)
    except MultipartGone:
        raise UploadClosed("Storage no longer holds this multipart upload.") from None


async def list_parts(storage: Storage, upload: Upload) -> StoredParts:
    """What storage holds of the upload (every ListParts page), for resuming."""
    upload = _open_multipart(upload)
    stored = await _stored_parts(storage, upload)
    return StoredParts(
        parts=[StoredPartOut(number=p.number, size=p.size, etag=p.etag) for p in stored]
    )


def _ranges(numbers: Sequence[int]) -> str:
    """``[1, 2, 3, 7]`` as ``1-3, 7``; long lists elided."""
    spans: list[str] = []
    start = previous = None
    for number in [*sorted(numbers), None]:
        if start is not None and previous is not None and number != previous + 1:
            spans.append(str(start) if start == previous else f"{start}-{previous}")
            start = None
        if start is None:
            start = number
        previous = number
    if len(spans) > MAX_GAPS_NAMED:
        spans = [*spans[:MAX_GAPS_NAMED], "…"]
    return ", ".join(spans)


def _assemble(
    upload: Upload, stored: Sequence[StoredPart], given: Sequence[CompletedPartIn] | None
) -> list[tuple[int, str]]:
    """The ``(number, etag)`` list to complete with; ``parts_missing`` names every gap."""
    held = {part.number: part.etag for part in stored}
    count = part_count(upload) or max(held, default=0)
    if count == 0:
        raise PartsMissing("Storage holds no part of this upload yet.")
    if given is None:
        missing = [number for number in range(1, count + 1) if number not in held]
        if missing:
            raise PartsMissing(f"Parts missing: {_ranges(missing)} (of {count}).")
        return [(number, held[number]) for number in range(1, count + 1)]
    chosen: dict[int, str] = {}
    for part in given:
        if part.number > count:
            raise ValidationFailed(f"parts: the upload has {count} parts, not {part.number}")
        if part.number in chosen:
            raise ValidationFailed(f"parts: part {part.number} is listed twice")
        chosen[part.number] = part.etag.strip('"')
    missing = [number for number in range(1, count + 1) if number not in chosen]
    unheld = [n for n, etag in chosen.items() if held.get(n) != etag]
    if missing or unheld:
        details = []
        if missing:
            details.append(f"not listed: {_ranges(missing)}")
        if unheld:
            details.append(f"not held by storage with that etag: {_ranges(unheld)}")
        raise PartsMissing(f"Parts missing ({'; '.join(details)}) of {count}.")
    return sorted(chosen.items())


async def complete_multipart(
    session: AsyncSession,
    storage: Storage,
    settings: Settings,
    upload: Upload,
    given: Sequence[CompletedPartIn] | None,
) -> UploadState:
    """Assemble the object, then run the one confirmation. Idempotent: once storage holds the
    object (this call, an earlier one, or the page itself completed it), it only confirms."""
    if upload.multipart_upload_id is None:
        if given is not None:
            raise ValidationFailed("parts: only a multipart upload takes a part list")
        return await single.complete_upload(session, storage, settings, upload)
    if upload.status == UploadStatus.pending and await storage.head(upload.object_key) is None:
        if upload.expires_at < datetime.now(UTC):
            raise UploadClosed("The upload has expired.")
        parts = _assemble(upload, await _stored_parts(storage, upload), given)
        try:
            etag = await storage.complete_multipart_upload(
                upload.object_key, upload.multipart_upload_id, parts
            )
        except MultipartGone:
            # A concurrent complete won the race, or the upload was aborted meanwhile.
            if await storage.head(upload.object_key) is None:
                raise UploadClosed("Storage no longer holds this multipart upload.") from None
            etag = None
        except PartsRefused as refused:
            raise PartsMissing(f"Storage refused the part list: {refused}") from None
        log.info(
            "multipart upload completed",
            extra={
                "upload_id": str(upload.id),
                "object_key": upload.object_key,
                "parts": len(parts),
                "etag": etag,
            },
        )
    return await single.complete_upload(session, storage, settings, upload)


async def abort_upload(
    session: AsyncSession,
    storage: Storage,
    found: Upload,
    *,
    storage_abort_delay: float = 0,
) -> None:
    """Abort a pending direct upload of either kind: ``aborted``, its object (if any arrived)
    to the outbox, its S3 multipart upload aborted now, or with ``storage_abort_delay`` by the
    outbox that much later (Uppy aborts it itself with the URL we sign: the outbox makes sure,
    after the parts in flight landed). Aborting twice is a no-op. ``found`` may be a snapshot:
    the rows are locked and read again here."""
    if found.kind == UploadKind.proxied:
        raise UploadClosed("A proxied upload ends with its own request.")
    files = FileRepository(session, found.owner_id)
    file = await files.lock(found.file_id) if found.file_id else None  # files → uploads
    upload = await UploadRepository(session).lock(found.id)
    if upload.status == UploadStatus.aborted:
        return
    if upload.status != UploadStatus.pending:
        raise UploadClosed(f"The upload is {upload.status}; only a pending one can be aborted.")
    upload.status, upload.reason = UploadStatus.aborted, "aborted by its owner"
    metrics.upload_aborted(session)
    upload.completed_at = datetime.now(UTC)
    await session.flush()
    await Outbox(session).add(
        upload.object_key,
        "upload aborted",
        multipart_upload_id=upload.multipart_upload_id,
        delay_seconds=storage_abort_delay,
    )
    if file is not None:
        await files.delete_if_empty(file.id)
    if not storage_abort_delay and upload.multipart_upload_id is not None:
        # Before the commit: if storage is down the request fails and nothing changes.
        await storage.abort_multipart_upload(upload.object_key, upload.multipart_upload_id)
    log.info(
        "upload aborted",
        extra={
            "upload_id": str(upload.id),
            "object_key": upload.object_key,
            "multipart": upload.multipart_upload_id is not None,
        },
    )
