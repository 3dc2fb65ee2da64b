"""Tables: users, files (one row per user path, stable id), folders, uploads (one per content
version), file versions and the trash (§14), share links (§15), and the outbox of object
deletions.

Lock order, for every transaction that takes several locks:
**path lock → files → trash entries → uploads → users**. A transaction that creates, moves,
copies or removes paths takes its owner's path lock (a transaction-level advisory lock,
``FileRepository.lock_paths``) before any row lock; ``folders`` rows are only written under
that lock, so they need no place of their own in the order.
Deleting a file cascades (``SET NULL``) into its uploads, so a delete follows the same order;
``users`` is always locked last (quota, reservations and cache generation); the trigger that
keeps a user's reservations updates the user after the upload row, in that order too.
``file_versions`` rows are written only under their file's lock (or, for a trashed file, its
trash entry's), and ``trashed_files`` rows only under their entry's, so neither needs a place of
its own. ``object_deletions`` rows are only inserted by those transactions and locked by the drain
alone (``SKIP LOCKED``).
``shares`` rows come after ``files`` (deleting a file or a folder row cascades into its shares);
a share is created under its owner's path lock (so its target cannot vanish between the check
and the insert), and revoking or counting a download locks that one share row (revoking then
clears the link from its uploads, ``uploads.share_id``). An intent through an upload link takes
the owner's path lock, then a key-share lock on its share (so the link cannot be revoked under
it), then the usual **files → uploads → users**; the purge deletes dead shares in a transaction
of their own.
"""

import enum
import uuid
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Computed,
    DateTime,
    Enum,
    ForeignKey,
    Index,
    LargeBinary,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class UploadStatus(enum.StrEnum):
    pending = "pending"
    completed = "completed"
    rejected = "rejected"
    expired = "expired"
    # A proxied upload that answered an error (or whose API process died): never content.
    failed = "failed"
    # The client (or the page's uploader) gave up: the multipart upload was aborted.
    aborted = "aborted"


class UploadKind(enum.StrEnum):
    # The client sends the bytes to storage; notifications, reconcile and ``complete`` confirm.
    direct = "direct"
    # The API streams the bytes and confirms them itself; nothing else may.
    proxied = "proxied"


class User(Base):
    __tablename__ = "users"
    __table_args__ = (Index("users_login_lower_key", func.lower(text("login")), unique=True),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    login: Mapped[str] = mapped_column(Text)
    password_hash: Mapped[str] = mapped_column(Text)
    # Bumped by every write to the user's files, in the same transaction; keys the cache.
    generation: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    # Every byte the user keeps: current files, their versions and the trash (the quota holds
    # it), kept in the transaction that changes any of them. Of it, what versions and the trash
    # hold (``GET /user/me``'s usage).
    used_bytes: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    version_bytes: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    trash_bytes: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    # What the user's pending uploads may still write, and how many are pending: sums over
    # their uploads, kept by the ``uploads_reservation`` trigger (migration 0005), never by
    # hand. The quota holds ``used_bytes + reserved_bytes``.
    reserved_bytes: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    open_uploads: Mapped[int] = mapped_column(default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class File(Base):
    """A user's path. Without ``object_key`` it has no content yet and is not listed.

    ``object_key`` names an immutable object that copies share: it is deleted only when no
    file (and no pending upload) references it any more (``UploadRepository.unreferenced``).
    """

    __tablename__ = "files"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    owner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    # "C" collation: byte order, so prefix filters and keyset pagination use the unique index.
    path: Mapped[str] = mapped_column(String(collation="C"))
    name: Mapped[str] = mapped_column(Text)
    # The enclosing folder's path ("/a/" for "/a/b.txt"): a folder view's index.
    parent: Mapped[str] = mapped_column(
        String(collation="C"), Computed("regexp_replace(path, '[^/]*$', '')")
    )
    object_key: Mapped[str | None] = mapped_column(Text, index=True)
    size: Mapped[int | None] = mapped_column(BigInteger)
    etag: Mapped[str | None] = mapped_column(Text)
    content_type: Mapped[str | None] = mapped_column(Text)
    # Hex SHA-256 of the content, as storage reported it at confirmation (when it keeps one).
    sha256: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    modified_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )

    __table_args__ = (Index("files_owner_path_key", "owner_id", "path", unique=True),)


class Folder(Base):
    """A folder: implicit (made when a path below it is claimed, listed while something below
    has content) or explicit (``POST /folders``, listed until deleted)."""

    __tablename__ = "folders"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    owner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    # Ends with "/"; the root "/" has no row.
    path: Mapped[str] = mapped_column(String(collation="C"))
    parent: Mapped[str] = mapped_column(
        String(collation="C"), Computed("regexp_replace(path, '[^/]+/$', '')")
    )
    name: Mapped[str] = mapped_column(
        String(collation="C"), Computed("regexp_replace(path, '^.*/([^/]+)/$', '\\1')")
    )
    explicit: Mapped[bool] = mapped_column(default=False, server_default="false")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    modified_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )

    __table_args__ = (
        Index("folders_owner_path_key", "owner_id", "path", unique=True),
        Index("folders_owner_parent_name", "owner_id", "parent", "name"),
    )


