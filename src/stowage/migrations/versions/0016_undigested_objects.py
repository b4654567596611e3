"""undigested objects: an index of the objects whose md5 and sha256 are still to be
computed (assembled from multipart parts without reading them), so that the reaper finds
the few a restart left without walking every object

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-30 21:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UNDIGESTED = sa.text("sha256 IS NULL AND blob_key IS NOT NULL")


def upgrade() -> None:
    op.create_index(
        "ix_objects_undigested",
        "objects",
        ["id"],
        sqlite_where=UNDIGESTED,
        postgresql_where=UNDIGESTED,
    )


def downgrade() -> None:
    op.drop_index("ix_objects_undigested", table_name="objects")
