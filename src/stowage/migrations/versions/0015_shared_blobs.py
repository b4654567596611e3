"""shared blobs: one ``blobs`` row per distinct content (sha256, size), which object rows
reference by ``blob_key``; released blobs are collected by the reaper after a grace

Existing objects get their blobs' rows here. Objects that already held identical bytes
under different keys are pointed at one of those keys (the smallest); the other copies
are then orphans, which ``stowage fsck --fix`` removes.

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-30 21:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "blobs",
        sa.Column("key", sa.String(length=64), primary_key=True),
        sa.Column("size", sa.BigInteger(), nullable=False),
        # NULL for a blob whose digest was not known when it was stored (an object joined
        # from multipart parts): it is never shared.
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("released_ms", sa.BigInteger()),
    )
    op.create_index("uq_blobs_content", "blobs", ["sha256", "size"], unique=True)
    op.create_index("ix_blobs_released", "blobs", ["released_ms"])
    op.create_index("ix_objects_blob_key", "objects", ["blob_key"])
    op.execute(
        "INSERT INTO blobs (key, size, sha256, created_ms)"
        " SELECT MIN(blob_key), size, sha256, MIN(create_time_ms) FROM objects"
        " WHERE blob_key IS NOT NULL AND sha256 IS NOT NULL AND size IS NOT NULL"
        " GROUP BY sha256, size"
    )
    op.execute(
        "UPDATE objects SET blob_key = (SELECT b.key FROM blobs b"
        " WHERE b.sha256 = objects.sha256 AND b.size = objects.size)"
        " WHERE blob_key IS NOT NULL AND blob_key NOT IN (SELECT key FROM blobs)"
        " AND EXISTS (SELECT 1 FROM blobs b"
        " WHERE b.sha256 = objects.sha256 AND b.size = objects.size)"
    )


def downgrade() -> None:
    """Objects keep pointing at the blobs they share: older code deletes a blob with the
    first of its objects, so run it only on a store without shared blobs."""
    op.drop_index("ix_objects_blob_key", table_name="objects")
    op.drop_index("ix_blobs_released", table_name="blobs")
    op.drop_index("uq_blobs_content", table_name="blobs")
    op.drop_table("blobs")