class Upload(Base):
    """One attempt to give a file new content; its object key is where the bytes land."""

    __tablename__ = "uploads"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    # SET NULL: an upload's record (rejected, expired) outlives a file row removed meanwhile.
    file_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("files.id", ondelete="SET NULL"), index=True
    )
    owner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    object_key: Mapped[str] = mapped_column(Text, unique=True)
    status: Mapped[UploadStatus] = mapped_column(
        Enum(UploadStatus, name="upload_status", values_callable=lambda e: [m.value for m in e]),
        default=UploadStatus.pending,
    )
    kind: Mapped[UploadKind] = mapped_column(
        Enum(UploadKind, name="upload_kind", values_callable=lambda e: [m.value for m in e]),
        default=UploadKind.direct,
        server_default=UploadKind.direct.value,
    )
    declared_size: Mapped[int | None] = mapped_column(BigInteger)
    content_type: Mapped[str | None] = mapped_column(Text)
    sha256: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    reason: Mapped[str | None] = mapped_column(Text)
    # A presigned multipart upload: storage's upload id (CreateMultipartUpload, made by the API
    # or, for Uppy, by the page and recorded at its first signed part) and the part size the
    # API chose (unknown when the page chooses).
    multipart_upload_id: Mapped[str | None] = mapped_column(Text)
    part_size: Mapped[int | None] = mapped_column(BigInteger)
    # While pending, the bytes this upload may write, held against the owner's quota; closing
    # the upload (any status but pending) releases it.
    reserved_bytes: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    # The upload link (§15) it was made through: that link's follow-up routes reach it, no
    # other link's. SET NULL: a link that goes leaves its uploads to their owner.
    share_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("shares.id", ondelete="SET NULL"))

    __table_args__ = (
        Index("uploads_pending_expiry", "expires_at", postgresql_where=text("status = 'pending'")),
        # Direct uploads confirmed while their URL may still be used again (reconcile re-checks).
        Index(
            "uploads_completed_expiry",
            "expires_at",
            postgresql_where=text("status = 'completed' AND kind = 'direct'"),
        ),
    )


class FileVersion(Base):
    """Content a file held before an overwrite: the same immutable object, kept (up to
    ``FILESTORE_VERSIONS_KEPT`` a file) until trimmed, deleted or purged with its file.

    ``file_id`` is no foreign key: a trashed file's versions stay, keyed by its id, and come
    back with it on restore.
    """

    __tablename__ = "file_versions"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    file_id: Mapped[uuid.UUID] = mapped_column()
    owner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    object_key: Mapped[str] = mapped_column(Text, index=True)
    size: Mapped[int] = mapped_column(BigInteger)
    etag: Mapped[str | None] = mapped_column(Text)
    sha256: Mapped[str | None] = mapped_column(Text)
    content_type: Mapped[str | None] = mapped_column(Text)
    # When this content became current, and when it stopped being.
    modified_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    replaced_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )

    __table_args__ = (Index("file_versions_file_replaced", "file_id", "replaced_at"),)


class TrashEntry(Base):
    """A deleted file, or a deleted folder as one entry, kept until ``purge_at``."""

    __tablename__ = "trash_entries"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    owner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    # Where it was: a folder's path ends with "/".
    path: Mapped[str] = mapped_column(String(collation="C"))
    files: Mapped[int] = mapped_column(BigInteger)
    size: Mapped[int] = mapped_column(BigInteger)
    # A folder's own folders (full paths as they were), and which of them were explicit.
    folders: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default="{}")
    explicit_folders: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default="{}")
    deleted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    purge_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        Index("trash_entries_owner_deleted", "owner_id", "deleted_at", "id"),
        Index("trash_entries_purge_at", "purge_at"),
    )


class TrashedFile(Base):
    """A file in the trash: its row as it was (same id), under its entry."""

    __tablename__ = "trashed_files"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    entry_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("trash_entries.id", ondelete="CASCADE"), index=True
    )
    owner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    path: Mapped[str] = mapped_column(String(collation="C"))
    name: Mapped[str] = mapped_column(Text)
    object_key: Mapped[str] = mapped_column(Text, index=True)
    size: Mapped[int] = mapped_column(BigInteger)
    etag: Mapped[str | None] = mapped_column(Text)
    content_type: Mapped[str | None] = mapped_column(Text)
    sha256: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    modified_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Share(Base):
    """A link to one of its owner's files or folders (§15), found by the SHA-256 of its token.

    The target is a foreign key that cascades: file and folder rows keep their ids through
    moves, so the share follows them, and deleting the target ends the share.
    """

    __tablename__ = "shares"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    owner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    file_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("files.id", ondelete="CASCADE"))
    folder_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("folders.id", ondelete="CASCADE")
    )
    token_hash: Mapped[bytes] = mapped_column(LargeBinary, unique=True)
    # argon2 (the users' hasher); None: no password.
    password_hash: Mapped[str | None] = mapped_column(Text)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    max_downloads: Mapped[int | None] = mapped_column()
    downloads: Mapped[int] = mapped_column(default=0, server_default="0")
    # An upload link (a file request) into the folder: anyone with it may add files there
    # (never overwriting) and sees nothing of what the folder holds; it counts no downloads.
    upload: Mapped[bool] = mapped_column(default=False, server_default="false")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        Index("shares_owner_created", "owner_id", "created_at"),
        Index("shares_expires_at", "expires_at"),
    )


class ObjectDeletion(Base):
    """Transactional outbox: an object that a committed transaction made garbage.

    Written in the transaction that unreferences the object (replaced, rejected, deleted, late,
    failed), drained by the worker with retries; a lost queue or a killed process loses nothing.
    """

    __tablename__ = "object_deletions"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    object_key: Mapped[str] = mapped_column(Text)
    # A storage-side multipart upload of that key to abort as well (its parts are no object).
    multipart_upload_id: Mapped[str | None] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    not_before: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    last_error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("object_deletions_due", "not_before"),)
