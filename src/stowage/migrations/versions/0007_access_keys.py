"""tokens: S3 access keys are token rows with an access key id and a secret salt

A key's secret is derived from the server's secret, its id and its salt (core/keys.py) and
stored nowhere; the row gives a signed request a token id like any other. Both columns stay
NULL on bearer tokens. A unique index, not a constraint, so SQLite adds it without
rebuilding the table.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("tokens", sa.Column("access_key_id", sa.String(length=20), nullable=True))
    op.add_column("tokens", sa.Column("secret_salt", sa.String(length=32), nullable=True))
    op.create_index("uq_tokens_access_key_id", "tokens", ["access_key_id"], unique=True)


def downgrade() -> None:
    # Left behind, a key row would be a bearer token whose hash anyone can compute from the
    # public access key id (sha256 of "access-key:<id>"), once the column that tells it
    # apart is gone. Plain DROP COLUMN (SQLite 3.35+): a batch rebuild would drop the table,
    # and with it, through ON DELETE CASCADE, every idempotency key.
    op.execute("DELETE FROM tokens WHERE access_key_id IS NOT NULL")
    op.drop_index("uq_tokens_access_key_id", table_name="tokens")
    op.drop_column("tokens", "secret_salt")
    op.drop_column("tokens", "access_key_id")
