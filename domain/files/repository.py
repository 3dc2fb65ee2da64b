"""Every query on files and uploads, scoped to one owner: another user's file does not exist."""

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Executable,
    Text,
    bindparam,
    delete,
    func,
    select,
    union_all,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from domain.files.paths import subtree
from domain.models import (
    File,
    FileVersion,
    Folder,
    TrashedFile,
    Upload,
    UploadKind,
    UploadStatus,
    User,
)


def _like_prefix(prefix: str) -> str:
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


_UPLOAD_COLUMNS = (
    "id",
    "owner_id",
    "object_key",
    "status",
    "kind",
    "declared_size",
    "content_type",
    "sha256",
    "expires_at",
)


def _open_upload() -> Executable:
    """The file row for a path (created if new) locked and a pending upload inserted for it:
    one statement, one round trip, built once (the quota is ``_RESERVE``'s).

    ``ON CONFLICT DO UPDATE`` (a no-op update) returns and locks an existing row, where
    ``DO NOTHING`` would need a second ``SELECT ... FOR UPDATE``; the rows come from the CTEs'
    ``RETURNING``, since the statement's snapshot cannot see rows it inserts. The file is only
    inserted for an owner that exists, so an unknown owner gets no row back (not a foreign-key
    error): the token's user is not loaded before.
    """
    owner = select(User.id).where(User.id == bindparam("owner_id")).cte("owner")
    insert_file = insert(File).from_select(
        ["id", "owner_id", "path", "name"],
        select(
            bindparam("new_file_id", type_=File.id.type),
            owner.c.id,
            bindparam("path", type_=File.path.type),
            bindparam("name", type_=File.name.type),
        ),
    )
    upserted = (
        insert_file.on_conflict_do_update(
            index_elements=[File.owner_id, File.path], set_={"path": insert_file.excluded.path}
        )
        .returning(*File.__table__.columns)
        .cte("upserted")
    )
    columns = Upload.__table__.columns
    inserted = (
        insert(Upload)
        .from_select(
            ["file_id", *_UPLOAD_COLUMNS],
            select(
                upserted.c.id,
                *(bindparam(name, type_=columns[name].type) for name in _UPLOAD_COLUMNS),
            ),
        )
        .returning(*columns)
        .cte("inserted")
    )
    file = aliased(File, upserted)
    upload = aliased(Upload, inserted)
    return (
        select(file, upload)
        .select_from(upserted)
        .join(inserted, inserted.c.file_id == upserted.c.id)
        .join(owner, owner.c.id == upserted.c.owner_id)
        .execution_options(populate_existing=True)
    )


_OPEN_UPLOAD = _open_upload()


def _reserve() -> Executable:
    """Grant a pending upload up to ``wanted`` more bytes of what its owner's quota has left,
    with the owner's stored and reserved bytes before this grant and open uploads: one
    statement, built once.

    The owner is locked (``FOR NO KEY UPDATE`` returns the latest committed row, so concurrent
    grants see each other) after the file and the upload, as the lock order says: the caller
    holds the upload already (it is this transaction's own, or locked first). Not ``FOR
    UPDATE``: that waits for the key-share locks concurrent inserts of the owner's files and
    uploads hold (their foreign keys) while they wait for this one's lock: a deadlock. The
    trigger adds the grant to the owner's ``reserved_bytes``.
    """
    owner = (
        select(
            User.id,
            User.used_bytes,
            User.reserved_bytes,
            User.open_uploads,
            User.version_bytes,
            User.trash_bytes,
        )
        .where(User.id == bindparam("owner"))
        .with_for_update(key_share=True)
        .cte("owner")
    )
    quota = bindparam("quota", type_=BigInteger())
    room = func.greatest(quota - owner.c.used_bytes - owner.c.reserved_bytes, 0)
    return (
        update(Upload)
        .where(Upload.id == bindparam("upload"), Upload.owner_id == owner.c.id)
        .values(
            reserved_bytes=Upload.reserved_bytes
            + func.least(bindparam("wanted", type_=BigInteger()), room)
        )
        .returning(
            Upload.reserved_bytes,
            owner.c.used_bytes,
            owner.c.reserved_bytes,
            owner.c.open_uploads,
            owner.c.version_bytes,
            owner.c.trash_bytes,
        )
        .execution_options(synchronize_session=False)
    )


