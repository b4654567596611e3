"""retention rules: a root namespace's max_age and keep_newest, copied down its tree, and
an index of a namespace's objects by age for the reaper's max_age pass

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-30 21:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("namespaces", sa.Column("retention_max_age_ms", sa.BigInteger()))
    op.add_column("namespaces", sa.Column("retention_keep_newest", sa.Integer()))
    op.create_index("ix_objects_namespace_created", "objects", ["namespace_id", "create_time_ms"])


def downgrade() -> None:
    op.drop_index("ix_objects_namespace_created", table_name="objects")
    op.execute("ALTER TABLE namespaces DROP COLUMN retention_keep_newest")  # SQLite 3.35+
    op.execute("ALTER TABLE namespaces DROP COLUMN retention_max_age_ms")
