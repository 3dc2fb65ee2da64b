"""Upload confirmation: the one idempotent step that makes an uploaded object a file's content.

A direct upload is confirmed by the worker (after a bucket notification, or by reconcile) or by
the ``complete`` endpoint; a proxied upload only by the request that streamed it, which passes
what it stored. Everything else that notices a proxied object leaves it alone: if its request
failed, the upload is ``failed`` (or its lease runs out and reconcile fails it), and it never
becomes content later.
"""

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncSession

from domain.files.content import guess_content_type
from domain.files.repository import FileRepository, Held, UploadRepository
from domain.models import File, Upload, UploadKind, UploadStatus
from domain.objects.outbox import Outbox
from domain.uploads import checksum, rewritten
from domain.versions import service as versions
from infra import metrics
from infra.config import Settings
from infra.db import Database
from infra.metrics import RejectReason
from infra.storage.adapter import ObjectInfo, Storage

log = logging.getLogger(__name__)

Outcome = Literal["confirmed", "already_done", "not_arrived", "rejected", "unknown", "not_ours"]


@dataclass(frozen=True, slots=True)
class Confirmation:
    outcome: Outcome
    upload: Upload | None = None
    file: File | None = None
    replaced_key: str | None = None

    @property
    def stored(self) -> bool:
        """The upload's object is its file's content now."""
        return (
            self.upload is not None
            and self.upload.status == UploadStatus.completed
            and self.file is not None
            and self.file.object_key == self.upload.object_key
        )


def _violation(
    info: ObjectInfo, upload: Upload, held: Held, freed: int, settings: Settings, holders: int = 1
) -> tuple[RejectReason, str] | None:
    """Why the object may not become the file's content: a reason class and the reason.

    ``held`` is what the owner keeps and reserves. Once confirmed, the object replaces the
    file's content (which frees ``freed`` bytes: the content itself, or only the versions it
    pushes past the limit) and the upload's reservation is released: what is left must fit.
    ``holders`` live files take the object (a rewritten object: the file and its copies).
    """
    if info.size == 0:
        return "empty", "empty object"
    if info.size > settings.uploads.max_upload_bytes:
        return (
            "size",
            f"size {info.size} exceeds the upload limit {settings.uploads.max_upload_bytes}",
        )
    if upload.declared_size is not None and info.size != upload.declared_size:
        return (
            "declared_size",
            f"size {info.size} differs from the declared size {upload.declared_size}",
        )
    reservation = upload.reserved_bytes if upload.status == UploadStatus.pending else 0
    if upload.status == UploadStatus.pending and info.size > reservation:
        return "quota", f"size {info.size} exceeds the {reservation} bytes reserved for it"
    if upload.sha256 is not None and info.sha256 is not None and info.sha256 != upload.sha256:
        return "checksum", "the object's SHA-256 differs from the declared one"
    kept = held.used - freed + info.size * holders + held.reserved - reservation
    if kept > settings.uploads.user_quota_bytes:
        return "quota", f"size {info.size} exceeds the remaining quota.{held.freeable()}"
    return None


async def _holds(files: FileRepository, upload: Upload, etag: str) -> bool:
    """The upload is confirmed and its file already holds this version of its object."""
    if upload.status != UploadStatus.completed or upload.file_id is None:
        return False
    return await files.holds(upload.file_id, upload.object_key, etag)


def _carry(sharers: Sequence[File], info: ObjectInfo, now: datetime) -> int:
    """A reused presigned URL rewrote an object that copies share: they hold the new version
    too (the object is one); the bytes they gained."""
    gained = 0
    for sharer in sharers:
        gained += info.size - (sharer.size or 0)
        sharer.size, sharer.etag, sharer.sha256 = info.size, info.etag, info.sha256
        sharer.modified_at = now
    return gained


async def _lock_sharers(
    files: FileRepository, upload: Upload, file: File | None
) -> tuple[Sequence[File], rewritten.Kept | None]:
    """An upload once confirmed may have its URL used again, rewriting the object under every
    row that holds it: the live copies of it are locked (after the upload's file), then what
    keeps it (``rewritten.lock_kept``), all before the upload (files → trash entries → uploads
    → users). A pending upload's object is nobody's content yet: nothing to lock."""
    if upload.status == UploadStatus.pending:
        return (), None
    sharers = await files.lock_sharers(upload.object_key, file.id if file else None)
    locked = {holder.id for holder in sharers} | ({file.id} if file else set())
    kept = await rewritten.lock_kept(files.session, files.owner_id, upload.object_key, locked)
    return sharers, kept


async def _refuse_rewrite(
    files: FileRepository,
    sharers: Sequence[File],
    kept: rewritten.Kept | None,
    info: ObjectInfo,
) -> None:
    """The object of an upload that is no file's content any more was rewritten: the copies
    and the kept rows that recorded its earlier bytes lose them (those locked by
    ``_lock_sharers``)."""
    changed = [sharer for sharer in sharers if sharer.etag != info.etag]
    await rewritten.lose_content(files, changed, "its object was rewritten through a reused URL")
    if kept is not None:
        await rewritten.drop_stale(files.session, kept, info.etag)


