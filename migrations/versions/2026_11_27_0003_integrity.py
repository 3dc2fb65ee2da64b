"""Integrity: the object-deletion outbox, upload kinds, a failed status, stored checksums.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 12:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UPLOAD_KIND = postgresql.ENUM("direct", "proxied", name="upload_kind", create_type=False)


def upgrade() -> None:
    # Allowed inside the migration's transaction as long as this transaction does not use it.
    op.execute("ALTER TYPE upload_status ADD VALUE IF NOT EXISTS 'failed'")
    UPLOAD_KIND.create(op.get_bind(), checkfirst=True)
    op.add_column(
        "uploads",
        sa.Column("kind", UPLOAD_KIND, server_default="direct", nullable=False),
    )
    op.create_index(
        "uploads_completed_expiry",
        "uploads",
        ["expires_at"],
        postgresql_where=sa.text("status = 'completed' AND kind = 'direct'"),
    )
    op.add_column("files", sa.Column("sha256", sa.Text(), nullable=True))
    op.create_table(
        "object_deletions",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("object_key", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "not_before",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("object_deletions_due", "object_deletions", ["not_before"])


def downgrade() -> None:
    op.drop_index("object_deletions_due", table_name="object_deletions")
    op.drop_table("object_deletions")
    op.drop_column("files", "sha256")
    op.drop_index("uploads_completed_expiry", table_name="uploads")
    op.drop_column("uploads", "kind")
    UPLOAD_KIND.drop(op.get_bind(), checkfirst=True)
    # PostgreSQL cannot drop an enum value; 'failed' uploads become 'rejected'.
    op.execute("UPDATE uploads SET status = 'rejected' WHERE status = 'failed'")
