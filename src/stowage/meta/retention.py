"""Retention rules: a root's rule, copied down its tree as its visibility is, and the
reaper's two passes over the objects a rule no longer keeps.

Neither pass removes anything. Each lowers ``delete_after_time_ms`` (never past the
object's own TTL), so the read filter hides the object as it hides one whose TTL ran out,
and the reaper's usual sweep (``SqlObjects.reap``) then removes the row and frees its bytes.
Batches are picked ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so reapers of several replicas
take different rows; on SQLite each batch is a write transaction, which writers take in turn.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, bindparam, or_, select, update

from ..core.models import Expired, Namespace, ObjectState, Retention
from . import records
from .database import Database
from .listing import not_expired
from .schema import namespaces, objects

_NS = namespaces.c
_OBJ = objects.c


def retention_columns(rule: Retention | None) -> dict[str, int | None]:
    """A rule as the columns of ``namespaces`` hold it (None: no rule)."""
    return {
        "retention_max_age_ms": rule.max_age_ms if rule else None,
        "retention_keep_newest": rule.keep_newest if rule else None,
    }


class SqlRetention(Database):
    """``core.ports.RetentionStore``."""

    async def set_retention(self, root: Namespace, rule: Retention | None) -> Namespace | None:
        """Give the root and its whole tree ``rule``; the root as it is now, or None when
        it was deleted meanwhile."""
        tree = update(namespaces).where(_NS.root_id == root.id).values(retention_columns(rule))
        again = select(namespaces).where(_NS.id == root.id)

        def work(conn: Connection) -> Namespace | None:
            conn.execute(tree)
            row = conn.execute(again).first()
            return records.namespace(row) if row else None

        return await self._write(work)

    async def retained_roots(self) -> list[Namespace]:
        """Every root namespace with a rule."""
        stmt = (
            select(namespaces)
            .where(
                _NS.parent_id.is_(None),
                or_(_NS.retention_max_age_ms.is_not(None), _NS.retention_keep_newest.is_not(None)),
            )
            .order_by(_NS.owner_id, _NS.path)
        )
        return await self._read(lambda conn: [records.namespace(r) for r in conn.execute(stmt)])

    async def expire_aged(self, horizon_ms: int, limit: int) -> Expired:
        """Set the expiry of up to ``limit`` objects that reach their namespace's max_age
        by ``horizon_ms`` to that moment, unless their own TTL ends sooner; the read filter
        then hides each exactly at its age."""
        ruled = select(_NS.id, _NS.retention_max_age_ms).where(
            _NS.retention_max_age_ms.is_not(None)
        )

        def aged(namespace_id: int, max_age_ms: int, room: int) -> Any:
            """A range of ``ix_objects_namespace_created``."""
            due = _OBJ.create_time_ms + max_age_ms
            pick = (
                select(_OBJ.id, _OBJ.size, due.label("due"))
                .where(
                    _OBJ.namespace_id == namespace_id,
                    _OBJ.create_time_ms <= horizon_ms - max_age_ms,
                    _OBJ.state != ObjectState.DELETED.value,
                    or_(_OBJ.delete_after_time_ms.is_(None), _OBJ.delete_after_time_ms > due),
                )
                .limit(room)
            )
            return pick if self._sqlite else pick.with_for_update(skip_locked=True)

        stamp = (
            update(objects)
            .where(_OBJ.id == bindparam("b_id"))
            .values(delete_after_time_ms=bindparam("b_due"))
        )

        def work(conn: Connection) -> Expired:
            rows = self._per_namespace(conn, ruled, limit, aged)
            if rows:
                conn.execute(stamp, [{"b_id": r.id, "b_due": r.due} for r in rows])
            return Expired(len(rows), sum(r.size or 0 for r in rows))

        return await self._write(work)

    async def expire_surplus(self, now_ms: int, limit: int) -> Expired:
        """Expire now up to ``limit`` completed objects that are not among the newest
        ``keep_newest`` (by id, which follows creation) live ones of their namespace."""
        ruled = select(_NS.id, _NS.retention_keep_newest).where(
            _NS.retention_keep_newest.is_not(None)
        )
        live = (
            _OBJ.state == ObjectState.READ_ONLY.value,
            not_expired(now_ms, state=ObjectState.READ_ONLY),
        )

        def surplus(namespace_id: int, keep: int, room: int) -> Any:
            """Past the newest ``keep`` on ``ix_objects_namespace_id``, read without locks
            (a row locked among the newest must not shift the count), then locked and
            checked again: a reaper of another replica may have expired some since."""
            past = (
                select(_OBJ.id)
                .where(_OBJ.namespace_id == namespace_id, *live)
                .order_by(_OBJ.id.desc())
                .offset(keep)
                .limit(room)
            )
            pick = select(_OBJ.id, _OBJ.size).where(_OBJ.id.in_(past), *live)
            return pick if self._sqlite else pick.with_for_update(skip_locked=True)

        def work(conn: Connection) -> Expired:
            rows = self._per_namespace(conn, ruled, limit, surplus)
            if rows:
                conn.execute(
                    update(objects)
                    .where(_OBJ.id.in_([r.id for r in rows]))
                    .values(delete_after_time_ms=now_ms)
                )
            return Expired(len(rows), sum(r.size or 0 for r in rows))

        return await self._write(work)

    @staticmethod
    def _per_namespace(
        conn: Connection, ruled: Any, limit: int, pick: Callable[[int, int, int], Any]
    ) -> list[Any]:
        """Up to ``limit`` rows of ``pick(namespace id, its limit, room left)`` over the
        namespaces ``ruled`` lists. One query per namespace, each on an index that starts
        with ``namespace_id``: as one join, SQLite's planner scanned every object instead."""
        rows: list[Any] = []
        for namespace_id, rule_limit in conn.execute(ruled).all():
            if len(rows) >= limit:
                break
            rows.extend(conn.execute(pick(namespace_id, rule_limit, limit - len(rows))).all())
        return rows