async def _freed(
    session: AsyncSession,
    file: File,
    sharers: Sequence[File],
    kept_rows: rewritten.Kept | None,
    info: ObjectInfo,
    kept: int,
    *,
    is_current: bool,
) -> int:
    """The bytes confirming ``info`` frees: for new content, what replacing the file's frees;
    for the object rewritten under the file (a reused URL), the content of the file and of its
    copies, and what kept the earlier bytes (dropped here, whatever the outcome)."""
    if not is_current:
        return await versions.freed_by_replacing(session, file, kept)
    stale = await rewritten.drop_stale(session, kept_rows, info.etag) if kept_rows else 0
    return sum(holder.size or 0 for holder in (file, *sharers)) + stale


async def _reject(
    files: FileRepository,
    upload: Upload,
    file: File,
    violation: tuple[RejectReason, str],
    *,
    is_current: bool,
    sharers: Sequence[File] = (),
) -> None:
    """Close the upload as rejected; if its object was the file's content, the file (and any
    copy sharing the object) loses it and goes, if nothing else is pending for it. The object
    goes to the outbox."""
    reason_class, reason = violation
    metrics.upload_rejected(files.session, reason_class)
    upload.status, upload.reason = UploadStatus.rejected, reason
    upload.completed_at = datetime.now(UTC)
    if is_current:
        await rewritten.lose_content(files, (file, *sharers), f"upload rejected: {reason}")
    else:
        await files.delete_if_empty(file.id)
    await Outbox(files.session).add(upload.object_key, "upload rejected")


def _landed_late(upload: Upload, info: ObjectInfo, settings: Settings) -> str | None:
    """Why a direct upload's object cannot count as its upload: it landed after the upload
    closed. Storage refuses a PUT whose URL has expired, and the row stays open a grace period
    past the URL's expiry for a PUT that started in time but ends later (SeaweedFS dates an
    object when its PUT ends; AWS when it starts). Whether reconcile closed the row meanwhile
    changes nothing: the object's Last-Modified decides."""
    landed = info.last_modified
    if upload.kind != UploadKind.direct or landed is None or landed <= upload.expires_at:
        return None
    url_expiry = upload.expires_at - timedelta(seconds=settings.uploads.upload_grace_seconds)
    return (
        f"the object landed at {landed.isoformat()}, after its upload closed at "
        f"{upload.expires_at.isoformat()} (its URL expired at {url_expiry.isoformat()}, "
        f"plus {settings.uploads.upload_grace_seconds} s of grace)"
    )


def _reopen(upload: Upload) -> None:
    """Reconcile expired the upload while its PUT was still in flight (a HEAD that found
    nothing yet): the object landed in time, so the upload is open again and confirmed."""
    ids = {"upload_id": str(upload.id), "object_key": upload.object_key}
    log.info("expired upload reopened", extra={**ids, "reason": upload.reason})
    upload.status, upload.reason, upload.completed_at = UploadStatus.pending, None, None


async def _refuse_late(
    files: FileRepository, outbox: Outbox, upload: Upload, file: File | None, reason: str
) -> Confirmation:
    """An object that landed after its upload closed is never content (``_landed_late``)."""
    ids = {"upload_id": str(upload.id), "object_key": upload.object_key}
    if file is None:
        metrics.upload_rejected(files.session, "late")
        upload.status, upload.reason = UploadStatus.rejected, reason
        upload.completed_at = datetime.now(UTC)
        await outbox.add(upload.object_key, "landed after its upload closed")
    else:  # an open upload's object is never its file's content yet
        await _reject(files, upload, file, ("late", reason), is_current=False)
    log.warning("upload rejected", extra={**ids, "reason": reason})
    return Confirmation("rejected", upload, file)


async def _by_landing(
    files: FileRepository,
    outbox: Outbox,
    upload: Upload,
    file: File | None,
    info: ObjectInfo,
    settings: Settings,
) -> Confirmation | None:
    """An open (or only expired) upload whose object landed after it closed is refused; one
    expired meanwhile whose object landed in time is reopened, to be confirmed."""
    if upload.status not in {UploadStatus.pending, UploadStatus.expired}:
        return None
    late = _landed_late(upload, info, settings)
    if late is not None:
        return await _refuse_late(files, outbox, upload, file, late)
    if upload.status == UploadStatus.expired:
        _reopen(upload)
    return None


async def _head(storage: Storage, upload: Upload) -> ObjectInfo | None:
    """What storage holds for the upload; when it declared a SHA-256 and storage reports
    none, with the SHA-256 of the object's bytes (read here, before any row is locked)."""
    info = await storage.head(upload.object_key)
    if info is not None and checksum.needs_reading(upload, info):
        return await checksum.with_computed_sha256(storage, upload.object_key)
    return info


