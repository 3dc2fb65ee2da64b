"""Share links (§15): an owner makes, lists and revokes them; anyone with a link sees and
downloads what it names, and nothing else.

Decided:
- Every dead link answers the same 404 ``share_not_found``: never existed, expired, revoked,
  used up, or its target deleted (the row cascades away with the file or folder row).
- A share names its target by id, so it follows moves; its path is read on every use.
- A folder share reaches exactly the files below the folder: a relative ``path`` is
  normalised with the paths' own rules (no ``.``/``..`` segments, no control characters) and
  refused when absolute or holding a backslash, then appended to the folder's current path.
- A download (a file, or a folder's zip) counts against ``max_downloads`` in one statement
  that also checks it (``UPDATE … WHERE downloads < max_downloads``); viewing the page does not.
- Nothing is cached, in Redis or in memory: a revoked link stops at the next request.
- The link's URL is shown once, in the answer to ``POST /shares``: only the token's hash is
  kept.
- An upload link (``upload: true``) names a folder by a path ending with ``/`` (422
  ``upload_link_needs_folder`` otherwise), made explicit (created if missing) so it is there
  while empty; it counts no downloads, so ``max_downloads`` is 422. It shows the folder's name
  only: its ``download`` and ``zip`` are 404 ``share_not_found``, as a dead link's.
  Its uploads: ``domain.shares.uploads``.
- Dead links (expired, or used up and then expired) stay in the owner's list
  ``FILESTORE_SHARE_PURGE_AFTER_SECONDS`` after their expiry; the purge then deletes them. A
  revoked link is deleted at once.
"""

import asyncio
import logging
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from domain.errors import (
    FileNotFound,
    FolderNotFound,
    InvalidPath,
    ShareLocked,
    ShareNotFound,
    UploadLinkNeedsFolder,
    ValidationFailed,
    WrongSharePassword,
)
from domain.files.paths import is_folder, last_segment, normalize_path, parse_reference
from domain.files.repository import FileRepository
from domain.files.schemas import decode_cursor, encode_cursor
from domain.folders.repository import FolderRepository
from domain.folders.service import make_folder
from domain.models import File, Folder, Share, User
from domain.shares import repository, tokens
from domain.shares.repository import ShareRepository, Target
from domain.shares.schemas import (
    PublicFile,
    PublicFileShare,
    PublicFolderShare,
    PublicUploadShare,
    ShareIn,
    ShareList,
    ShareOut,
)
from domain.shares.tally import DownloadTally
from domain.users.security import hash_password, verify_password
from infra.config import Settings
from infra.db import Database
from infra.ratelimit import AuthThrottle

log = logging.getLogger(__name__)

DEFAULT_SECONDS = 7 * 24 * 3600
THROTTLE_PREFIX = "fs:sharefail"


def _out(target: Target, url: str | None = None) -> ShareOut:
    share = target.share
    return ShareOut(
        id=share.id,
        url=url,
        path=target.path,
        kind="file" if share.file_id is not None else "folder",
        expires_at=share.expires_at,
        has_password=share.password_hash is not None,
        max_downloads=share.max_downloads,
        downloads=share.downloads,
        upload=share.upload,
        created_at=share.created_at,
    )


async def _target(session: AsyncSession, owner_id: uuid.UUID, raw: str) -> File | Folder:
    """What ``raw`` names: a file (path or id) or a listed folder (a path ending with ``/``,
    or naming an existing folder, as moves read it)."""
    folders = FolderRepository(session, owner_id)
    if raw.startswith("/") and raw.endswith("/"):
        path = normalize_path(raw)
        if path == "/":
            raise InvalidPath("The root cannot be shared: share a folder or a file.")
        folder = await folders.find_listed(path)
        if folder is None:
            raise FolderNotFound()
        return folder
    reference = parse_reference(raw)
    file = await FileRepository(session, owner_id).find(reference)
    if file is not None:
        return file
    if isinstance(reference, str):
        folder = await folders.find_listed(reference + "/")
        if folder is not None:
            return folder
    raise FileNotFound()


def _lifetime(body: ShareIn, settings: Settings) -> int:
    if body.expires_in is None:
        return min(DEFAULT_SECONDS, settings.shares.max_seconds)
    if body.expires_in > settings.shares.max_seconds:
        raise ValidationFailed(
            f"expires_in: at most {settings.shares.max_seconds} seconds "
            "(FILESTORE_SHARE_MAX_SECONDS)."
        )
    return body.expires_in


async def _upload_folder(session: AsyncSession, user: User, body: ShareIn) -> Folder:
    """An upload link's folder, made explicit (created if missing): it stays while empty."""
    if body.max_downloads is not None:
        raise ValidationFailed("max_downloads: an upload link counts no downloads.")
    if not (body.path.startswith("/") and body.path.endswith("/")):
        raise UploadLinkNeedsFolder()
    if normalize_path(body.path) == "/":
        raise InvalidPath("The root cannot be shared: share a folder or a file.")
    made, _ = await make_folder(session, user, body.path)
    folder = await FolderRepository(session, user.id).find_listed(made.path)
    assert folder is not None
    return folder


