"""Quotas: their rows, what owners and namespace trees hold, and the check every write that
adds objects or bytes makes in its own transaction.

Usage is read from ``object_counts`` (``n`` and ``bytes``, kept by triggers in the
transaction of every write to ``objects``) less the expired rows the reaper has not removed
yet, so deletes and expiry release quota at once, plus the parts of multipart uploads in
progress (bytes a completion turns into an object's). The check is exact under concurrency
because a write under a quota first locks the quota's row (``FOR UPDATE``) and reads the
usage only after its own write: on PostgreSQL the next writer under that quota waits for
the lock until the first commits, and its next statement (READ COMMITTED: a new snapshot)
sees the committed counters; on SQLite writers are serialised anyway. Writes to owners and
namespaces without a quota find no row, lock nothing and read no usage.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, delete, func, insert, or_, select, true, update
from sqlalchemy.engine import Dialect

from ..core.errors import QuotaExceeded
from ..core.models import ObjectState, Quota, Usage
from . import records
from .database import Database
from .listing import _expired
from .prepared import Prepared
from .prepared import Row as PreparedRow
from .schema import multipart_parts, multipart_uploads, namespaces, object_counts, objects, quotas

# The states whose rows hold quota: an unfinished upload's bytes are stored already.
COUNTED = (ObjectState.UPLOADING.value, ObjectState.READ_ONLY.value)

# The quotas over a write: its owner's, and its namespace's root's, locked in id order so
# two writers under both lock them in the same order.
_ROOT_OF = select(namespaces.c.root_id).where(namespaces.c.id == bindparam("namespace_id"))
_OVER = Prepared(
    select(quotas)
    .where(
        or_(
            quotas.c.user_id == bindparam("owner_id"),
            quotas.c.namespace_id == _ROOT_OF.scalar_subquery(),
        )
    )
    .order_by(quotas.c.id)
    .with_for_update()
)


def _in_scope(columns: Any, quota: Quota) -> Any:
    """The rows (of ``objects``, their counters, or multipart uploads) a quota counts."""
    if quota.user_id is not None:
        return columns.owner_id == quota.user_id
    tree = select(namespaces.c.id).where(namespaces.c.root_id == quota.namespace_id)
    return columns.namespace_id.in_(tree)


def usage_in(conn: Connection, quota: Quota, now_ms: int) -> Usage:
    """What the quota's owner or namespace tree holds now, in one statement (one snapshot)."""
    c = object_counts.c
    stored = (
        select(
            func.coalesce(func.sum(c.n), 0).label("n"),
            func.coalesce(func.sum(c.bytes), 0).label("b"),
        )
        .where(c.state.in_(COUNTED), _in_scope(c, quota))
        .subquery()
    )
    # Materialized: found by the deadline indexes, never by walking the scope's rows.
    e = (
        select(objects.c.owner_id, objects.c.namespace_id, objects.c.state, objects.c.size)
        .where(_expired(now_ms))
        .cte("expired")
        .prefix_with("MATERIALIZED")
    )
    unreaped = (
        select(func.count().label("n"), func.coalesce(func.sum(e.c.size), 0).label("b"))
        .where(e.c.state.in_(COUNTED), _in_scope(e.c, quota))
        .subquery()
    )
    u = multipart_uploads.c
    in_parts = (
        select(func.coalesce(func.sum(multipart_parts.c.size), 0).label("b"))
        .select_from(multipart_parts.join(multipart_uploads))
        .where(u.deadline_ms > now_ms, _in_scope(u, quota))
        .subquery()
    )
    both = select(stored.c.n - unreaped.c.n, stored.c.b - unreaped.c.b + in_parts.c.b).select_from(
        stored.join(unreaped, true()).join(in_parts, true())
    )
    count, size = conn.execute(both).one()
    return Usage(objects=int(count), bytes=int(size))


def _quota(row: Any) -> Quota:
    return records.record(Quota, row)


def _of(user_id: int | None, namespace_id: int | None) -> Any:
    """The quota row of a user, else of a root namespace."""
    if user_id is not None:
        return quotas.c.user_id == user_id
    return quotas.c.namespace_id == namespace_id


