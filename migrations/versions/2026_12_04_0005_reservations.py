"""Quota reservations: what pending uploads may still write, counted against the quota.

Each pending upload holds ``reserved_bytes``; the user's ``reserved_bytes`` and
``open_uploads`` are their sums over pending uploads, kept by a trigger on every insert, status
change, reservation change and delete of an upload row. A trigger, not the code that closes an
upload, because an upload closes in many places (confirmed, rejected, aborted, expired, failed,
removed with its owner) and the sums must stay exact in all of them. The trigger updates the
owner's row after the upload's, so it keeps the lock order files → uploads → users. The outbox
learns multipart upload ids: a row that carries one aborts that storage-side upload too.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04 21:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RESERVATION_TRIGGER = """
CREATE FUNCTION uploads_reservation() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    old_bytes bigint := 0;
    old_open integer := 0;
    new_bytes bigint := 0;
    new_open integer := 0;
BEGIN
    IF TG_OP <> 'INSERT' AND OLD.status = 'pending' THEN
        old_bytes := OLD.reserved_bytes;
        old_open := 1;
    END IF;
    IF TG_OP <> 'DELETE' AND NEW.status = 'pending' THEN
        new_bytes := NEW.reserved_bytes;
        new_open := 1;
    END IF;
    IF TG_OP = 'UPDATE' AND OLD.owner_id <> NEW.owner_id THEN
        RAISE EXCEPTION 'an upload does not change owner';
    END IF;
    IF new_bytes <> old_bytes OR new_open <> old_open THEN
        UPDATE users
        SET reserved_bytes = reserved_bytes + new_bytes - old_bytes,
            open_uploads = open_uploads + new_open - old_open
        WHERE id = COALESCE(NEW.owner_id, OLD.owner_id);
    END IF;
    RETURN NULL;
END
$$
"""
RESERVATION_TRIGGER_ON_UPLOADS = """
CREATE TRIGGER uploads_reservation
AFTER INSERT OR DELETE OR UPDATE OF status, reserved_bytes ON uploads
FOR EACH ROW EXECUTE FUNCTION uploads_reservation()
"""


def upgrade() -> None:
    op.add_column(
        "users", sa.Column("reserved_bytes", sa.BigInteger(), nullable=False, server_default="0")
    )
    op.add_column(
        "users", sa.Column("open_uploads", sa.Integer(), nullable=False, server_default="0")
    )
    op.add_column(
        "uploads", sa.Column("reserved_bytes", sa.BigInteger(), nullable=False, server_default="0")
    )
    op.add_column("object_deletions", sa.Column("multipart_upload_id", sa.Text(), nullable=True))
    # Uploads pending at the upgrade reserve what they declared.
    op.execute(
        "UPDATE uploads SET reserved_bytes = COALESCE(declared_size, 0) WHERE status = 'pending'"
    )
    op.execute(
        """
        UPDATE users SET reserved_bytes = pending.bytes, open_uploads = pending.count
        FROM (
            SELECT owner_id, SUM(reserved_bytes) AS bytes, COUNT(*) AS count
            FROM uploads WHERE status = 'pending' GROUP BY owner_id
        ) AS pending
        WHERE users.id = pending.owner_id
        """
    )
    op.execute(RESERVATION_TRIGGER)
    op.execute(RESERVATION_TRIGGER_ON_UPLOADS)


def downgrade() -> None:
    op.execute("DROP TRIGGER uploads_reservation ON uploads")
    op.execute("DROP FUNCTION uploads_reservation()")
    op.drop_column("object_deletions", "multipart_upload_id")
    op.drop_column("uploads", "reserved_bytes")
    op.drop_column("users", "open_uploads")
    op.drop_column("users", "reserved_bytes")
