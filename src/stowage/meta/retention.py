"""Retention rules: a root's rule, copied down its tree as its visibility is, and the
reaper's two passes over the objects a rule no longer keeps.

Neither pass removes anything. Each lowers ``delete_after_time_ms`` (never past the
object's own TTL), so the read filter hides the object as it hides one whose TTL ran out,
and the reaper's usual sweep (``SqlObjects.reap``) then removes the row and frees its bytes.
Batches are picked ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so reapers of several replicas
take different rows; on SQLite each batch is a write transaction, which writers take in turn.
"""

from __future__ import annotations

from sqlalchemy import Connection, bindparam, func, or_, select, update

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
        due = (_OBJ.create_time_ms + _NS.retention_max_age_ms).label("due")
        pick = (
            select(_OBJ.id, _OBJ.size, due)
            .join_from(namespaces, objects, _OBJ.namespace_id == _NS.id)
            .where(
                _NS.retention_max_age_ms.is_not(None),
                _OBJ.create_time_ms <= horizon_ms - _NS.retention_max_age_ms,
                _OBJ.state != ObjectState.DELETED.value,
                or_(_OBJ.delete_after_time_ms.is_(None), _OBJ.delete_after_time_ms > due),
            )
            .limit(limit)
        )
        if not self._sqlite:
            pick = pick.with_for_update(skip_locked=True, of=objects)
        stamp = (
            update(objects)
            .where(_OBJ.id == bindparam("b_id"))
            .values(delete_after_time_ms=bindparam("b_due"))
        )

        def work(conn: Connection) -> Expired:
            rows = conn.execute(pick).all()
            if rows:
                conn.execute(stamp, [{"b_id": r.id, "b_due": r.due} for r in rows])
            return Expired(len(rows), sum(r.size or 0 for r in rows))

        return await self._write(work)

    async def expire_surplus(self, now_ms: int, limit: int) -> Expired:
        """Expire now up to ``limit`` completed objects that are not among the newest
        ``keep_newest`` (by id, which follows creation) live ones of their namespace."""
        read_only = ObjectState.READ_ONLY
        rank = func.row_number().over(partition_by=_OBJ.namespace_id, order_by=_OBJ.id.desc())
        ranked = (
            select(_OBJ.id, rank.label("rank"), _NS.retention_keep_newest.label("keep"))
            .join_from(namespaces, objects, _OBJ.namespace_id == _NS.id)
            .where(
                _NS.retention_keep_newest.is_not(None),
                _OBJ.state == read_only.value,
                not_expired(now_ms, state=read_only),
            )
            .subquery()
        )
        surplus = select(ranked.c.id).where(ranked.c.rank > ranked.c.keep).limit(limit)
        # Checked again on the rows themselves: a reaper of another replica may have
        # expired some of them since (and holds their locks until it commits).
        pick = select(_OBJ.id, _OBJ.size).where(
            _OBJ.id.in_(surplus),
            _OBJ.state == read_only.value,
            not_expired(now_ms, state=read_only),
        )
        if not self._sqlite:
            pick = pick.with_for_update(skip_locked=True)

        def work(conn: Connection) -> Expired:
            rows = conn.execute(pick).all()
            if rows:
                conn.execute(
                    update(objects)
                    .where(_OBJ.id.in_([r.id for r in rows]))
                    .values(delete_after_time_ms=now_ms)
                )
            return Expired(len(rows), sum(r.size or 0 for r in rows))

        return await self._write(work)