_RESERVE = _reserve()

# Path-creating transactions of one owner take this lock first (before any row lock), so that
# "is it a folder, is a parent a file" and the insert that follows cannot interleave.
_LOCK_PATHS = select(
    func.pg_advisory_xact_lock(
        func.hashtext("filestore.paths"), func.hashtext(func.cast(bindparam("owner"), Text))
    )
)
# A file row without content and with no upload pending for it: nothing will ever fill it.
CONTENTLESS = File.object_key.is_(None) & ~(
    select(Upload.id)
    .where(Upload.file_id == File.id, Upload.status == UploadStatus.pending)
    .exists()
)
# A file row that holds its path: with content, or with an upload pending for it.
_LIVE = ~CONTENTLESS

# The hot statements of confirmation, built once: building a select per call shows in profiles.
_UPLOAD_BY_KEY = select(Upload).where(Upload.object_key == bindparam("object_key"))
_UPLOAD_BY_KEY_LOCKING_FILE = (
    select(Upload, File)
    .join(File, File.id == Upload.file_id)
    .where(Upload.object_key == bindparam("object_key"))
    .with_for_update(of=File)
    .execution_options(populate_existing=True)
)
_LOCK_FILE = (
    select(File)
    .where(File.id == bindparam("file_id"))
    .with_for_update()
    .execution_options(populate_existing=True)
)
_LOCK_UPLOAD = (
    select(Upload)
    .where(Upload.id == bindparam("upload_id"))
    .with_for_update()
    .execution_options(populate_existing=True)
)
_LOCK_USED_BYTES = (
    select(User.used_bytes, User.reserved_bytes, User.version_bytes, User.trash_bytes)
    .where(User.id == bindparam("owner_id"))
    .with_for_update(key_share=True)
)
# No User object is loaded where this runs: nothing in the session to synchronise.
_ACCOUNT_CHANGE = (
    update(User)
    .where(User.id == bindparam("owner_id"))
    .values(
        generation=User.generation + 1,
        used_bytes=User.used_bytes + bindparam("size_delta", type_=User.used_bytes.type),
        version_bytes=User.version_bytes + bindparam("versions_delta", type_=BigInteger()),
        trash_bytes=User.trash_bytes + bindparam("trash_delta", type_=BigInteger()),
    )
    .execution_options(synchronize_session=False)
)


def freeable(versions: int, trash: int) -> str:
    """What an owner could free, said in a quota error ("" when nothing)."""
    parts = [
        f"{size} bytes in {where}"
        for size, where in ((trash, "the trash (DELETE /trash)"), (versions, "old versions"))
        if size
    ]
    return f" Freeable: {' and '.join(parts)}." if parts else ""


@dataclass(frozen=True, slots=True)
class Grant:
    """What a reservation got: the upload's reservation now, its owner's stored and reserved
    bytes before this grant, and the owner's open uploads (this one included)."""

    reserved: int
    owner_used: int
    owner_reserved: int
    open_uploads: int
    owner_versions: int = 0
    owner_trash: int = 0

    def room(self, quota: int) -> int:
        """What the quota had left for this grant."""
        return max(quota - self.owner_used - self.owner_reserved, 0)

    def freeable(self) -> str:
        return freeable(self.owner_versions, self.owner_trash)


@dataclass(frozen=True, slots=True)
class Held:
    """What an owner keeps (``used``: files, versions and trash, with the two last apart) and
    what pending uploads reserve."""

    used: int
    reserved: int
    versions: int
    trash: int

    def freeable(self) -> str:
        return freeable(self.versions, self.trash)


