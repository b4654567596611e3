"""Lists of objects and their counts: which rows a viewer sees, and how a page and a
count are found without reading every match."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, and_, func, or_, select, text, true, union_all
from sqlalchemy.engine import Row

from ..core.models import ObjectQuery, ObjectState, Page, Visibility
from . import records
from .database import Database
from .schema import namespace_collaborators, namespaces, object_counts, objects


def like_fragment(term: str) -> str:
    escaped = term.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def not_expired(now_ms: int, c: Any = objects.c, state: ObjectState | None = None) -> Any:
    """Within its TTL, and not an upload left unfinished past its deadline (a clause that
    a list of another ``state`` leaves out, so it reads no column it does not need).
    ``c``: the columns of ``objects`` or of a selection of its rows."""
    within_ttl = or_(c.delete_after_time_ms.is_(None), c.delete_after_time_ms > now_ms)
    if state is not None and state is not ObjectState.UPLOADING:
        return within_ttl
    return and_(
        within_ttl,
        or_(
            c.upload_deadline_ms.is_(None),
            c.upload_deadline_ms > now_ms,
            c.state != ObjectState.UPLOADING.value,
        ),
    )


def _expired(now_ms: int) -> Any:
    """The rows ``_not_expired`` hides, through the two deadline indexes: few, since the
    reaper removes them within a minute."""
    return or_(
        objects.c.delete_after_time_ms <= now_ms,
        and_(
            objects.c.state == ObjectState.UPLOADING.value,
            objects.c.upload_deadline_ms <= now_ms,
        ),
    )


def _scope(query: ObjectQuery, c: Any) -> list[Any]:
    """The conditions of ``query`` on the columns an object's row shares with its counter
    (``object_counts``, where no namespace is 0, which no namespace id equals)."""
    conds: list[Any] = []
    if query.public_only:
        public = select(namespaces.c.id).where(namespaces.c.visibility == Visibility.PUBLIC.value)
        conds.append(c.namespace_id.in_(public))
    if query.namespace_id is not None:
        conds.append(c.namespace_id == query.namespace_id)
    if query.state is not None:
        conds.append(c.state == query.state.value)
    else:
        conds.append(c.state != ObjectState.DELETED.value)
    if query.content_type is not None:
        conds.append(c.content_type == query.content_type.value)
    return conds


def _viewer_branches(viewer_id: int | None, c: Any) -> list[Any]:
    """What a viewer sees, as disjoint parts: their own objects, and others' objects in
    namespaces they collaborate on. Kept apart (not one OR) so each part walks its own
    index in id order and a page stops after ``limit`` rows instead of sorting them all."""
    if viewer_id is None:
        return [true()]
    shared_roots = select(namespace_collaborators.c.namespace_id).where(
        namespace_collaborators.c.user_id == viewer_id
    )
    shared = select(namespaces.c.id).where(namespaces.c.root_id.in_(shared_roots))
    return [
        c.owner_id == viewer_id,
        and_(c.owner_id != viewer_id, c.namespace_id.in_(shared)),
    ]


def _name_filters(query: ObjectQuery, c: Any) -> list[Any]:
    """``name``: a case-insensitive substring of the name; ``search``: that, or the id."""
    conds: list[Any] = []
    if query.name:
        conds.append(func.lower(c.name).like(like_fragment(query.name), escape="\\"))
    if query.search:
        conds.append(
            or_(
                c.public_id == query.search,
                func.lower(c.name).like(like_fragment(query.search), escape="\\"),
            )
        )
    return conds


def _fts_phrase(term: str) -> str:
    """An FTS5 query for ``term`` as one string: with the trigram tokenizer, the rows
    whose name contains it, ignoring case. Inside quotes only ``"`` is special."""
    return '"' + term.replace('"', '""') + '"'


# A trigram index finds the names containing a term of 3+ characters; up to this many, its
# rows are the list's candidates. A term matching more is common enough that walking the
# list's own index with LIKE finds a page as fast (and a count costs O(matches) either way).
# (On PostgreSQL the probe is a LIMITed query: its planner picks the trigram index for a
# rare term and a scan that stops early for a common one.)
TRIGRAM_MATCHES = 1000
_FTS_MATCH = text("SELECT rowid FROM objects_fts WHERE objects_fts MATCH :phrase LIMIT :cap")


