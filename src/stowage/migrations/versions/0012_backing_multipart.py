"""backing multipart uploads: an upload in parts may go into the blob store's own multipart
upload (``backing_id``) that completes into the blob ``blob_key``; its parts have no blob

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30 18:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("multipart_uploads", sa.Column("blob_key", sa.String(length=64)))
    op.add_column("multipart_uploads", sa.Column("backing_id", sa.Text()))
    # SQLite changes a column's nullability by rebuilding the table (it has no triggers).
    with op.batch_alter_table("multipart_parts") as batch:
        batch.alter_column("blob_key", existing_type=sa.String(length=64), nullable=True)


def downgrade() -> None:
    """Uploads in progress in backing uploads are dropped (older code cannot complete
    them); their backing uploads are left for the store's own expiry."""
    native = "SELECT id FROM multipart_uploads WHERE backing_id IS NOT NULL"
    op.execute(f"DELETE FROM multipart_parts WHERE upload_pk IN ({native})")
    op.execute("DELETE FROM multipart_uploads WHERE backing_id IS NOT NULL")
    with op.batch_alter_table("multipart_parts") as batch:
        batch.alter_column("blob_key", existing_type=sa.String(length=64), nullable=False)
    op.execute("ALTER TABLE multipart_uploads DROP COLUMN backing_id")  # SQLite 3.35+
    op.execute("ALTER TABLE multipart_uploads DROP COLUMN blob_key")
