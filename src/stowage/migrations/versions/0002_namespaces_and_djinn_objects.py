"""namespaces, collaborators, invites; objects get a namespace, a sniffed type, unique names

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 11:39:02.114049
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TOP_LEVEL = sa.text("unique_name AND namespace_id IS NULL")
NAMESPACED = sa.text("unique_name AND namespace_id IS NOT NULL")


def upgrade() -> None:
    op.create_table(
        "namespaces",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("owner_id", Id, nullable=False),
        sa.Column("root_id", Id, nullable=True),
        sa.Column("parent_id", Id, nullable=True),
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("description", sa.String(length=255), nullable=False),
        sa.Column("visibility", sa.String(length=16), nullable=False),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["owner_id"], ["users.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["parent_id"], ["namespaces.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("owner_id", "path", name="uq_namespaces_owner_path"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_namespaces_root", "namespaces", ["root_id"])
    op.create_table(
        "namespace_collaborators",
        sa.Column("namespace_id", Id, nullable=False),
        sa.Column("user_id", Id, nullable=False),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["namespace_id"], ["namespaces.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("namespace_id", "user_id"),
    )
    op.create_index("ix_namespace_collaborators_user", "namespace_collaborators", ["user_id"])
    op.create_table(
        "namespace_invites",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("namespace_id", Id, nullable=False),
        sa.Column("inviter_id", Id, nullable=False),
        sa.Column("invitee_id", Id, nullable=False),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["invitee_id"], ["users.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["inviter_id"], ["users.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["namespace_id"], ["namespaces.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("namespace_id", "invitee_id", name="uq_namespace_invites_invitee"),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("objects") as batch_op:
        batch_op.add_column(sa.Column("namespace_id", Id, nullable=True))
        batch_op.add_column(sa.Column("mime_type", sa.String(length=128), nullable=True))
        batch_op.add_column(
            sa.Column("unique_name", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.create_foreign_key(
            "fk_objects_namespace_id", "namespaces", ["namespace_id"], ["id"], ondelete="SET NULL"
        )
        batch_op.create_index("ix_objects_namespace_id", ["namespace_id", "id"])
        batch_op.create_index("ix_objects_owner_id", ["owner_id", "id"])
        batch_op.create_index(
            "uq_objects_owner_name",
            ["owner_id", "name"],
            unique=True,
            sqlite_where=TOP_LEVEL,
            postgresql_where=TOP_LEVEL,
        )
        batch_op.create_index(
            "uq_objects_namespace_name",
            ["namespace_id", "name"],
            unique=True,
            sqlite_where=NAMESPACED,
            postgresql_where=NAMESPACED,
        )


def downgrade() -> None:
    with op.batch_alter_table("objects") as batch_op:
        batch_op.drop_index("uq_objects_namespace_name")
        batch_op.drop_index("uq_objects_owner_name")
        batch_op.drop_index("ix_objects_owner_id")
        batch_op.drop_index("ix_objects_namespace_id")
        batch_op.drop_constraint("fk_objects_namespace_id", type_="foreignkey")
        batch_op.drop_column("unique_name")
        batch_op.drop_column("mime_type")
        batch_op.drop_column("namespace_id")
    op.drop_table("namespace_invites")
    op.drop_index("ix_namespace_collaborators_user", "namespace_collaborators")
    op.drop_table("namespace_collaborators")
    op.drop_index("ix_namespaces_root", "namespaces")
    op.drop_table("namespaces")
