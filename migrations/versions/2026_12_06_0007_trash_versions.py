"""Trash and versions (§14).

- ``file_versions``: content a file held before an overwrite (the same immutable object), keyed
  by the file's id without a foreign key, so a trashed file's versions wait with it.
- ``trash_entries`` and ``trashed_files``: a deleted file, or a deleted folder as one entry
  with its files (their rows as they were, same ids) and its folders.
- ``users.version_bytes`` and ``users.trash_bytes``: what versions and the trash hold, part of
  ``used_bytes``, which now counts every kept byte.

Existing data needs nothing carried: no versions or trash existed.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 19:30:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("ALTER TABLE users ADD COLUMN version_bytes bigint NOT NULL DEFAULT 0")
    op.execute("ALTER TABLE users ADD COLUMN trash_bytes bigint NOT NULL DEFAULT 0")
    op.execute(
        """
        CREATE TABLE file_versions (
            id uuid PRIMARY KEY,
            file_id uuid NOT NULL,
            owner_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
            object_key text NOT NULL,
            size bigint NOT NULL,
            etag text,
            sha256 text,
            content_type text,
            modified_at timestamptz NOT NULL,
            replaced_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute("CREATE INDEX file_versions_file_replaced ON file_versions (file_id, replaced_at)")
    op.execute("CREATE INDEX ix_file_versions_object_key ON file_versions (object_key)")
    op.execute(
        """
        CREATE TABLE trash_entries (
            id uuid PRIMARY KEY,
            owner_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
            path text COLLATE "C" NOT NULL,
            files bigint NOT NULL,
            size bigint NOT NULL,
            folders text[] NOT NULL DEFAULT '{}',
            explicit_folders text[] NOT NULL DEFAULT '{}',
            deleted_at timestamptz NOT NULL DEFAULT now(),
            purge_at timestamptz NOT NULL
        )
        """
    )
    op.execute(
        "CREATE INDEX trash_entries_owner_deleted ON trash_entries (owner_id, deleted_at, id)"
    )
    op.execute("CREATE INDEX trash_entries_purge_at ON trash_entries (purge_at)")
    op.execute(
        """
        CREATE TABLE trashed_files (
            id uuid PRIMARY KEY,
            entry_id uuid NOT NULL REFERENCES trash_entries (id) ON DELETE CASCADE,
            owner_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
            path text COLLATE "C" NOT NULL,
            name text NOT NULL,
            object_key text NOT NULL,
            size bigint NOT NULL,
            etag text,
            content_type text,
            sha256 text,
            created_at timestamptz NOT NULL,
            modified_at timestamptz NOT NULL
        )
        """
    )
    op.execute("CREATE INDEX ix_trashed_files_entry_id ON trashed_files (entry_id)")
    op.execute("CREATE INDEX ix_trashed_files_object_key ON trashed_files (object_key)")


def downgrade() -> None:
    op.execute("DROP TABLE trashed_files")
    op.execute("DROP TABLE trash_entries")
    op.execute("DROP TABLE file_versions")
    op.execute("ALTER TABLE users DROP COLUMN trash_bytes")
    op.execute("ALTER TABLE users DROP COLUMN version_bytes")
