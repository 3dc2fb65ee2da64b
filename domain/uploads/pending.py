"""Opening an upload: the file row locked (or created) and a pending upload recorded for it."""

import uuid
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from domain.errors import PathTaken, QuotaExceeded, TooManyUploads, Unauthorized
from domain.files.paths import enclosing_folders, file_path, file_paths_above
from domain.files.repository import FileRepository
from domain.folders.repository import FolderRepository
from domain.models import File, Upload, UploadKind
from infra import metrics
from infra.config import Settings
from infra.storage.adapter import Storage


async def claim_path(
    files: FileRepository, path: str, name: str, own_name: str | None
) -> tuple[str, str]:
    """The path and name a new upload to ``path`` takes, under the owner's path lock.

    A path that names an existing folder is that folder: the file goes inside it and keeps its
    own name (``own_name``, else the path's last segment). A path below an existing file is 409
    ``path_taken``: a name is a file or a folder, never both. The folders that enclose the
    path are made (or marked modified).
    """
    await files.lock_paths()
    is_folder, taken = await files.path_claims(path, file_paths_above(path))
    if taken is not None:
        raise PathTaken(f"'{taken}' is a file, so nothing can be stored below it.")
    if is_folder:
        # Its parents are the folder's and the folder itself: none of them is a file.
        path, name = file_path(path + "/", own_name or name)
        if (await files.path_claims(path, []))[0]:
            raise PathTaken(f"'{path}' is a folder: name the file inside it.")
    await FolderRepository(files.session, files.owner_id).ensure(enclosing_folders(path))
    return path, name


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
    reserve: int | None = None,
    own_name: str | None = None,
) -> tuple[File, Upload, int]:
    """Lock (or create) the file row, record a pending upload for it and reserve its bytes
    against the quota; returns the bytes reserved. Over quota, or past the open uploads a user
    may hold, the caller's rollback takes the upload back; an owner that does not exist is not
    authenticated.

    An upload reserves its declared size, all of it or nothing (413). One that declares no
    size reserves ``reserve`` bytes (default ``undeclared_upload_reservation_bytes``), or what
    the quota has left when that is less, and needs at least one byte of room. The bytes of
    the content an upload would replace are not credited: storage holds both until the new
    one is confirmed, and the quota bounds what storage holds. The path is claimed first
    (``claim_path``): the file row returned has the path the upload really took.
    """
    path, name = await claim_path(files, path, name, own_name)
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
    file, upload = opened
    wanted = declared_size
    if wanted is None:
        wanted = min(
            reserve or settings.uploads.undeclared_upload_reservation_bytes,
            settings.uploads.max_upload_bytes,
        )
    quota = settings.uploads.user_quota_bytes
    grant = await files.reserve(upload.id, wanted, quota)
    if grant.open_uploads > settings.uploads.max_open_uploads_per_user:
        raise TooManyUploads(
            f"You have {grant.open_uploads - 1} uploads open, the most allowed: finish, abort "
            "or let some of them expire first.",
            retry_after=settings.jobs.reconcile_interval_seconds,
        )
    if grant.reserved <= 0 or (declared_size is not None and grant.reserved < declared_size):
        raise QuotaExceeded.over(
            grant.room(quota), reserved=grant.owner_reserved, freeable=grant.freeable()
        )
    set_committed_value(upload, "reserved_bytes", grant.reserved)
    metrics.upload_issued(files.session, kind)
    return file, upload, grant.reserved


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
    reserve: int | None = None,
    own_name: str | None = None,
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
        expires_at=url_expires_at + timedelta(seconds=settings.uploads.upload_grace_seconds),
        declared_size=declared_size,
        sha256=sha256,
        reserve=reserve,
        own_name=own_name,
    )
