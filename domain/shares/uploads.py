"""Uploads through an upload link (§15, a file request): anyone holding the link adds files to
its folder, straight to storage, as the folder's owner would.

Decided:
- An intent is the owner's JSON intent with ``name`` (a file name, or a path relative to the
  folder, refused by the share's own path rules when it tries to leave it) for ``path``, and
  runs the owner's own domain functions (``single.issue_upload``, ``multipart.issue_multipart``)
  for the owner's account: the same limits, quota and open-upload reservation, exactly.
- Never overwriting: under the owner's path lock a taken name gets a number
  (``domain.shares.naming``), so racing uploaders get distinct names.
- The uploader learns nothing of the owner's tree: answers name paths relative to the folder,
  and errors that would say more (the quota's numbers, the owner's open uploads, a path in the
  way) say less.
- Each link takes at most ``FILESTORE_SHARE_UPLOADS_PER_MINUTE`` intents a minute (429), counted
  before anything else, failures included.
- A link's follow-up routes reach the uploads made through it and no other
  (``uploads.share_id``); a revoked or expired link reaches none.
"""

import logging
import uuid
from collections.abc import Sequence

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from domain.errors import (
    PathTaken,
    QuotaExceeded,
    ShareNotFound,
    ShareUploadsThrottled,
    TooManyUploads,
    UploadNotFound,
)
from domain.files.paths import normalize_path
from domain.files.repository import FileRepository
from domain.models import Upload
from domain.shares import naming, repository
from domain.shares.repository import Target
from domain.shares.schemas import LinkUploadIn, LinkUploadOut, LinkUploadState
from domain.shares.service import relative_path
from domain.uploads import multipart, single
from domain.uploads.schemas import (
    CompletedPartIn,
    PendingFile,
    UploadIntentIn,
    UploadState,
)
from infra.config import Settings
from infra.db import Database
from infra.ratelimit import RateLimit
from infra.storage.adapter import Storage

log = logging.getLogger(__name__)

RATE_PREFIX = "fs:shareuploads"
RATE_WINDOW_SECONDS = 60


def upload_folder(target: Target) -> str:
    """The folder of an upload link; any other link has no upload routes (404)."""
    if not target.share.upload or target.folder_path is None:
        raise ShareNotFound()
    return target.folder_path


def rate_limit(redis: Redis, settings: Settings) -> RateLimit:
    """The intents each link may take: ``FILESTORE_SHARE_UPLOADS_PER_MINUTE`` a minute."""
    return RateLimit(redis, RATE_PREFIX, settings.shares.uploads_per_minute, RATE_WINDOW_SECONDS)


async def _issue(
    session: AsyncSession,
    storage: Storage,
    settings: Settings,
    target: Target,
    relative: str,
    body: LinkUploadIn,
) -> tuple[PendingFile, str]:
    share = target.share
    files = FileRepository(session, share.owner_id)
    await files.lock_paths()
    folder = await repository.hold_upload_link(session, share.id)
    if folder is None:
        raise ShareNotFound()
    path = await naming.free_path(files, normalize_path(folder + relative))
    intent = UploadIntentIn(path=path, **body.model_dump(exclude={"name"}))
    issue = (
        multipart.issue_multipart
        if multipart.wants_multipart(intent, settings)
        else single.issue_upload
    )
    try:
        pending = await issue(session, storage, settings, share.owner_id, intent)
    except QuotaExceeded:
        raise QuotaExceeded(
            "The file does not fit in the space this folder's owner has left."
        ) from None
    except TooManyUploads:
        raise TooManyUploads(
            "This folder's owner has too many uploads open; retry later.",
            retry_after=settings.jobs.reconcile_interval_seconds,
        ) from None
    except PathTaken:
        raise PathTaken("A file is in the way of that path: choose another name.") from None
    await repository.mark_link_upload(session, pending.upload.id, share.id)
    return pending, folder


async def issue(
    database: Database,
    storage: Storage,
    settings: Settings,
    limit: RateLimit,
    target: Target,
    body: LinkUploadIn,
    address: str,
) -> LinkUploadOut:
    """A pending upload into the link's folder for its owner, with the usual ticket (a single
    PUT/POST, or a presigned multipart upload), under a free name."""
    upload_folder(target)
    share = target.share
    retry_after = await limit.hit(str(share.id))
    if retry_after:
        raise ShareUploadsThrottled(retry_after)
    relative = relative_path(body.name)
    pending, folder = await database.transaction(
        lambda session: _issue(session, storage, settings, target, relative, body)
    )
    path = pending.path.removeprefix(folder)
    log.info(
        "share upload issued",
        extra={
            "share_id": str(share.id),
            "owner_id": str(share.owner_id),
            "upload_id": str(pending.upload.id),
            "path": path,
            "renamed": path != relative,
            "multipart": pending.upload.method == "multipart",
            "declared_size": body.size,
            "address": address,
        },
    )
    return LinkUploadOut(name=pending.name, path=path, upload=pending.upload)


async def link_upload(database: Database, target: Target, upload_id: uuid.UUID) -> Upload:
    """An upload made through this link, read once (a snapshot, as the owner's routes read
    theirs); 404 ``upload_not_found`` for any other."""
    upload_folder(target)
    async with database.reading() as session:
        upload = await repository.find_link_upload(session, target.share.id, upload_id)
    if upload is None:
        raise UploadNotFound()
    return upload


def _state(state: UploadState, folder: str) -> LinkUploadState:
    file = state.file
    return LinkUploadState(
        id=state.id,
        status=state.status,
        reason=state.reason,
        expires_at=state.expires_at,
        completed_at=state.completed_at,
        multipart=state.multipart,
        part_size=state.part_size,
        part_count=state.part_count,
        name=file.name if file else None,
        path=file.path.removeprefix(folder) if file and file.path.startswith(folder) else None,
        size=file.size if file else None,
    )


async def complete(
    database: Database,
    storage: Storage,
    settings: Settings,
    target: Target,
    upload: Upload,
    parts: Sequence[CompletedPartIn] | None,
) -> tuple[UploadState, LinkUploadState]:
    """The owner's ``complete`` (multipart assembly, then the one confirmation), and what the
    uploader is shown of its state."""
    state = await database.transaction(
        lambda session: multipart.complete_multipart(session, storage, settings, upload, parts)
    )
    log.info(
        "share upload completed",
        extra={
            "share_id": str(target.share.id),
            "owner_id": str(target.share.owner_id),
            "upload_id": str(upload.id),
            "status": str(state.status),
        },
    )
    return state, _state(state, upload_folder(target))


async def abort(database: Database, storage: Storage, target: Target, upload: Upload) -> None:
    await database.transaction(lambda session: multipart.abort_upload(session, storage, upload))
    log.info(
        "share upload aborted",
        extra={"share_id": str(target.share.id), "upload_id": str(upload.id)},
    )