class FileRepository:
    def __init__(self, session: AsyncSession, owner_id: uuid.UUID) -> None:
        self.session = session
        self.owner_id = owner_id

    async def find(self, reference: uuid.UUID | str) -> File | None:
        """A file with content, by id or by normalised path."""
        match = File.id == reference if isinstance(reference, uuid.UUID) else File.path == reference
        query = select(File).where(
            File.owner_id == self.owner_id, match, File.object_key.is_not(None)
        )
        return (await self.session.execute(query)).scalar_one_or_none()

    async def page(self, prefix: str | None, after: str | None, limit: int) -> Sequence[File]:
        query = select(File).where(File.owner_id == self.owner_id, File.object_key.is_not(None))
        if prefix and prefix != "/":
            query = query.where(File.path.like(_like_prefix(prefix), escape="\\"))
        if after is not None:
            query = query.where(File.path > after)
        query = query.order_by(File.path).limit(limit)
        return (await self.session.execute(query)).scalars().all()

    async def open_upload(
        self, path: str, name: str, upload: dict[str, object]
    ) -> tuple[File, Upload] | None:
        """The file row for ``path`` (created without content if new) locked for update and a
        pending upload for it made of ``upload`` (its column values); ``None`` if the owner
        does not exist."""
        values = {
            **upload,
            "new_file_id": uuid.uuid4(),
            "owner_id": self.owner_id,
            "path": path,
            "name": name,
            "status": UploadStatus.pending,
        }
        row = (await self.session.execute(_OPEN_UPLOAD, values)).one_or_none()
        if row is None:
            return None
        file, opened = row
        return file, opened

    async def reserve(self, upload_id: uuid.UUID, wanted: int, quota: int) -> Grant:
        """Add up to ``wanted`` bytes (what the quota has left) to an upload's reservation."""
        values = {"upload": upload_id, "owner": self.owner_id, "wanted": wanted}
        row = (await self.session.execute(_RESERVE, {**values, "quota": quota})).one()
        return Grant(*(int(value) for value in row))

    async def lock_paths(self) -> None:
        """Serialise this owner's path-creating transactions (see ``_LOCK_PATHS``)."""
        await self.session.execute(_LOCK_PATHS, {"owner": str(self.owner_id)})

    async def path_claims(self, path: str, parents: Sequence[str]) -> tuple[bool, str | None]:
        """Whether ``path`` is a folder (live files or an explicit folder below it: a range of
        the owner/path indexes), and the first of ``parents`` that is a live file: one round
        trip."""
        low, high = subtree(path.rstrip("/") + "/")
        folder = (
            select(File.id)
            .where(File.owner_id == self.owner_id, File.path >= low, File.path < high, _LIVE)
            .exists()
        )
        explicit = (
            select(Folder.id)
            .where(
                Folder.owner_id == self.owner_id,
                Folder.path >= low,
                Folder.path < high,
                Folder.explicit,
            )
            .exists()
        )
        parent_file = (
            select(File.path)
            .where(File.owner_id == self.owner_id, File.path.in_(parents), _LIVE)
            .order_by(File.path)
            .limit(1)
            .scalar_subquery()
        )
        row = (await self.session.execute(select(folder, explicit, parent_file))).one()
        return bool(row[0] or row[1]), row[2]

    async def taken(self, paths: Sequence[str]) -> set[str]:
        """Which of the file ``paths`` are held: by a file (with content or an upload pending)
        or by a folder of that name (any folder row, listed or not): one round trip."""
        files = select(File.path).where(File.owner_id == self.owner_id, File.path.in_(paths), _LIVE)
        folders = select(func.left(Folder.path, -1)).where(
            Folder.owner_id == self.owner_id, Folder.path.in_([path + "/" for path in paths])
        )
        return set((await self.session.execute(union_all(files, folders))).scalars())

    async def at(self, path: str) -> File | None:
        """The row at ``path``, with content or not, locked."""
        query = (
            select(File)
            .where(File.owner_id == self.owner_id, File.path == path)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        return (await self.session.execute(query)).scalar_one_or_none()

    async def is_live(self, file_id: uuid.UUID) -> bool:
        """Whether the row holds its path: content, or an upload pending for it."""
        query = select(File.id).where(File.id == file_id, _LIVE)
        return (await self.session.execute(query)).first() is not None

    async def add_copy(self, source: File, path: str, name: str) -> File:
        """A new file at ``path`` with ``source``'s content: the same (shared) object."""
        copy = File(
            id=uuid.uuid4(),
            owner_id=self.owner_id,
            path=path,
            name=name,
            object_key=source.object_key,
            size=source.size,
            etag=source.etag,
            content_type=source.content_type,
            sha256=source.sha256,
            modified_at=source.modified_at,
        )
        self.session.add(copy)
        await self.session.flush()
        await self.session.refresh(copy)
        return copy

    async def search(
        self, text: str, prefix: str | None, after: str | None, limit: int, scan_rows: int
    ) -> Sequence[File]:
        """Files with content whose name contains ``text``, case-insensitive, by path.

        No one plan suits every word: a common word fills a page within the first few of the
        owner's files in path order, a rare one (or one whose matches all sort late) makes that
        walk read every file, and sorting every match the trigram index finds costs a heap
        fetch per match. So the walk reads at most ``scan_rows`` files; when that does not fill
        the page, the index counts the matches up to ``scan_rows``: that few are sorted whole,
        and more mean the word is common (its matches merely sort late), so a walk without a
        row bound fills the page after reading about as many files as sort before them.
        """
        conditions = [File.owner_id == self.owner_id, File.object_key.is_not(None)]
        if prefix and prefix != "/":
            low, high = subtree(prefix)
            conditions += [File.path >= low, File.path < high]
        if after is not None:
            conditions.append(File.path > after)
        pattern = "%" + _like_prefix(text)[:-1] + "%"
        window = select(File).where(*conditions).order_by(File.path).limit(scan_rows).subquery()
        in_window = aliased(File, window)
        walk = (
            select(in_window)
            .where(in_window.name.ilike(pattern, escape="\\"))
            .order_by(in_window.path)
            .limit(limit)
        )
        found = (await self.session.execute(walk)).scalars().all()
        if len(found) == limit:
            return found
        matching = select(File.id).where(*conditions, File.name.ilike(pattern, escape="\\"))
        counted = select(func.count()).select_from(matching.limit(scan_rows + 1).subquery())
        if (await self.session.execute(counted)).scalar_one() > scan_rows:
            unbounded = (
                select(File)
                .where(*conditions, File.name.ilike(pattern, escape="\\"))
                .order_by(File.path)
                .limit(limit)
            )
            return (await self.session.execute(unbounded)).scalars().all()
        matches = (
            select(File)
            .where(*conditions, File.name.ilike(pattern, escape="\\"))
            .cte("matches")
            .prefix_with("MATERIALIZED")
        )
        matched = aliased(File, matches)
        every = select(matched).order_by(matched.path).limit(limit)
        return (await self.session.execute(every)).scalars().all()

    async def holds(self, file_id: uuid.UUID, object_key: str, etag: str) -> bool:
        """Whether the file's content is already this object version (no lock taken)."""
        query = select(File.id).where(
            File.id == file_id, File.object_key == object_key, File.etag == etag
        )
        return (await self.session.execute(query)).first() is not None

    async def lock(self, file_id: uuid.UUID) -> File | None:
        return (await self.session.execute(_LOCK_FILE, {"file_id": file_id})).scalar_one_or_none()

    async def lock_sharers(self, object_key: str, file_id: uuid.UUID | None) -> Sequence[File]:
        """The owner's other files (than ``file_id``) whose content is the object ``object_key``
        (copies), locked in id order."""
        query = select(File).where(File.owner_id == self.owner_id, File.object_key == object_key)
        if file_id is not None:
            query = query.where(File.id != file_id)
        query = query.order_by(File.id).with_for_update().execution_options(populate_existing=True)
        return (await self.session.execute(query)).scalars().all()

    async def delete(self, file: File) -> None:
        await self.session.execute(delete(File).where(File.id == file.id))

    async def delete_if_empty(self, file_id: uuid.UUID) -> bool:
        """Remove a content-less file row once no upload is pending for it; whether it went."""
        result = await self.session.execute(delete(File).where(File.id == file_id, CONTENTLESS))
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def get_upload(self, upload_id: uuid.UUID) -> Upload | None:
        query = select(Upload).where(Upload.id == upload_id, Upload.owner_id == self.owner_id)
        return (await self.session.execute(query)).scalar_one_or_none()

    async def get_upload_by_key(self, object_key: str) -> Upload | None:
        query = select(Upload).where(
            Upload.object_key == object_key, Upload.owner_id == self.owner_id
        )
        return (await self.session.execute(query)).scalar_one_or_none()

    async def record_multipart_id(
        self, upload_id: uuid.UUID, multipart_upload_id: str
    ) -> str | None:
        """Record the S3 multipart upload id once; returns the one recorded (maybe another)."""
        await self.session.execute(
            update(Upload)
            .where(Upload.id == upload_id, Upload.multipart_upload_id.is_(None))
            .values(multipart_upload_id=multipart_upload_id)
        )
        query = select(Upload.multipart_upload_id).where(Upload.id == upload_id)
        recorded: str | None = (await self.session.execute(query)).scalar_one()
        return recorded

    async def account_change(self, size_delta: int, *, versions: int = 0, trash: int = 0) -> None:
        """Bump the cache generation and adjust the kept bytes in this transaction: ``size_delta``
        of every kept byte, of which ``versions`` and ``trash`` are in versions and the trash."""
        values = {
            "owner_id": self.owner_id,
            "size_delta": size_delta,
            "versions_delta": versions,
            "trash_delta": trash,
        }
        await self.session.execute(_ACCOUNT_CHANGE, values)

    async def lock_used_bytes(self) -> Held:
        """The owner's kept and reserved bytes, locked (last: files → uploads → users)."""
        row = (await self.session.execute(_LOCK_USED_BYTES, {"owner_id": self.owner_id})).one()
        return Held(*(int(value) for value in row))


class UploadRepository:
    """Uploads by object key: the worker's view, not scoped to a request's user."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def find_by_key(self, object_key: str) -> Upload | None:
        """The upload, unlocked: its file must be locked before it (files → uploads → users)."""
        found = await self.session.execute(_UPLOAD_BY_KEY, {"object_key": object_key})
        return found.scalar_one_or_none()

    async def find_by_key_locking_file(self, object_key: str) -> tuple[Upload | None, File | None]:
        """The upload (unlocked) and its file, locked: ``find_by_key`` and ``FileRepository.lock``
        in one statement, for a caller with nothing to do between the two."""
        row = (
            await self.session.execute(_UPLOAD_BY_KEY_LOCKING_FILE, {"object_key": object_key})
        ).one_or_none()
        if row is None:  # no such upload, or no file (any more) for it
            return await self.find_by_key(object_key), None
        upload, file = row
        return upload, file

    async def lock(self, upload_id: uuid.UUID) -> Upload:
        locked = await self.session.execute(_LOCK_UPLOAD, {"upload_id": upload_id})
        return locked.scalar_one()

    async def renew_lease(self, upload_id: uuid.UUID, seconds: float) -> bool:
        """Push a pending upload's expiry ``seconds`` ahead; false once it is no longer pending."""
        statement = (
            update(Upload)
            .where(Upload.id == upload_id, Upload.status == UploadStatus.pending)
            .values(expires_at=func.now() + func.make_interval(0, 0, 0, 0, 0, 0, seconds))
        )
        result = await self.session.execute(statement)
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def pending(self, limit: int) -> Sequence[tuple[str, datetime, UploadKind]]:
        """Pending uploads' keys, expiry and kind, soonest expiry first (the partial index)."""
        query = (
            select(Upload.object_key, Upload.expires_at, Upload.kind)
            .where(Upload.status == UploadStatus.pending)
            .order_by(Upload.expires_at)
            .limit(limit)
        )
        return [(key, expires, kind) for key, expires, kind in await self.session.execute(query)]

    async def recently_confirmed(self, limit: int) -> Sequence[tuple[str, str | None]]:
        """Objects of confirmed direct uploads whose URLs may still be used again, with the etag
        each holder recorded (a file, a copy, a version, a file in the trash; a key once per
        holder): a PUT to such a URL rewrites the object under all of them."""
        holders = union_all(
            select(File.object_key, File.etag).where(File.object_key.is_not(None)),
            select(FileVersion.object_key, FileVersion.etag),
            select(TrashedFile.object_key, TrashedFile.etag),
        ).subquery("holders")
        query = (
            select(Upload.object_key, holders.c.etag)
            .join(holders, holders.c.object_key == Upload.object_key)
            .where(
                Upload.status == UploadStatus.completed,
                Upload.kind == UploadKind.direct,
                Upload.expires_at > func.now(),
            )
            .order_by(Upload.expires_at)
            .limit(limit)
        )
        return [(key, etag) for key, etag in await self.session.execute(query)]

    async def close_expired(
        self, object_keys: Sequence[str], status: UploadStatus, reason: str
    ) -> list[str]:
        """Close those of ``object_keys`` still pending and past expiry; returns their keys."""
        statement = (
            update(Upload)
            .where(
                Upload.object_key.in_(object_keys),
                Upload.status == UploadStatus.pending,
                Upload.expires_at < func.now(),
            )
            .values(status=status, reason=reason, completed_at=func.now())
            .returning(Upload.object_key)
        )
        return list((await self.session.execute(statement)).scalars())

    async def unsized_multipart(self, limit: int) -> Sequence[tuple[str, str, int]]:
        """Pending multipart uploads whose parts the API did not size (Uppy's): key, storage
        upload id and reservation."""
        query = (
            select(Upload.object_key, Upload.multipart_upload_id, Upload.reserved_bytes)
            .where(
                Upload.status == UploadStatus.pending,
                Upload.multipart_upload_id.is_not(None),
                Upload.part_size.is_(None),
                Upload.kind == UploadKind.direct,
            )
            .order_by(Upload.expires_at)
            .limit(limit)
        )
        return [
            (key, upload_id or "", reserved)
            for key, upload_id, reserved in await self.session.execute(query)
        ]

    async def close_pending(self, reasons: Mapping[str, str]) -> list[str]:
        """Reject those of the uploads (object key → reason) still pending; returns their keys."""
        closed: list[str] = []
        for object_key, reason in reasons.items():
            statement = (
                update(Upload)
                .where(Upload.object_key == object_key, Upload.status == UploadStatus.pending)
                .values(status=UploadStatus.rejected, reason=reason, completed_at=func.now())
                .returning(Upload.object_key)
            )
            closed.extend((await self.session.execute(statement)).scalars())
        return closed

    async def multipart_ids(self, object_keys: Sequence[str]) -> dict[str, str]:
        """The S3 multipart upload ids recorded for those of ``object_keys`` that have one."""
        if not object_keys:
            return {}
        query = select(Upload.object_key, Upload.multipart_upload_id).where(
            Upload.object_key.in_(object_keys), Upload.multipart_upload_id.is_not(None)
        )
        rows = await self.session.execute(query)
        return {key: upload_id for key, upload_id in rows if upload_id is not None}

    async def remove_contentless_files(self) -> int:
        """File rows that never got content and have no upload pending any more."""
        result = await self.session.execute(delete(File).where(CONTENTLESS))
        return int(result.rowcount)  # type: ignore[attr-defined]

    async def now(self) -> datetime:
        moment: datetime = (await self.session.execute(select(func.now()))).scalar_one()
        return moment

    async def unreferenced(
        self, object_keys: Sequence[str], *, pending_only: bool = False
    ) -> set[str]:
        """Those of ``object_keys`` that no pending upload claims and nothing holds as content:
        no file, no version, no file in the trash (with ``pending_only``, only the pending claim
        counts): a whole page in one query. The one reference check of the drain and the
        sweep."""
        if not object_keys:
            return set()
        candidate = (
            func.unnest(bindparam("object_keys", list(object_keys), type_=ARRAY(Text)))
            .table_valued("key")
            .render_derived(name="candidate")
        )
        query = select(candidate.c.key).where(
            ~select(Upload.id)
            .where(Upload.object_key == candidate.c.key, Upload.status == UploadStatus.pending)
            .exists()
        )
        if not pending_only:
            for holder in (File, FileVersion, TrashedFile):
                query = query.where(
                    ~select(holder.id).where(holder.object_key == candidate.c.key).exists()
                )
        return set((await self.session.execute(query)).scalars())
