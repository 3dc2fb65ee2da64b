"""Share links (§15).

- ``shares``: a link to one file or one folder of its owner, found by the SHA-256 of its token
  (the token itself is never stored). The target is a foreign key with ``ON DELETE CASCADE``:
  file and folder rows keep their ids through moves, so a share follows its target, and a
  delete (a file leaving ``files`` for the trash, folder rows dropped) ends it.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 09:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE shares (
            id uuid PRIMARY KEY,
            owner_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
            file_id uuid REFERENCES files (id) ON DELETE CASCADE,
            folder_id uuid REFERENCES folders (id) ON DELETE CASCADE,
            token_hash bytea NOT NULL,
            password_hash text,
            expires_at timestamptz NOT NULL,
            max_downloads integer CHECK (max_downloads > 0),
            downloads integer NOT NULL DEFAULT 0,
            upload boolean NOT NULL DEFAULT false,
            created_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT shares_one_target CHECK ((file_id IS NULL) <> (folder_id IS NULL)),
            CONSTRAINT shares_upload_is_a_folder CHECK (NOT upload OR folder_id IS NOT NULL)
        )
        """
    )
    op.execute("CREATE UNIQUE INDEX shares_token_hash_key ON shares (token_hash)")
    op.execute("CREATE INDEX shares_owner_created ON shares (owner_id, created_at)")
    # The cascades from files and folders look shares up by their target.
    op.execute("CREATE INDEX shares_file_id ON shares (file_id) WHERE file_id IS NOT NULL")
    op.execute("CREATE INDEX shares_folder_id ON shares (folder_id) WHERE folder_id IS NOT NULL")


def downgrade() -> None:
    op.execute("DROP TABLE shares")
