"""objects: counters for total_count, a covering index for deep pages, FTS5 search on SQLite

* ``object_counts``: how many rows ``objects`` has per (owner, namespace or 0, state,
  content type), spread over 16 slots by id so that one owner's concurrent writers rarely
  wait on one counter row. Triggers keep it in the transaction of every write to
  ``objects``, whatever the code path (SQLite: row triggers; PostgreSQL: statement
  triggers over the transition tables, which lock counter rows in key order, so two
  writers cannot deadlock on them). A list's ``total_count`` sums counters and subtracts
  the expired rows the reaper has not removed yet. The counters start from the rows there.
* ``ix_objects_owner_state``: an owner's objects of one state, newest first, with their
  expiry, so skipping rows for a deep page (Djinn's lists are of one state) reads this
  index alone.
* SQLite: ``objects_fts``, an FTS5 trigram index of names (external content: it keeps no
  copy of them), so a substring search of 3+ characters finds its rows without a scan.
  PostgreSQL has pg_trgm (0003).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
SLOTS = 16
KEY = "owner_id, namespace_id, state, content_type, slot"
# The key of an objects row (NEW or OLD in a trigger, or a transition table's row).
ROW_KEY = f"owner_id, coalesce(namespace_id, 0), state, content_type, id % {SLOTS}"
LISTING = ["owner_id", "state", "public_id", "delete_after_time_ms"]
COUNTED = ("owner_id", "namespace_id", "state", "content_type")

SQLITE_TRIGGERS = [
    f"""CREATE TRIGGER objects_count_insert AFTER INSERT ON objects BEGIN
        INSERT INTO object_counts ({KEY}, n)
        VALUES (new.owner_id, coalesce(new.namespace_id, 0), new.state, new.content_type,
                new.id % {SLOTS}, 1)
        ON CONFLICT ({KEY}) DO UPDATE SET n = n + 1;
        INSERT INTO objects_fts (rowid, name) VALUES (new.id, new.name);
    END""",
    f"""CREATE TRIGGER objects_count_delete AFTER DELETE ON objects BEGIN
        UPDATE object_counts SET n = n - 1
        WHERE owner_id = old.owner_id AND namespace_id = coalesce(old.namespace_id, 0)
          AND state = old.state AND content_type = old.content_type
          AND slot = old.id % {SLOTS};
        INSERT INTO objects_fts (objects_fts, rowid, name) VALUES ('delete', old.id, old.name);
    END""",
    f"""CREATE TRIGGER objects_count_update AFTER UPDATE OF {", ".join(COUNTED)} ON objects
    WHEN {" OR ".join(f"old.{c} IS NOT new.{c}" for c in COUNTED)} BEGIN
        UPDATE object_counts SET n = n - 1
        WHERE owner_id = old.owner_id AND namespace_id = coalesce(old.namespace_id, 0)
          AND state = old.state AND content_type = old.content_type
          AND slot = old.id % {SLOTS};
        INSERT INTO object_counts ({KEY}, n)
        VALUES (new.owner_id, coalesce(new.namespace_id, 0), new.state, new.content_type,
                new.id % {SLOTS}, 1)
        ON CONFLICT ({KEY}) DO UPDATE SET n = n + 1;
    END""",
    """CREATE TRIGGER objects_fts_rename AFTER UPDATE OF name ON objects BEGIN
        INSERT INTO objects_fts (objects_fts, rowid, name) VALUES ('delete', old.id, old.name);
        INSERT INTO objects_fts (rowid, name) VALUES (new.id, new.name);
    END""",
]

# One function for the three statement triggers. A statement's deltas are summed per
# counter and applied in key order, so concurrent writers lock counter rows in one order.
PG_DELTAS = {
    "INSERT": f"SELECT {ROW_KEY}, 1 FROM new_rows",
    "DELETE": f"SELECT {ROW_KEY}, -1 FROM old_rows",
    "UPDATE": f"SELECT {ROW_KEY}, 1 FROM new_rows UNION ALL SELECT {ROW_KEY}, -1 FROM old_rows",
}
PG_APPLY = f"""INSERT INTO object_counts AS c ({KEY}, n)
        SELECT {KEY}, sum(n) FROM ({{deltas}}) AS d ({KEY}, n)
        GROUP BY 1, 2, 3, 4, 5 HAVING sum(n) <> 0 ORDER BY 1, 2, 3, 4, 5
        ON CONFLICT ({KEY}) DO UPDATE SET n = c.n + excluded.n;"""
PG_BRANCHES = "\n    ELSIF ".join(
    f"TG_OP = '{event}' THEN\n        {PG_APPLY.format(deltas=deltas)}"
    for event, deltas in PG_DELTAS.items()
)
PG_FUNCTION = f"""CREATE FUNCTION objects_count_changes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF {PG_BRANCHES}
    END IF;
    RETURN NULL;
END $$"""

PG_TRIGGERS = [
    """CREATE TRIGGER objects_count_insert AFTER INSERT ON objects
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION objects_count_changes()""",
    """CREATE TRIGGER objects_count_delete AFTER DELETE ON objects
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION objects_count_changes()""",
    """CREATE TRIGGER objects_count_update AFTER UPDATE ON objects
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION objects_count_changes()""",
]


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    op.create_table(
        "object_counts",
        sa.Column("owner_id", Id, nullable=False, autoincrement=False),
        sa.Column("namespace_id", Id, nullable=False, autoincrement=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("content_type", sa.String(length=16), nullable=False),
        sa.Column("slot", sa.Integer(), nullable=False, autoincrement=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(*KEY.split(", ")),
    )
    op.create_index("ix_object_counts_namespace", "object_counts", ["namespace_id"])
    op.create_index("ix_objects_owner_state", "objects", LISTING)
    # Triggers first: on PostgreSQL, creating them locks out writes until this commits,
    # so no write falls between the counting below and the triggers.
    if sqlite:
        op.execute(
            "CREATE VIRTUAL TABLE objects_fts USING fts5"
            "(name, content='objects', content_rowid='id', tokenize='trigram')"
        )
        for trigger in SQLITE_TRIGGERS:
            op.execute(trigger)
        op.execute("INSERT INTO objects_fts (objects_fts) VALUES ('rebuild')")
    else:
        op.execute(PG_FUNCTION)
        for trigger in PG_TRIGGERS:
            op.execute(trigger)
    op.execute(
        f"INSERT INTO object_counts ({KEY}, n)"
        f" SELECT {ROW_KEY}, count(*) FROM objects GROUP BY 1, 2, 3, 4, 5"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for trigger in SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER {trigger.split()[2]}")
        op.execute("DROP TABLE objects_fts")
    else:
        for trigger in PG_TRIGGERS:
            op.execute(f"DROP TRIGGER {trigger.split()[2]} ON objects")
        op.execute("DROP FUNCTION objects_count_changes()")
    op.drop_index("ix_objects_owner_state", table_name="objects")
    op.drop_index("ix_object_counts_namespace", table_name="object_counts")
    op.drop_table("object_counts")
