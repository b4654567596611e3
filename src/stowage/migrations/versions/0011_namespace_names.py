"""namespace names: an index to find a root by its name across owners, as S3 finds a
bucket (one bucket namespace for all users) and as creating one checks it is free

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30 18:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_namespaces_name", "namespaces", ["name"])


def downgrade() -> None:
    op.drop_index("ix_namespaces_name", table_name="namespaces")