async def _find(
    uploads: UploadRepository, object_key: str, *, lock_file: bool
) -> tuple[Upload | None, File | None]:
    """The upload of ``object_key``, and with ``lock_file`` its file locked in the same
    statement (for a caller with nothing to do in between: no HEAD, no etag check)."""
    if lock_file:
        return await uploads.find_by_key_locking_file(object_key)
    return await uploads.find_by_key(object_key), None


async def confirm_upload(
    session: AsyncSession,
    storage: Storage,
    settings: Settings,
    object_key: str,
    *,
    stored: ObjectInfo | None = None,
    landed_at: datetime | None = None,
    etag: str | None = None,
) -> Confirmation:
    """Make the uploaded object its file's content. Idempotent; the caller commits.

    ``stored`` is what a proxied upload's request just wrote; without it the object is HEADed
    (before any lock is taken). Rows are locked in the one order of ``domain.models``: file, then
    upload, then user. Objects that become garbage (replaced, rejected, late, unclaimed) go to
    the outbox in this transaction. A presigned PUT reused after confirmation changes the
    object under the file (a new etag): it is checked again like a new upload.
    ``landed_at``, when the object landed in storage (a notification's event time), times the
    confirmation; without it the object's Last-Modified does. ``etag``, the version a
    notification reports: when the file already holds it, the notification costs one indexed
    lookup, no HEAD and no lock (the client's ``complete`` usually confirmed it first).
    """
    uploads = UploadRepository(session)
    found, file = await _find(uploads, object_key, lock_file=stored is not None)
    outbox = Outbox(session)
    if found is None:
        await outbox.add(object_key, "no upload claims it")
        return Confirmation("unknown")
    if found.kind == UploadKind.proxied and stored is None:
        return Confirmation("not_ours", found)
    files = FileRepository(session, found.owner_id)
    if etag is not None and await _holds(files, found, etag):
        return Confirmation("already_done", found)
    info = stored or await _head(storage, found)
    if stored is None and found.file_id is not None:
        file = await files.lock(found.file_id)
    sharers, kept_rows = await _lock_sharers(files, found, file)
    upload = await uploads.lock(found.id)
    if info is None:
        pending = upload.status == UploadStatus.pending
        return Confirmation("not_arrived" if pending else "already_done", upload, file)
    is_current = file is not None and file.object_key == object_key
    refused = await _by_landing(files, outbox, upload, file, info, settings)
    if refused is not None:
        return refused
    if upload.status != UploadStatus.pending and (
        not is_current or (file is not None and info.etag == file.etag)
    ):
        if not is_current:
            # Its file holds other content now (or is gone): the bytes are nobody's, and
            # whatever held the object's earlier bytes has lost them.
            await _refuse_rewrite(files, sharers, kept_rows, info)
            await outbox.add(object_key, f"late object of a {upload.status} upload")
        return Confirmation("already_done", upload, file)
    if file is None:
        upload.status, upload.reason = UploadStatus.rejected, "the file was deleted meanwhile"
        upload.completed_at = datetime.now(UTC)
        metrics.upload_rejected(session, "file_deleted")
        await outbox.add(object_key, "its file was deleted")
        return Confirmation("rejected", upload)
    held = await files.lock_used_bytes()
    now = datetime.now(UTC)
    ids = {"upload_id": str(upload.id), "file_id": str(file.id), "object_key": object_key}
    kept = settings.retention.versions_kept
    freed = await _freed(session, file, sharers, kept_rows, info, kept, is_current=is_current)

    violation = _violation(info, upload, held, freed, settings, holders=1 + len(sharers))
    if violation is not None:
        await _reject(files, upload, file, violation, is_current=is_current, sharers=sharers)
        log.warning("upload rejected", extra={**ids, "reason": upload.reason, "size": info.size})
        return Confirmation("rejected", upload, file)

    replaced_key = None if is_current else file.object_key
    retired = (
        versions.Retired(-(file.size or 0), 0)
        if is_current
        else await versions.retire_content(session, file, kept)
    )
    size_delta = info.size + retired.used + _carry(sharers, info, now)
    file.object_key, file.size, file.etag = object_key, info.size, info.etag
    file.sha256 = info.sha256
    file.content_type = upload.content_type or info.content_type or guess_content_type(file.name)
    file.modified_at = now
    upload.status, upload.completed_at = UploadStatus.completed, now
    await files.account_change(size_delta, versions=retired.versions)
    await session.flush()
    metrics.upload_confirmed(session, upload.kind, landed_at or info.last_modified)
    log.info(
        "file overwritten" if replaced_key else "file stored",
        extra={**ids, "size": info.size, "etag": info.etag, "replaced_key": replaced_key},
    )
    return Confirmation("confirmed", upload, file, replaced_key)


async def confirm_in_transaction(
    database: Database,
    storage: Storage,
    settings: Settings,
    object_key: str,
    landed_at: datetime | None = None,
    etag: str | None = None,
) -> Confirmation:
    """``confirm_upload`` in a transaction of its own, retried while it fails transiently."""

    async def work(session: AsyncSession) -> Confirmation:
        return await confirm_upload(
            session, storage, settings, object_key, landed_at=landed_at, etag=etag
        )

    return await database.transaction(work)
