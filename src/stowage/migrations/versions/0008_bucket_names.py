"""bucket names: a root namespace may be named as an S3 bucket, up to 63 characters; keys
listed in byte order from an index on PostgreSQL

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30 16:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # SQLite does not enforce a VARCHAR's length; batch mode rebuilds the table only there.
    with op.batch_alter_table("namespaces") as batch:
        batch.alter_column("name", type_=sa.String(length=63), existing_nullable=False)
    if op.get_context().dialect.name == "postgresql":
        # S3 lists a namespace's keys in byte order (COLLATE "C"), which the name index,
        # in the database's collation, cannot give; SQLite compares text as bytes already.
        op.execute(
            "CREATE INDEX ix_objects_namespace_name_bytes "
            'ON objects (namespace_id, name COLLATE "C") '
            "WHERE unique_name AND namespace_id IS NOT NULL"
        )


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute("DROP INDEX ix_objects_namespace_name_bytes")
    with op.batch_alter_table("namespaces") as batch:
        batch.alter_column("name", type_=sa.String(length=32), existing_nullable=False)
