"""multipart uploads: uploads in parts (S3's), and the ETag of an object assembled from them

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30 16:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "multipart_uploads",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("upload_id", sa.String(length=64), nullable=False),
        sa.Column("namespace_id", Id, nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("owner_id", Id, nullable=False),
        sa.Column("author_id", Id, nullable=False),
        sa.Column("creator_token_id", Id),
        sa.Column("metadata_json", sa.Text()),
        sa.Column("mime_type", sa.String(length=128)),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("deadline_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["namespace_id"],
            ["namespaces.id"],
            ondelete="CASCADE",
            name="fk_multipart_uploads_namespace_id",
        ),
        sa.ForeignKeyConstraint(["owner_id"], ["users.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["author_id"], ["users.id"], ondelete="CASCADE"),
        sa.UniqueConstraint("upload_id"),
        sqlite_autoincrement=True,
    )
    op.create_index(
        "ix_multipart_uploads_namespace_name", "multipart_uploads", ["namespace_id", "name"]
    )
    op.create_index("ix_multipart_uploads_deadline", "multipart_uploads", ["deadline_ms"])
    op.create_table(
        "multipart_parts",
        sa.Column("upload_pk", Id, nullable=False),
        sa.Column("part_number", sa.Integer(), nullable=False),
        sa.Column("blob_key", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("md5", sa.String(length=32), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["upload_pk"], ["multipart_uploads.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("upload_pk", "part_number"),
    )
    # A plain ADD COLUMN, not a batch rebuild: rebuilding objects would drop its triggers.
    op.add_column("objects", sa.Column("etag", sa.String(length=64)))


def downgrade() -> None:
    op.execute("ALTER TABLE objects DROP COLUMN etag")  # SQLite 3.35+, and PostgreSQL
    op.drop_table("multipart_parts")
    op.drop_index("ix_multipart_uploads_deadline", table_name="multipart_uploads")
    op.drop_index("ix_multipart_uploads_namespace_name", table_name="multipart_uploads")
    op.drop_table("multipart_uploads")
