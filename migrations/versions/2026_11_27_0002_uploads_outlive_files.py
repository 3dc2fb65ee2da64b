"""Uploads outlive their file row: file_id becomes nullable, ON DELETE SET NULL.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 05:35:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.alter_column("uploads", "file_id", existing_type=sa.Uuid(), nullable=True)
    op.drop_constraint("uploads_file_id_fkey", "uploads", type_="foreignkey")
    op.create_foreign_key(
        "uploads_file_id_fkey", "uploads", "files", ["file_id"], ["id"], ondelete="SET NULL"
    )


def downgrade() -> None:
    op.execute("DELETE FROM uploads WHERE file_id IS NULL")
    op.drop_constraint("uploads_file_id_fkey", "uploads", type_="foreignkey")
    op.create_foreign_key(
        "uploads_file_id_fkey", "uploads", "files", ["file_id"], ["id"], ondelete="CASCADE"
    )
    op.alter_column("uploads", "file_id", existing_type=sa.Uuid(), nullable=False)
