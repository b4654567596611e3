"""inline blobs: the bytes of a small blob kept in its ``blobs`` row (``data``), so that a
small upload is made durable by the commit of its row alone, with no file to create,
fsync and rename (core/objects/inline.py)

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-01 03:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("blobs") as batch:
        batch.add_column(sa.Column("data", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    """Older code finds no bytes for an inline blob: refuse while any is stored."""
    inline = op.get_bind().execute(sa.text("SELECT count(*) FROM blobs WHERE data IS NOT NULL"))
    if inline.scalar_one():
        raise RuntimeError("inline blobs are stored: older versions cannot read them")
    with op.batch_alter_table("blobs") as batch:
        batch.drop_column("data")
