"""Folders a person can use: a folder's view, new folders, moves, copies, folder deletes, search.

Object keys are opaque, so a move rewrites paths and never touches storage, and a copy points
at the same (immutable) object: it costs rows, not bytes. Every write runs in the caller's
transaction under the owner's path lock, then locks files, then (``account_change``) the user,
which bumps the cache generation: the order of ``domain.models``.
"""

import logging
import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from domain.errors import (
    FileNotFound,
    FolderNotFound,
    InvalidCursor,
    InvalidPath,
    PathTaken,
    QuotaExceeded,
    ValidationFailed,
)
from domain.files.paths import (
    enclosing_folders,
    file_paths_above,
    is_folder,
    last_segment,
    normalize_path,
    parse_reference,
)
from domain.files.repository import FileRepository
from domain.files.schemas import FileList, FileOut, decode_cursor, encode_cursor
from domain.files.service import cache_name
from domain.folders import targets
from domain.folders.repository import FolderRepository
from domain.folders.schemas import (
    FolderCopied,
    FolderDeleted,
    FolderMoved,
    FolderOut,
    FolderView,
    TransferIn,
)
from domain.models import File, User
from domain.text import is_clean_text
from domain.trash import service as trash
from domain.trash.service import Retention
from infra.cache import Cache
from infra.config import Settings
from infra.db import Database

log = logging.getLogger(__name__)


def _child_cursor(folder: str, cursor: str) -> str:
    """The child of ``folder`` a view's cursor continues after (a folder's path ends with
    ``/``: the folders continue; else the files do)."""
    after = decode_cursor(cursor)
    rest = after[len(folder) :] if after.startswith(folder) else ""
    if not rest.rstrip("/") or "/" in rest.rstrip("/"):
        raise InvalidCursor()
    return after


async def view_folder(
    database: Database, cache: Cache, user: User, folder: str, cursor: str | None, limit: int
) -> bytes:
    """A page of ``folder``'s direct children as JSON bytes: its folders by name, then its files
    by name; each group is one range of an ``(owner_id, parent, name)`` index."""
    key = Cache.key(user.id, user.generation, cache_name("folder", folder, cursor, limit))
    cached = await cache.get_raw(key)
    if cached is not None:
        return cached
    after = _child_cursor(folder, cursor) if cursor else None
    async with database.reading() as session:
        folders = FolderRepository(session, user.id)
        if folder != "/" and await folders.find_listed(folder) is None:
            raise FolderNotFound()
        children = []
        if after is None or is_folder(after):
            skip = last_segment(after) if after else None
            children = list(await folders.child_folders(folder, skip, limit + 1))
        next_cursor = None
        files: list[File] = []
        if len(children) > limit:
            children = children[:limit]
            next_cursor = children[-1].path
        else:
            room = limit - len(children)
            skip = last_segment(after) if after and not is_folder(after) else None
            files = list(await folders.child_files(folder, skip, room + 1))
            if len(files) > room:
                files = files[:room]
                next_cursor = files[-1].path if files else children[-1].path
        view = FolderView(
            account=user.login,
            path=folder,
            folders=[FolderOut.of(child) for child in children],
            files=[FileOut.of(file) for file in files],
            next_cursor=encode_cursor(next_cursor) if next_cursor else None,
        )
    page = view.model_dump_json().encode()
    await cache.set_raw(key, page)
    return page


def _folder_path(raw: str) -> str:
    path = normalize_path(raw)
    if not is_folder(path):
        raise InvalidPath("A folder's path ends with '/'.")
    if path == "/":
        raise InvalidPath("The root folder always exists and cannot be moved or deleted.")
    return path


async def make_folder(session: AsyncSession, user: User, raw: str) -> tuple[FolderOut, bool]:
    """An explicit folder (listed while empty); whether it is new (it was not listed)."""
    path = _folder_path(raw)
    files = FileRepository(session, user.id)
    await files.lock_paths()
    existed, taken = await files.path_claims(path, [*file_paths_above(path), path[:-1]])
    if taken is not None:
        raise PathTaken(f"'{taken}' is a file, so it cannot be a folder.")
    folders = FolderRepository(session, user.id)
    await folders.ensure(enclosing_folders(path))
    folder = await folders.make_explicit(path)
    await files.account_change(0)
    if not existed:
        log.info("folder created", extra={"user_id": str(user.id), "path": path})
    return FolderOut.of(folder), not existed


async def _replace(files: FileRepository, replaced: File | None, retention: Retention) -> None:
    """The file an overwrite replaces leaves its path: to the trash (or, with no retention, for
    good), accounted there."""
    if replaced is not None:
        await trash.remove_file(files.session, replaced, retention, "overwritten by a move or copy")


async def _source_file(files: FileRepository, reference: uuid.UUID | str) -> File:
    found = await files.find(reference)
    file = await files.lock(found.id) if found else None
    if file is None or file.object_key is None:
        raise FileNotFound()
    return file


async def _source_folder(folders: FolderRepository, raw: str) -> str:
    source = _folder_path(raw)
    if await folders.find_listed(source) is None:
        raise FolderNotFound()
    return source


def _is_folder_reference(raw: str) -> bool:
    return raw.startswith("/") and raw.endswith("/")