async def create(
    session: AsyncSession, user: User, body: ShareIn, settings: Settings, base_url: str
) -> ShareOut:
    """A new link to one of the user's files or folders; its URL carries the only copy of the
    token."""
    seconds = _lifetime(body, settings)
    password_hash = await asyncio.to_thread(hash_password, body.password) if body.password else None
    # Under the path lock, the target cannot be deleted between the check and the insert.
    await FileRepository(session, user.id).lock_paths()
    target = (
        await _upload_folder(session, user, body)
        if body.upload
        else await _target(session, user.id, body.path)
    )
    token = tokens.new_token()
    token_hash = tokens.token_hash(token)
    assert token_hash is not None
    share = await ShareRepository(session, user.id).add(
        Share(
            owner_id=user.id,
            file_id=target.id if isinstance(target, File) else None,
            folder_id=target.id if isinstance(target, Folder) else None,
            token_hash=token_hash,
            password_hash=password_hash,
            expires_at=datetime.now(UTC) + timedelta(seconds=seconds),
            max_downloads=body.max_downloads,
            upload=body.upload,
        )
    )
    found = (
        Target(share, target, None)
        if isinstance(target, File)
        else Target(share, None, target.path)
    )
    out = _out(found, f"{base_url.rstrip('/')}/s/{token}")
    log.info(
        "share created",
        extra={
            "share_id": str(share.id),
            "user_id": str(user.id),
            "kind": out.kind,
            "path": out.path,
            "expires_at": out.expires_at.isoformat(),
            "has_password": out.has_password,
            "max_downloads": out.max_downloads,
            "upload": out.upload,
        },
    )
    return out


async def list_shares(database: Database, tally: DownloadTally, user: User) -> ShareList:
    """The user's shares, newest first, each with its target's current path and its
    downloads (with those this process has not written yet)."""
    async with database.reading() as session:
        found = await ShareRepository(session, user.id).all()
    listed = [_out(target) for target in found]
    for share in listed:
        share.downloads += tally.pending(share.id)
    return ShareList(shares=listed)


async def revoke(session: AsyncSession, user: User, share_id: uuid.UUID) -> None:
    """End a link at once; another user's share is as unknown as a missing one."""
    if not await ShareRepository(session, user.id).revoke(share_id):
        raise ShareNotFound()
    log.info("share revoked", extra={"share_id": str(share_id), "user_id": str(user.id)})


# -- what a link reaches -------------------------------------------------------------------


async def open_share(database: Database, token: str) -> Target:
    """The live share ``token`` names, with its target as it is now; ``ShareNotFound`` for
    anything else, whatever the reason."""
    token_hash = tokens.token_hash(token)
    if token_hash is None:
        raise ShareNotFound()
    async with database.reading() as session:
        target = await repository.find_live(session, token_hash)
        if target is None:
            raise ShareNotFound()
        if target.folder_path is not None:
            listed = await FolderRepository(session, target.share.owner_id).find_listed(
                target.folder_path
            )
            if listed is None:
                raise ShareNotFound()
    return target


def is_unlocked(target: Target, cookie: str | None, settings: Settings) -> bool:
    if target.share.password_hash is None:
        return True
    secret = settings.auth.jwt_secret.get_secret_value()
    return tokens.proves_unlock(secret, target.share.id, cookie)


def require_unlocked(target: Target, cookie: str | None, settings: Settings) -> None:
    if not is_unlocked(target, cookie, settings):
        raise ShareLocked()


async def unlock(
    target: Target, password: str, throttle: AuthThrottle, address: str, settings: Settings
) -> str | None:
    """Check a share's password (throttled as logins are, per share and per address): the
    cookie value that proves it, ``None`` for a share without one."""
    share = target.share
    if share.password_hash is None:
        return None
    ids = {"share_id": str(share.id), "owner_id": str(share.owner_id), "address": address}
    await throttle.attempt(str(share.id), address)
    if not await asyncio.to_thread(verify_password, password, share.password_hash):
        log.info("share unlock failed", extra=ids)
        raise WrongSharePassword()
    await throttle.succeeded(str(share.id), address)
    log.info("share unlocked", extra=ids)
    secret = settings.auth.jwt_secret.get_secret_value()
    return tokens.unlock_proof(secret, share.id, settings.shares.unlock_seconds)


def relative_path(raw: str) -> str:
    """A path below the shared folder (``sub/2.txt``), normalised by the paths' rules; a
    path that is absolute, holds a backslash or a ``.``/``..`` segment, or names a folder is
    ``InvalidPath``. The result has no leading ``/``."""
    if not raw:
        raise InvalidPath("Give the file's path relative to the shared folder, e.g. sub/2.txt.")
    if raw.startswith("/"):
        raise InvalidPath("The path is relative to the shared folder: no leading '/'.")
    if "\\" in raw:
        raise InvalidPath("The path may not contain a backslash.")
    path = normalize_path("/" + raw)
    if is_folder(path) or path == "/":
        raise InvalidPath("The path names a folder; give a file's path.")
    return path[1:]


