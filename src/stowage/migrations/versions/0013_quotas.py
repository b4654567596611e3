"""quotas: limits per owner or per root namespace, and the bytes each counter holds

* ``quotas``: one row per limited owner or root namespace (``max_bytes``, ``max_objects``).
* ``object_counts.bytes``: the sum of ``size`` of the rows a counter counts, kept by the
  same triggers as ``n`` (recreated here with it), so an owner's or a namespace tree's
  usage is a sum of counters, exact in the transaction that writes the rows.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-30 21:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
SLOTS = 16
KEY = "owner_id, namespace_id, state, content_type, slot"
ROW_KEY = f"owner_id, coalesce(namespace_id, 0), state, content_type, id % {SLOTS}"
COUNTED = ("owner_id", "namespace_id", "state", "content_type")
TRIGGERS = ("objects_count_insert", "objects_count_delete", "objects_count_update")


def _sqlite_triggers(with_bytes: bool) -> list[str]:
    """The counting triggers of 0006, counting ``size`` into ``bytes`` too when asked."""
    new_size, old_size = ("coalesce(new.size, 0)", "coalesce(old.size, 0)")
    add = f", bytes = bytes + {new_size}" if with_bytes else ""
    sub = f", bytes = bytes - {old_size}" if with_bytes else ""
    cols = f"{KEY}, n, bytes" if with_bytes else f"{KEY}, n"
    vals = f"1, {new_size}" if with_bytes else "1"
    watched = (*COUNTED, "size") if with_bytes else COUNTED
    insert_new = f"""INSERT INTO object_counts ({cols})
        VALUES (new.owner_id, coalesce(new.namespace_id, 0), new.state, new.content_type,
                new.id % {SLOTS}, {vals})
        ON CONFLICT ({KEY}) DO UPDATE SET n = n + 1{add};"""
    remove_old = f"""UPDATE object_counts SET n = n - 1{sub}
        WHERE owner_id = old.owner_id AND namespace_id = coalesce(old.namespace_id, 0)
          AND state = old.state AND content_type = old.content_type
          AND slot = old.id % {SLOTS};"""
    return [
        f"""CREATE TRIGGER objects_count_insert AFTER INSERT ON objects BEGIN
        {insert_new}
        INSERT INTO objects_fts (rowid, name) VALUES (new.id, new.name);
    END""",
        f"""CREATE TRIGGER objects_count_delete AFTER DELETE ON objects BEGIN
        {remove_old}
        INSERT INTO objects_fts (objects_fts, rowid, name) VALUES ('delete', old.id, old.name);
    END""",
        f"""CREATE TRIGGER objects_count_update AFTER UPDATE OF {", ".join(watched)} ON objects
    WHEN {" OR ".join(f"old.{c} IS NOT new.{c}" for c in watched)} BEGIN
        {remove_old}
        {insert_new}
    END""",
    ]


def _pg_function(with_bytes: bool) -> str:
    """0006's statement-trigger function: a statement's deltas summed per counter and
    applied in key order (so writers lock counters in one order), with bytes when asked."""
    size = ", coalesce(size, 0)" if with_bytes else ""
    minus = ", -coalesce(size, 0)" if with_bytes else ""
    deltas = {
        "INSERT": f"SELECT {ROW_KEY}, 1{size} FROM new_rows",
        "DELETE": f"SELECT {ROW_KEY}, -1{minus} FROM old_rows",
        "UPDATE": f"SELECT {ROW_KEY}, 1{size} FROM new_rows"
        f" UNION ALL SELECT {ROW_KEY}, -1{minus} FROM old_rows",
    }
    if with_bytes:
        apply = f"""INSERT INTO object_counts AS c ({KEY}, n, bytes)
        SELECT {KEY}, sum(n), sum(b) FROM ({{deltas}}) AS d ({KEY}, n, b)
        GROUP BY 1, 2, 3, 4, 5 HAVING sum(n) <> 0 OR sum(b) <> 0 ORDER BY 1, 2, 3, 4, 5
        ON CONFLICT ({KEY}) DO UPDATE SET n = c.n + excluded.n, bytes = c.bytes + excluded.bytes;"""
    else:
        apply = f"""INSERT INTO object_counts AS c ({KEY}, n)
        SELECT {KEY}, sum(n) FROM ({{deltas}}) AS d ({KEY}, n)
        GROUP BY 1, 2, 3, 4, 5 HAVING sum(n) <> 0 ORDER BY 1, 2, 3, 4, 5
        ON CONFLICT ({KEY}) DO UPDATE SET n = c.n + excluded.n;"""
    branches = "\n    ELSIF ".join(
        f"TG_OP = '{event}' THEN\n        {apply.format(deltas=d)}" for event, d in deltas.items()
    )
    return f"""CREATE OR REPLACE FUNCTION objects_count_changes() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF {branches}
    END IF;
    RETURN NULL;
END $$"""


def _recount() -> None:
    """The counters, bytes included, from the rows."""
    op.execute("DELETE FROM object_counts")
    op.execute(
        f"INSERT INTO object_counts ({KEY}, n, bytes)"
        f" SELECT {ROW_KEY}, count(*), coalesce(sum(size), 0) FROM objects GROUP BY 1, 2, 3, 4, 5"
    )


def _swap_triggers(with_bytes: bool) -> None:
    if op.get_bind().dialect.name == "sqlite":
        for name in TRIGGERS:
            op.execute(f"DROP TRIGGER {name}")
        for trigger in _sqlite_triggers(with_bytes):
            op.execute(trigger)
    else:
        op.execute(_pg_function(with_bytes))  # the statement triggers call it by name


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":  # no write to objects until this commits
        op.execute("LOCK TABLE objects IN SHARE ROW EXCLUSIVE MODE")
    op.add_column(
        "object_counts",
        sa.Column("bytes", sa.BigInteger(), nullable=False, server_default=sa.text("0")),
    )
    _recount()
    _swap_triggers(with_bytes=True)
    op.create_table(
        "quotas",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("user_id", Id, nullable=True),
        sa.Column("namespace_id", Id, nullable=True),
        sa.Column("max_bytes", sa.BigInteger(), nullable=True),
        sa.Column("max_objects", sa.BigInteger(), nullable=True),
        sa.CheckConstraint(
            "(user_id IS NULL) <> (namespace_id IS NULL)", name="ck_quotas_one_scope"
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["namespace_id"],
            ["namespaces.id"],
            ondelete="CASCADE",
            name="quotas_namespace_id_fkey",
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("user_id"),
        sa.UniqueConstraint("namespace_id"),
        sqlite_autoincrement=True,
    )


def downgrade() -> None:
    op.drop_table("quotas")
    _swap_triggers(with_bytes=False)
    op.execute("ALTER TABLE object_counts DROP COLUMN bytes")  # SQLite 3.35+
