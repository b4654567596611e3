"""object headers and checksums: the response headers and the checksum a client gives an
object (S3's Cache-Control, Content-Disposition…, x-amz-checksum-*), its upload's in
parts, and each part's checksum

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD COLUMNs, not batch rebuilds: rebuilding objects would drop its triggers.
    op.add_column("objects", sa.Column("attributes_json", sa.Text()))
    op.add_column("multipart_uploads", sa.Column("attributes_json", sa.Text()))
    op.add_column("multipart_parts", sa.Column("checksum", sa.Text()))


def downgrade() -> None:
    # DROP COLUMN: SQLite 3.35+, and PostgreSQL.
    op.execute("ALTER TABLE multipart_parts DROP COLUMN checksum")
    op.execute("ALTER TABLE multipart_uploads DROP COLUMN attributes_json")
    op.execute("ALTER TABLE objects DROP COLUMN attributes_json")