async def move(
    session: AsyncSession, user: User, body: TransferIn, retention: Retention
) -> FileOut | FolderMoved:
    """Move (or rename) a file or a folder: paths change, ids, dates and objects stay."""
    files = FileRepository(session, user.id)
    folders = FolderRepository(session, user.id)
    await files.lock_paths()
    ids = {"user_id": str(user.id)}
    if _is_folder_reference(body.source):
        source = await _source_folder(folders, body.source)
        target = await targets.resolve(files, body.to, last_segment(source), folder=True)
        if target == source:
            return FolderMoved(moved=0, path=source)
        await targets.free_folder(files, folders, target, source=source)
        moved = await folders.move(source, target)
        await folders.ensure(enclosing_folders(target))
        await folders.prune(enclosing_folders(source))
        await files.account_change(0)
        log.info("folder moved", extra={**ids, "from": source, "to": target, "files": moved})
        return FolderMoved(moved=moved, path=target)
    file = await _source_file(files, parse_reference(body.source))
    target = await targets.resolve(files, body.to, file.name, folder=False)
    if target == file.path:
        return FileOut.of(file)
    replaced = await targets.free_file(files, target, overwrite=body.overwrite)
    await _replace(files, replaced, retention)
    source = file.path
    file.path, file.name = target, last_segment(target)
    await session.flush()
    await folders.ensure(enclosing_folders(target))
    await folders.prune(enclosing_folders(source))
    await files.account_change(0)
    log.info("file moved", extra={**ids, "file_id": str(file.id), "from": source, "to": target})
    return FileOut.of(file)


async def _check_quota(files: FileRepository, added: int, settings: Settings) -> None:
    held = await files.lock_used_bytes()
    if held.used + held.reserved + added > settings.uploads.user_quota_bytes:
        raise QuotaExceeded(
            f"The copy needs {added} bytes and the quota has "
            f"{max(settings.uploads.user_quota_bytes - held.used - held.reserved, 0)} left"
            + (
                f" ({held.reserved} bytes are reserved by uploads in progress)."
                if held.reserved
                else "."
            )
            + held.freeable()
        )


async def copy(
    session: AsyncSession, user: User, body: TransferIn, settings: Settings
) -> FileOut | FolderCopied:
    """Copy a file or a folder: new ids and paths, the same objects, counted against the quota."""
    files = FileRepository(session, user.id)
    folders = FolderRepository(session, user.id)
    await files.lock_paths()
    ids = {"user_id": str(user.id)}
    if _is_folder_reference(body.source):
        source = await _source_folder(folders, body.source)
        target = await targets.resolve(files, body.to, last_segment(source), folder=True)
        if target == source:
            raise PathTaken(f"'{target}' exists; folders are not merged.")
        await targets.free_folder(files, folders, target, source=source)
        copied = await folders.copy(source, target)
        await folders.ensure([*enclosing_folders(target), target])
        await _check_quota(files, copied.bytes, settings)
        await files.account_change(copied.bytes)
        log.info(
            "folder copied",
            extra={**ids, "from": source, "to": target, "files": copied.files},
        )
        return FolderCopied(copied=copied.files, path=target)
    file = await _source_file(files, parse_reference(body.source))
    target = await targets.resolve(files, body.to, file.name, folder=False)
    if target == file.path:
        raise PathTaken(f"'{target}' is the file itself.")
    replaced = await targets.free_file(files, target, overwrite=body.overwrite)
    retention = Retention.of(settings)
    frees = (replaced.size or 0) if replaced and not retention.trash_seconds else 0
    await _check_quota(files, (file.size or 0) - frees, settings)
    await _replace(files, replaced, retention)
    await folders.ensure(enclosing_folders(target))
    copy = await files.add_copy(file, target, last_segment(target))
    await files.account_change(file.size or 0)
    log.info(
        "file copied",
        extra={**ids, "file_id": str(copy.id), "source_id": str(file.id), "to": target},
    )
    return FileOut.of(copy)


async def delete_folder(
    session: AsyncSession, user: User, raw: str, retention: Retention
) -> FolderDeleted:
    """Delete a folder and everything below it in one transaction: to the trash as one entry,
    or with no retention for good (the objects through the outbox, whose drain keeps any that
    a copy elsewhere still references)."""
    files = FileRepository(session, user.id)
    folders = FolderRepository(session, user.id)
    await files.lock_paths()
    folder = await _source_folder(folders, raw)
    deleted = await trash.remove_folder(session, user.id, folder, retention, "folder deleted")
    await folders.prune(enclosing_folders(folder))
    return FolderDeleted(deleted=deleted.files)


async def search(
    database: Database,
    cache: Cache,
    user: User,
    text: str,
    prefix: str | None,
    cursor: str | None,
    limit: int,
    scan_rows: int,
) -> bytes:
    """Files whose name contains ``text`` (case-insensitive), by path, as JSON bytes."""
    if not text.strip() or not is_clean_text(text):
        raise ValidationFailed("q: give some text to search for (no NUL or control characters).")
    key = Cache.key(user.id, user.generation, cache_name("search", text, prefix, cursor, limit))
    cached = await cache.get_raw(key)
    if cached is not None:
        return cached
    after = decode_cursor(cursor) if cursor else None
    async with database.reading() as session:
        rows = await FileRepository(session, user.id).search(
            text, prefix, after, limit + 1, scan_rows
        )
        found = FileList(
            account=user.login,
            files=[FileOut.of(row) for row in rows[:limit]],
            next_cursor=encode_cursor(rows[limit - 1].path) if len(rows) > limit else None,
        )
    page = found.model_dump_json().encode()
    await cache.set_raw(key, page)
    return page