class SqlListing(Database):
    """``list_objects``: a page of the objects a viewer sees, and how many there are."""

    async def list_objects(self, query: ObjectQuery, now_ms: int) -> Page:
        conds = [*_scope(query, objects.c), not_expired(now_ms, objects.c, query.state)]
        by_name = _name_filters(query, objects.c)

        def work(conn: Connection) -> Page:
            found = self._named(conn, query) if by_name else None
            if found is not None:
                rows, total = self._page_of_named(conn, found, query, now_ms)
            else:
                rows = self._page(conn, query, [*conds, *by_name])
                total = None
                if query.include_total_count and by_name:
                    total = self._scan_count(conn, query, [*conds, *by_name])
                elif query.include_total_count:
                    total = self._counted(conn, query, now_ms)
            return Page(
                objects=[records.stored_object(r) for r in rows[: query.limit]],
                has_more=len(rows) > query.limit,
                total_count=total,
            )

        return await self._read(work)

    def _page(self, conn: Connection, query: ObjectQuery, conds: list[Any]) -> list[Row[Any]]:
        """One page (and a row more) of ``conds``, newest first, walking each viewer
        branch's index. Past the first page, the rows to skip are found on the index alone
        (``ix_objects_owner_state`` holds what the filters read) and only the page's rows
        are read from the table. A viewer who collaborates on nothing has one branch."""
        page_conds = list(conds)
        if query.starting_after:
            page_conds.append(objects.c.public_id < query.starting_after)
        branches = _viewer_branches(query.viewer_id, objects.c)
        if query.offset and len(branches) > 1 and not self._collaborates(conn, query.viewer_id):
            branches = branches[:1]
        newest = objects.c.public_id.desc()
        if len(branches) == 1:
            picked = select(objects.c.public_id if query.offset else objects)
            stmt = picked.where(branches[0], *page_conds).order_by(newest)
        else:
            enough = query.offset + query.limit + 1
            parts = [
                select(objects.c.public_id if query.offset else objects)
                .where(branch, *page_conds)
                .order_by(newest)
                .limit(enough)
                .subquery()
                for branch in branches
            ]
            merged = union_all(*(select(part) for part in parts)).subquery()
            stmt = select(merged).order_by(merged.c.public_id.desc())
        stmt = stmt.limit(query.limit + 1).offset(query.offset)
        if not query.offset:
            return list(conn.execute(stmt).all())
        ids = list(conn.execute(stmt).scalars())
        rows = select(objects).where(objects.c.public_id.in_(ids)).order_by(newest)
        return list(conn.execute(rows).all())

    @staticmethod
    def _collaborates(conn: Connection, viewer_id: int | None) -> bool:
        stmt = select(namespace_collaborators.c.namespace_id).where(
            namespace_collaborators.c.user_id == viewer_id
        )
        return conn.execute(stmt.limit(1)).first() is not None

    @staticmethod
    def _counted(conn: Connection, query: ObjectQuery, now_ms: int) -> int:
        """How many rows ``query`` matches, from the counters the triggers keep, less the
        expired rows the reaper has not removed yet (found by their deadline indexes)."""
        c = object_counts.c
        stored = select(func.coalesce(func.sum(c.n), 0)).where(
            or_(*_viewer_branches(query.viewer_id, c)), *_scope(query, c)
        )
        counted = [objects.c[k] for k in ("owner_id", "namespace_id", "state", "content_type")]
        # Materialized: found by the deadline indexes, never by walking the owner's rows.
        e = select(*counted).where(_expired(now_ms)).cte("expired").prefix_with("MATERIALIZED").c
        unreaped = select(func.count()).where(
            or_(*_viewer_branches(query.viewer_id, e)), *_scope(query, e)
        )
        total = select(stored.scalar_subquery() - unreaped.scalar_subquery())
        return int(conn.execute(total).scalar_one())

    @staticmethod
    def _scan_count(conn: Connection, query: ObjectQuery, conds: list[Any]) -> int:
        """How many rows match a name filter the trigram index could not narrow down (a
        short term, or a common one): counted row by row."""
        counts = [
            select(func.count()).select_from(objects).where(branch, *conds).scalar_subquery()
            for branch in _viewer_branches(query.viewer_id, objects.c)
        ]
        return int(conn.execute(select(sum(counts[1:], counts[0]))).scalar_one())

    def _named(self, conn: Connection, query: ObjectQuery) -> list[int] | None:
        """The ids of the rows whose name has the ``name`` and ``search`` terms (and of the
        object ``search`` names), from a trigram index: SQLite's FTS5 table, PostgreSQL's
        pg_trgm one. None when a term is shorter than a trigram or matches more than
        ``TRIGRAM_MATCHES`` rows: the list's own index then serves better."""
        found: set[int] | None = None
        for term in (query.name, query.search):
            if not term:
                continue
            if len(term) < 3:
                return None
            if self._sqlite:
                params = {"phrase": _fts_phrase(term), "cap": TRIGRAM_MATCHES + 1}
                hits = set(conn.execute(_FTS_MATCH, params).scalars())
            else:
                named = func.lower(objects.c.name).like(like_fragment(term), escape="\\")
                probe = select(objects.c.id).where(named).limit(TRIGRAM_MATCHES + 1)
                hits = set(conn.execute(probe).scalars())
            if len(hits) > TRIGRAM_MATCHES:
                return None
            if term is query.search:
                by_id = select(objects.c.id).where(objects.c.public_id == term)
                hits.update(conn.execute(by_id).scalars())
            found = hits if found is None else found & hits
        return sorted(found or ())

    @staticmethod
    def _page_of_named(
        conn: Connection, ids: list[int], query: ObjectQuery, now_ms: int
    ) -> tuple[list[Row[Any]], int | None]:
        """A page of the rows ``_named`` found, and how many match: the filters (the LIKE
        included, so results are those of a scan) run on those rows alone, which a
        materialized CTE guarantees: SQLite would otherwise walk the owner's index, and
        PostgreSQL search its trigram index twice (page and count), which costs the most."""
        named = select(objects).where(objects.c.id.in_(ids)).cte("named")
        named = named.prefix_with("MATERIALIZED")
        n = named.c
        conds = [
            or_(*_viewer_branches(query.viewer_id, n)),
            *_scope(query, n),
            not_expired(now_ms, n, query.state),
            *_name_filters(query, n),
        ]
        page_conds = [*conds, n.public_id < query.starting_after] if query.starting_after else conds
        stmt = (
            select(named)
            .where(*page_conds)
            .order_by(n.public_id.desc())
            .limit(query.limit + 1)
            .offset(query.offset)
        )
        rows = list(conn.execute(stmt).all())
        if not query.include_total_count:
            return rows, None
        return rows, int(conn.execute(select(func.count()).where(*conds)).scalar_one())
