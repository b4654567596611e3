"""Which constraint a failed write broke, and what that means to the caller."""

from __future__ import annotations

from sqlalchemy import Index, Table, UniqueConstraint, select
from sqlalchemy.exc import IntegrityError

from ..core.errors import NamespaceGone
from .database import Database
from .schema import namespace_invites, namespaces, objects


# SQLite names only the columns of a broken unique constraint ("UNIQUE constraint failed:
# objects.owner_id, objects.name"), and no foreign key at all.
def _uniques(table: Table) -> list[UniqueConstraint | Index]:
    constraints = [c for c in table.constraints if isinstance(c, UniqueConstraint)]
    return [*constraints, *(i for i in table.indexes if i.unique)]


UNIQUE_BY_COLUMNS = {
    tuple(f"{table.name}.{column.name}" for column in unique.columns): str(unique.name)
    for table in (objects, namespaces, namespace_invites)
    for unique in _uniques(table)
}
SOME_FOREIGN_KEY = "FOREIGN KEY"  # SQLite's word for which one: the caller re-checks


def violated(exc: IntegrityError) -> str:
    """The name of the constraint a write broke: PostgreSQL reports it, SQLite is mapped by
    columns, or ``SOME_FOREIGN_KEY``. Callers compare names exactly: a substring test took
    ``fk_objects_namespace_id`` for a name clash because it contains "name"."""
    diag = getattr(exc.orig, "diag", None)
    if diag is not None and diag.constraint_name:
        return str(diag.constraint_name)
    message = str(exc.orig)
    if message.startswith("UNIQUE constraint failed: "):
        columns = tuple(message.removeprefix("UNIQUE constraint failed: ").split(", "))
        return UNIQUE_BY_COLUMNS.get(columns, message)
    if message.startswith("FOREIGN KEY constraint failed"):
        return SOME_FOREIGN_KEY
    return message


async def raise_if_namespace_gone(
    db: Database, constraint: str, foreign_key: str, namespace_id: int | None
) -> None:
    """Raise NamespaceGone when ``constraint`` (``violated``'s answer) is ``foreign_key``, the
    write's reference to namespace ``namespace_id``. SQLite does not say which key failed:
    the namespace being gone does (users, the other keys' targets, are never deleted)."""
    if namespace_id is None or constraint not in (foreign_key, SOME_FOREIGN_KEY):
        return
    still_there = select(namespaces.c.id).where(namespaces.c.id == namespace_id)
    if constraint == foreign_key or await db._first(still_there, lambda _row: True) is None:
        raise NamespaceGone("Namespace no longer exists")
