"""Shared blobs: one ``blobs`` row per distinct content, referenced by the object rows
that hold those bytes, and collected by reference scan once released.

How the pieces stay safe together:

- A reference is taken only inside the transaction that writes the referencing row
  (``_claim``), and only to a ``blobs`` row that transaction sees, share-locked on
  PostgreSQL (``FOR KEY SHARE``); on SQLite every write transaction runs alone.
- The collector (``collect_blobs``) deletes a row only in a transaction that has it
  locked ``FOR UPDATE`` (which waits for, or skips, any share lock) and has checked that
  no object row, part or upload names it; the bytes go only after that commits. So a
  reference either commits before the check (and the blob stays) or finds the row gone
  (and the write fails, having kept nothing pointing at missing bytes).
- Dropping a reference (``_release``) only marks the row with the time; the grace the
  collector waits from that mark is what lets an upload that found the blob before its
  last reference went still reference it when it commits.
- Lock order on PostgreSQL: a transaction claims its blob before it touches the counters
  of ``object_counts`` (its object's insert or update), and releases blobs as its last
  statement, in key order. So a transaction that holds a blob's row lock waits for nothing
  else, and two writers sharing blobs and counters cannot deadlock.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, bindparam, delete, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from ..core.errors import Unavailable
from ..core.models import BlobTotals, BlobWritten, ObjectState
from .database import Database
from .listing import not_expired
from .prepared import Prepared
from .schema import blobs, multipart_parts, multipart_uploads, objects

_BLOBS = blobs.c
BLOB_GONE = "the stored copy of these bytes was removed while the upload finished; retry the upload"


def _inserting(dialect: Any) -> Any:
    return (
        dialect.insert(blobs)
        .values(
            key=bindparam("key"),
            size=bindparam("size"),
            sha256=bindparam("sha256"),
            created_ms=bindparam("created_ms"),
            data=bindparam("data"),
        )
        .on_conflict_do_nothing()
        .returning(_BLOBS.key)
    )


class SqlBlobs(Database):
    # Built once: these run on every upload.
    _FIND = Prepared(
        select(_BLOBS.key).where(
            _BLOBS.sha256 == bindparam("sha256"),
            _BLOBS.size == bindparam("size"),
            or_(_BLOBS.released_ms.is_(None), _BLOBS.released_ms > bindparam("fresh_after")),
        )
    )
    _CONTENT = (_BLOBS.sha256 == bindparam("sha256"), _BLOBS.size == bindparam("size"))
    _HOLD = Prepared(select(_BLOBS.key).where(*_CONTENT).with_for_update(read=True, key_share=True))
    _HOLD_SQLITE = Prepared(select(_BLOBS.key).where(*_CONTENT))
    _INSERT = Prepared(_inserting(postgresql))
    _INSERT_SQLITE = Prepared(_inserting(sqlite))
    _RELEASE = Prepared(
        update(blobs).where(_BLOBS.key == bindparam("b_key")).values(released_ms=bindparam("now"))
    )

    _DATA = Prepared(select(_BLOBS.data).where(_BLOBS.key == bindparam("key")))

    async def inline_data(self, key: str) -> bytes | None:
        """The bytes kept in a blob's row (``core/objects/inline.py``), if it has one."""
        return await self._first(self._DATA, lambda row: row.data, {"key": key})

    async def find_blob(self, size: int, sha256: str, fresh_after_ms: int) -> str | None:
        """The key of a stored blob with this content, unless it was released at or before
        ``fresh_after_ms`` (it may be collected before the caller can reference it)."""
        params = {"sha256": sha256, "size": size, "fresh_after": fresh_after_ms}
        return await self._first(self._FIND, lambda row: row.key, params)

    def _claim(self, conn: Connection, key: str, blob: BlobWritten, now_ms: int) -> str:
        """The blob key a row being written in ``conn``'s transaction is to hold for
        ``blob``'s content, held until that transaction ends: the stored blob with that
        content, else ``key``, whose bytes the caller has just stored (or which go into
        its row, ``blob.inline``) and which gets its row here. Raise Unavailable when
        the blob the caller meant to share (``blob.shared``) was collected meanwhile: it
        dropped its own copy."""
        dialect = self._writer.dialect
        content = {"sha256": blob.sha256, "size": blob.size}
        hold, insert_new = (
            (self._HOLD_SQLITE, self._INSERT_SQLITE) if self._sqlite else (self._HOLD, self._INSERT)
        )
        values = {"key": key, "created_ms": now_ms, "data": blob.inline, **content}
        for _ in range(2):  # a twin's row may be collected between the two statements
            if blob.shared is None and insert_new.first(conn, dialect, values) is not None:
                return key
            found = hold.first(conn, dialect, content)  # the shared one, or a twin's
            if found is not None:
                return str(found.key)
        raise Unavailable(BLOB_GONE)

    def _release(self, conn: Connection, key: str | None, now_ms: int) -> None:
        """A reference to ``key`` was dropped in this transaction: the collector looks
        at it once the grace from now has passed."""
        if key is not None:
            self._RELEASE.rows(conn, self._writer.dialect, {"b_key": key, "now": now_ms})

    def _release_all(self, conn: Connection, keys: list[str], now_ms: int) -> None:
        if keys:
            conn.execute(update(blobs).where(_BLOBS.key.in_(keys)).values(released_ms=now_ms))

    async def collect_blobs(self, released_before_ms: int, limit: int) -> list[str]:
        """Remove up to ``limit`` blob rows released at or before ``released_before_ms``
        that nothing references any more; return their keys, whose bytes the caller then
        deletes. Those still referenced lose their mark."""
        due = (
            select(_BLOBS.key)
            .where(_BLOBS.released_ms <= released_before_ms)
            .order_by(_BLOBS.released_ms)
            .limit(limit)
        )
        if not self._sqlite:  # replicas collecting at once take different rows
            due = due.with_for_update(skip_locked=True)

        def work(conn: Connection) -> list[str]:
            keys = list(conn.execute(due).scalars())
            if not keys:
                return []
            held = set(
                conn.execute(
                    select(objects.c.blob_key)
                    .where(objects.c.blob_key.in_(keys))
                    .union(
                        select(multipart_parts.c.blob_key).where(
                            multipart_parts.c.blob_key.in_(keys)
                        ),
                        select(multipart_uploads.c.blob_key).where(
                            multipart_uploads.c.blob_key.in_(keys)
                        ),
                    )
                ).scalars()
            )
            free = [k for k in keys if k not in held]
            if held:
                conn.execute(update(blobs).where(_BLOBS.key.in_(held)).values(released_ms=None))
            if free:
                conn.execute(delete(blobs).where(_BLOBS.key.in_(free)))
            return free

        return await self._write(work)

    async def blob_rows(self) -> dict[str, tuple[int, str | None, bool]]:
        """Every blob row: key → (size, sha256, whether it is released)."""
        stmt = select(_BLOBS.key, _BLOBS.size, _BLOBS.sha256, _BLOBS.released_ms)
        return await self._read(
            lambda conn: {
                r.key: (r.size, r.sha256, r.released_ms is not None) for r in conn.execute(stmt)
            }
        )

    async def release_unreferenced(self, keys: list[str], now_ms: int) -> int:
        """Mark these blob rows released (fsck's fix for blobs nothing references that were
        never marked, e.g. after a user's objects went with the user); the collector then
        removes them after the grace. How many were marked."""

        def work(conn: Connection) -> int:
            stmt = (
                update(blobs)
                .where(_BLOBS.key.in_(keys), _BLOBS.released_ms.is_(None))
                .values(released_ms=now_ms)
            )
            return int(conn.execute(stmt).rowcount)

        return await self._write(work)

    async def blob_totals(self, now_ms: int) -> BlobTotals:
        """Completed live objects and their bytes, and the distinct blobs stored."""
        logical = select(func.count(), func.coalesce(func.sum(objects.c.size), 0)).where(
            objects.c.state == ObjectState.READ_ONLY.value, not_expired(now_ms)
        )
        stored = select(func.count(), func.coalesce(func.sum(_BLOBS.size), 0))

        def work(conn: Connection) -> BlobTotals:
            count, size = conn.execute(logical).one()
            held, held_bytes = conn.execute(stored).one()
            return BlobTotals(int(count), int(size), int(held), int(held_bytes))

        return await self._read(work)
