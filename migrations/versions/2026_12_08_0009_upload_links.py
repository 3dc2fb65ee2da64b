"""Upload links (§15, issue 21): uploads made through a link, and dead links purged.

- ``shares.upload`` (made in 0008, reserved until now) marks an upload link; such a link
  counts no downloads, so it carries no ``max_downloads``.
- ``uploads.share_id``: the upload link an upload was made through, so a link's follow-up
  routes (complete, parts, abort) reach only its own uploads. ``ON DELETE SET NULL``: a revoked,
  purged or cascaded link leaves its uploads to their owner (they confirm as any other).
- ``shares_expires_at``: the purge deletes links a while after they expired, oldest first.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-08 09:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        "ALTER TABLE shares ADD CONSTRAINT shares_upload_counts_no_downloads "
        "CHECK (NOT upload OR max_downloads IS NULL)"
    )
    op.execute(
        "ALTER TABLE uploads ADD COLUMN share_id uuid REFERENCES shares (id) ON DELETE SET NULL"
    )
    # The SET NULL of a deleted share looks its uploads up by it.
    op.execute("CREATE INDEX uploads_share_id ON uploads (share_id) WHERE share_id IS NOT NULL")
    op.execute("CREATE INDEX shares_expires_at ON shares (expires_at)")


def downgrade() -> None:
    op.execute("DROP INDEX shares_expires_at")
    op.execute("ALTER TABLE uploads DROP COLUMN share_id")
    op.execute("ALTER TABLE shares DROP CONSTRAINT shares_upload_counts_no_downloads")
