"""PostgreSQL: trigram indexes for case-insensitive substring search

Searches are ``lower(column) LIKE '%term%'``, which no b-tree can serve. pg_trgm's GIN
indexes can. SQLite scans (its LIKE is case-insensitive already and the tables are local).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 11:58:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    bind = op.get_bind()
    bind.execute(sa.text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
    # The extension may live in another schema than ours: name its operator class fully.
    schema = bind.execute(
        sa.text(
            "SELECT n.nspname FROM pg_extension e"
            " JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pg_trgm'"
        )
    ).scalar_one()
    ops = f'"{schema}".gin_trgm_ops'
    op.execute(f"CREATE INDEX ix_objects_name_trgm ON objects USING gin (lower(name) {ops})")
    op.execute(f"CREATE INDEX ix_namespaces_path_trgm ON namespaces USING gin (lower(path) {ops})")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP INDEX ix_namespaces_path_trgm")
    op.execute("DROP INDEX ix_objects_name_trgm")