@dataclass(frozen=True, slots=True)
class HeldQuotas:
    """The quotas over one write, locked until its transaction ends (maybe none)."""

    conn: Connection
    held: list[Quota]

    @classmethod
    def lock(
        cls, conn: Connection, dialect: Dialect, owner_id: int, namespace_id: int | None
    ) -> HeldQuotas:
        """Take the quotas over a write to ``owner_id`` in ``namespace_id``; call before
        the write, after any lock on the object rows it changes."""
        params = {"owner_id": owner_id, "namespace_id": namespace_id}
        rows: list[PreparedRow] = _OVER.rows(conn, dialect, params)
        return cls(conn, [_quota(r) for r in rows])

    def check(self, now_ms: int, added_bytes: int, added_objects: int) -> None:
        """After the write: raise QuotaExceeded (rolling it back) when it added bytes or
        objects and the usage it leaves is over a limit. A write that adds nothing passes
        even over a lowered limit, so replacing with something smaller always works."""
        for quota in self.held:
            limits = [
                (dimension, limit)
                for dimension, limit, added in (
                    ("bytes", quota.max_bytes, added_bytes),
                    ("objects", quota.max_objects, added_objects),
                )
                if limit is not None and added > 0
            ]
            if not limits:
                continue
            usage = usage_in(self.conn, quota, now_ms)
            for dimension, limit in limits:
                value = usage.bytes if dimension == "bytes" else usage.objects
                if value > limit:
                    scope = "user" if quota.user_id is not None else "namespace"
                    raise QuotaExceeded(scope, dimension, limit, value)


class SqlQuotas(Database):
    """``core.ports.QuotaStore``: the quota rows and the usage reports."""

    async def set_quota(
        self,
        *,
        user_id: int | None = None,
        namespace_id: int | None = None,
        max_bytes: int | None = None,
        max_objects: int | None = None,
    ) -> Quota:
        """Set the limits given (the others stay as they were) of a user or a root."""
        where = _of(user_id, namespace_id)
        limits = (("max_bytes", max_bytes), ("max_objects", max_objects))
        given = {k: v for k, v in limits if v is not None}

        def work(conn: Connection) -> Quota:
            found = conn.execute(select(quotas).where(where).with_for_update()).first()
            if found is None:
                values = {"user_id": user_id, "namespace_id": namespace_id, **given}
                row = conn.execute(insert(quotas).values(values).returning(*quotas.c)).one()
            elif given:
                stmt = update(quotas).where(quotas.c.id == found.id).values(given)
                row = conn.execute(stmt.returning(*quotas.c)).one()
            else:
                row = found
            return _quota(row)

        return await self._write(work)

    async def clear_quota(
        self, *, user_id: int | None = None, namespace_id: int | None = None
    ) -> bool:
        stmt = delete(quotas).where(_of(user_id, namespace_id))
        return await self._write(lambda conn: conn.execute(stmt).rowcount > 0)

    async def list_quotas(self) -> list[Quota]:
        stmt = select(quotas).order_by(quotas.c.id)
        return await self._read(lambda conn: [_quota(r) for r in conn.execute(stmt)])

    async def quota_of(
        self, *, user_id: int | None = None, namespace_id: int | None = None
    ) -> Quota | None:
        return await self._first(select(quotas).where(_of(user_id, namespace_id)), _quota)

    async def usage(
        self, *, user_id: int | None = None, namespace_id: int | None = None, now_ms: int
    ) -> Usage:
        """What a user owns, or a root namespace's tree holds (quota or not)."""
        scope = Quota(0, user_id, namespace_id if user_id is None else None, None, None)
        return await self._read(lambda conn: usage_in(conn, scope, now_ms))

    async def usages(self, *, now_ms: int) -> dict[int, Usage]:
        """What each owner who ever stored an object holds (for ``stowage usage``)."""
        c, o = object_counts.c, objects.c
        stored = (
            select(c.owner_id, func.sum(c.n), func.sum(c.bytes))
            .where(c.state.in_(COUNTED))
            .group_by(c.owner_id)
        )
        unreaped = (
            select(o.owner_id, func.count(), func.coalesce(func.sum(o.size), 0))
            .where(_expired(now_ms), o.state.in_(COUNTED))
            .group_by(o.owner_id)
        )

        u = multipart_uploads.c
        in_parts = (
            select(u.owner_id, func.sum(multipart_parts.c.size))
            .select_from(multipart_parts.join(multipart_uploads))
            .where(u.deadline_ms > now_ms)
            .group_by(u.owner_id)
        )

        def work(conn: Connection) -> dict[int, Usage]:
            gone = {owner: (n, b) for owner, n, b in conn.execute(unreaped)}
            parts = {owner: b for owner, b in conn.execute(in_parts)}
            found = {}
            for owner, n, b in conn.execute(stored):
                less_n, less_b = gone.get(owner, (0, 0))
                more_b = parts.get(owner, 0)
                found[owner] = Usage(objects=int(n - less_n), bytes=int(b - less_b + more_b))
            return found

        return await self._read(work)
