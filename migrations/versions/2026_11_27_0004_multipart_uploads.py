"""Presigned multipart uploads: the S3 upload id and part size on the upload, an aborted status.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 13:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Allowed inside the migration's transaction as long as this transaction does not use it.
    op.execute("ALTER TYPE upload_status ADD VALUE IF NOT EXISTS 'aborted'")
    op.add_column("uploads", sa.Column("multipart_upload_id", sa.Text(), nullable=True))
    op.add_column("uploads", sa.Column("part_size", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    op.drop_column("uploads", "part_size")
    op.drop_column("uploads", "multipart_upload_id")
    # PostgreSQL cannot drop an enum value; aborted uploads become expired.
    op.execute("UPDATE uploads SET status = 'expired' WHERE status = 'aborted'")
