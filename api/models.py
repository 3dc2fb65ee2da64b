"""Tables: users, files (one row per user path, stable id), uploads (one per content version)."""

import enum
import uuid
from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Enum, ForeignKey, Index, String, Text, func, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class UploadStatus(enum.StrEnum):
    pending = "pending"
    completed = "completed"
    rejected = "rejected"
    expired = "expired"


class User(Base):
    __tablename__ = "users"
    __table_args__ = (Index("users_login_lower_key", func.lower(text("login")), unique=True),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    login: Mapped[str] = mapped_column(Text)
    password_hash: Mapped[str] = mapped_column(Text)
    # Bumped by every write to the user's files, in the same transaction; keys the cache.
    generation: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    # Sum of the sizes of the user's confirmed files, kept in the confirming transaction (quota).
    used_bytes: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class File(Base):
    """A user's path. Without ``object_key`` it has no content yet and is not listed."""

    __tablename__ = "files"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    owner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    # "C" collation: byte order, so prefix filters and keyset pagination use the unique index.
    path: Mapped[str] = mapped_column(String(collation="C"))
    name: Mapped[str] = mapped_column(Text)
    object_key: Mapped[str | None] = mapped_column(Text, unique=True)
    size: Mapped[int | None] = mapped_column(BigInteger)
    etag: Mapped[str | None] = mapped_column(Text)
    content_type: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    modified_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )

    __table_args__ = (Index("files_owner_path_key", "owner_id", "path", unique=True),)


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
    declared_size: Mapped[int | None] = mapped_column(BigInteger)
    content_type: Mapped[str | None] = mapped_column(Text)
    sha256: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    reason: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        Index("uploads_pending_expiry", "expires_at", postgresql_where=text("status = 'pending'")),
    )