async def view(
    database: Database, target: Target, cursor: str | None, limit: int
) -> PublicFileShare | PublicFolderShare | PublicUploadShare:
    """What a link shows: the file, a page of the files below the folder (paths relative to
    it), or for an upload link the folder's name alone."""
    has_password = target.share.password_hash is not None
    if target.share.upload:
        return PublicUploadShare(name=last_segment(target.path), has_password=has_password)
    if target.file is not None:
        file = target.file
        return PublicFileShare(name=file.name, size=file.size or 0, has_password=has_password)
    folder = target.path
    after = folder + relative_path(decode_cursor(cursor)) if cursor else None
    async with database.reading() as session:
        rows = await FileRepository(session, target.share.owner_id).page(folder, after, limit + 1)
    files = [
        PublicFile(path=row.path.removeprefix(folder), name=row.name, size=row.size or 0)
        for row in rows[:limit]
    ]
    return PublicFolderShare(
        name=last_segment(folder),
        files=files,
        next_cursor=encode_cursor(files[-1].path) if len(rows) > limit else None,
        has_password=has_password,
    )


async def file_to_download(database: Database, target: Target, raw: str | None) -> File:
    """The file a download names: a file share's own, or ``raw`` below a folder share. An
    upload link has nothing to download: 404, as a dead link."""
    if target.share.upload:
        raise ShareNotFound()
    if target.file is not None:
        if raw is not None:
            raise InvalidPath("This share is a file: download it without a path.")
        return target.file
    if raw is None:
        raise InvalidPath("This share is a folder: give path=<file relative to it>, or use zip.")
    path = target.path + relative_path(raw)
    async with database.reading() as session:
        file = await FileRepository(session, target.share.owner_id).find(path)
    if file is None:
        raise FileNotFound()
    return file


def folder_of(target: Target) -> str:
    if target.share.upload:
        raise ShareNotFound()
    if target.folder_path is None:
        raise InvalidPath("This share is a file: download it with /s/{token}/download.")
    return target.folder_path


async def file_download(
    database: Database,
    tally: DownloadTally,
    token: str,
    cookie: str | None,
    settings: Settings,
    address: str,
) -> repository.SharedFile | None:
    """A file share's download, counted, in the link's common case (a live file share,
    unlocked if it has a password) with one lookup; ``None`` sends the caller to the general
    path (``open_share`` and friends), which handles folders and says why a link fails."""
    token_hash = tokens.token_hash(token)
    if token_hash is None:
        return None
    unlocked = tokens.unlocked_share(settings.auth.jwt_secret.get_secret_value(), cookie)
    async with database.single_read() as session:
        shared = await repository.find_file_share(session, token_hash, unlocked)
    if shared is None:
        return None
    ids = (shared.share_id, shared.owner_id, shared.downloads, shared.max_downloads)
    # Used up since the lookup: the general path answers it as it answers every dead link.
    return shared if await _count(database, tally, *ids, "file", address) else None


async def _count(
    database: Database,
    tally: DownloadTally,
    share_id: uuid.UUID,
    owner_id: uuid.UUID,
    downloads: int,
    max_downloads: int | None,
    what: str,
    address: str,
) -> bool:
    """Count a download: against the limit in the database, or in the tally for a share
    without one. False when it was the one too many (nothing counted)."""
    if max_downloads is None:
        downloads += tally.add(share_id)
    else:
        counted = await database.transaction(
            lambda session: repository.count_download(session, share_id)
        )
        if counted is None:
            return False
        downloads = counted
    _log_download(share_id, owner_id, downloads, max_downloads, what, address)
    return True


def _log_download(
    share_id: uuid.UUID,
    owner_id: uuid.UUID,
    downloads: int,
    max_downloads: int | None,
    what: str,
    address: str,
) -> None:
    log.info(
        "share downloaded",
        extra={
            "share_id": str(share_id),
            "owner_id": str(owner_id),
            "what": what,
            "downloads": downloads,
            "max_downloads": max_downloads,
            "address": address,
        },
    )


async def count_download(
    database: Database, tally: DownloadTally, target: Target, what: str, address: str
) -> None:
    """Count a download of an opened share (``ShareNotFound`` when it was one too many)."""
    share = target.share
    ids = (share.id, share.owner_id, share.downloads, share.max_downloads)
    if not await _count(database, tally, *ids, what, address):
        raise ShareNotFound()


async def purge_dead(database: Database, settings: Settings) -> int:
    """Delete the links that expired ``FILESTORE_SHARE_PURGE_AFTER_SECONDS`` ago, at most
    ``FILESTORE_PURGE_BATCH_SIZE`` a run, in a transaction of their own (a share row comes after
    every other lock; see ``domain.models``). How many went."""
    before = datetime.now(UTC) - timedelta(seconds=settings.shares.purge_after_seconds)
    purged = await database.transaction(
        lambda session: repository.purge_dead(session, before, settings.retention.purge_batch_size)
    )
    if purged:
        log.info("shares purged", extra={"shares": purged, "expired_before": before.isoformat()})
    return purged
