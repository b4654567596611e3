"""objects: who created an upload, where its direct upload lands, and until when

* ``creator_token_id``: presigned uploads count against the token that created the object,
  so one token cannot hold every upload slot through many upload URLs.
* ``staging_key``: a random key per object for direct (presigned S3) uploads; ``complete``
  copies it and deletes it, so a later PUT to the old URL writes bytes nobody reads and the
  reaper removes.
* ``upload_deadline_ms``: an UPLOADING object vanishes then and the reaper removes it;
  upload URLs never outlive it. Rows already UPLOADING get the default (24 h after their
  creation) and the staging key the old code derived from their id.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
DEFAULT_UPLOAD_TTL_MS = 24 * 3600 * 1000


def upgrade() -> None:
    with op.batch_alter_table("objects") as batch_op:
        batch_op.add_column(sa.Column("creator_token_id", Id, nullable=True))
        batch_op.add_column(sa.Column("staging_key", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("upload_deadline_ms", sa.BigInteger(), nullable=True))
        batch_op.create_index("ix_objects_upload_deadline", ["upload_deadline_ms"])
    op.execute(
        "UPDATE objects SET staging_key = 'upload-' || public_id,"
        f" upload_deadline_ms = create_time_ms + {DEFAULT_UPLOAD_TTL_MS}"
        " WHERE state = 'UPLOADING'"
    )


def downgrade() -> None:
    with op.batch_alter_table("objects") as batch_op:
        batch_op.drop_index("ix_objects_upload_deadline")
        batch_op.drop_column("upload_deadline_ms")
        batch_op.drop_column("staging_key")
        batch_op.drop_column("creator_token_id")
