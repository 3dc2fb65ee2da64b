"""Folders, shared objects and search.

- ``folders``: one row per folder a user has, made when a path below it is claimed (implicit)
  or by ``POST /folders`` (explicit: listed while empty). ``parent`` and ``name`` are generated
  from ``path``, so a move rewrites paths only. A folder view reads the direct children of one
  folder through ``(owner_id, parent, name)`` indexes: its cost does not grow with what lies
  deeper.
- ``files.parent`` (generated) and a partial index on ``(owner_id, parent, name)`` for the
  files of one folder.
- Objects are shared: a copy points at the same object key, so ``files.object_key`` is no longer
  unique (a plain index serves the reference checks of the drain and the sweep).
- ``pg_trgm`` and ``btree_gin``: one GIN index on ``(owner_id, name)`` serves a user's
  case-insensitive substring search.

Existing files get the implicit folders that enclose them.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06 12:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CARRY_FOLDERS = """
INSERT INTO folders (owner_id, path)
SELECT DISTINCT files.owner_id,
       array_to_string((string_to_array(files.path, '/'))[1:depth], '/') || '/'
FROM files,
     generate_series(2, array_length(string_to_array(files.path, '/'), 1) - 1) AS depth
ON CONFLICT DO NOTHING
"""


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.execute("CREATE EXTENSION IF NOT EXISTS btree_gin")
    op.execute(
        """
        CREATE TABLE folders (
            id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            owner_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
            path text COLLATE "C" NOT NULL,
            parent text COLLATE "C" GENERATED ALWAYS AS
                (regexp_replace(path, '[^/]+/$', '')) STORED,
            name text COLLATE "C" GENERATED ALWAYS AS
                (regexp_replace(path, '^.*/([^/]+)/$', '\\1')) STORED,
            explicit boolean NOT NULL DEFAULT false,
            created_at timestamptz NOT NULL DEFAULT now(),
            modified_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT folders_path_is_folder CHECK (path LIKE '/%/')
        )
        """
    )
    op.execute("CREATE UNIQUE INDEX folders_owner_path_key ON folders (owner_id, path)")
    op.execute("CREATE INDEX folders_owner_parent_name ON folders (owner_id, parent, name)")
    op.execute(
        """
        ALTER TABLE files ADD COLUMN parent text COLLATE "C"
            GENERATED ALWAYS AS (regexp_replace(path, '[^/]*$', '')) STORED
        """
    )
    op.execute(
        """
        CREATE INDEX files_owner_parent_name ON files (owner_id, parent, name COLLATE "C")
        WHERE object_key IS NOT NULL
        """
    )
    op.execute("ALTER TABLE files DROP CONSTRAINT files_object_key_key")
    op.execute("CREATE INDEX ix_files_object_key ON files (object_key)")
    op.execute(
        "CREATE INDEX files_owner_name_trgm ON files USING gin (owner_id, name gin_trgm_ops)"
    )
    op.execute(CARRY_FOLDERS)


def downgrade() -> None:
    op.execute("DROP INDEX files_owner_name_trgm")
    op.execute("DROP INDEX ix_files_object_key")
    op.execute("ALTER TABLE files ADD CONSTRAINT files_object_key_key UNIQUE (object_key)")
    op.execute("DROP INDEX files_owner_parent_name")
    op.execute("ALTER TABLE files DROP COLUMN parent")
    op.execute("DROP TABLE folders")
