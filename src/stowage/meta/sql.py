"""The MetadataStore on SQLAlchemy Core, for SQLite and PostgreSQL alike.

Each operation is one synchronous transaction. Where it runs depends on the database:

* SQLite: reads run inline on the event loop. They take tens of microseconds and WAL
  readers never wait for the writer, while a hop to a worker thread costs 65-120 us on
  these machines (the async drivers paid such a hop per cursor call: ~1 ms per query).
  Writes go to one writer thread whose connection opens every transaction with
  ``BEGIN IMMEDIATE``, so writers queue instead of failing on lock upgrade.
* PostgreSQL: every operation is a network round trip, so all of them run in a thread pool.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any, TypeVar

import orjson
from sqlalchemy import (
    Connection,
    Engine,
    Index,
    Table,
    UniqueConstraint,
    and_,
    bindparam,
    case,
    create_engine,
    delete,
    event,
    func,
    insert,
    or_,
    select,
    text,
    true,
    tuple_,
    union_all,
    update,
)
from sqlalchemy.engine import URL, Row, make_url
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from ..core.errors import NamespaceGone, NameTaken, Unavailable
from ..core.models import (
    BlobWritten,
    Collaborator,
    ContentType,
    Invite,
    KeptAnswer,
    KeyedRequest,
    Namespace,
    NewObject,
    ObjectQuery,
    ObjectState,
    Page,
    Reaped,
    StoredObject,
    Token,
    User,
    Visibility,
)
from .group_commit import GroupCommitter
from .prepared import Prepared
from .prepared import Row as PreparedRow
from .schema import (
    UNIQUE_NAMESPACED,
    UNIQUE_TOP_LEVEL,
    idempotency_keys,
    namespace_collaborators,
    namespace_invites,
    namespaces,
    object_counts,
    object_metadata,
    objects,
    tokens,
    users,
)


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
SQLITE_BUSY_TIMEOUT_MS = 30_000
DB_THREADS = 8
T = TypeVar("T")
R = TypeVar("R")


def driver_url(url: str) -> URL:
    """Map the configured URL to the driver stowage uses for that database."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return parsed.set(drivername="sqlite")
    if backend == "postgresql":
        return parsed.set(drivername="postgresql+psycopg")
    raise ValueError(f"unsupported database {backend!r}: use sqlite:// or postgresql://")


def sqlite_file(url: str | URL) -> Path | None:
    """The SQLite database file, or None for PostgreSQL (or an in-memory database)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def writer_lock_file(database: Path) -> Path:
    """The file SQLite writers of every process take turns on (``group_commit``)."""
    return Path(f"{database}-writer.lock")


def _sqlite_engine(url: URL, *, writer: bool) -> Engine:
    pool_size = 1 if writer else DB_THREADS
    engine = create_engine(
        url,
        pool_size=pool_size,
        max_overflow=0,
        connect_args={"check_same_thread": False},  # pooled across the DB threads
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # let the "begin" hook below issue BEGIN
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")  # a committed row survives power loss
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()
        # SQLite's lower() folds ASCII only; searches fold case as PostgreSQL's does.
        dbapi_conn.create_function("lower", 1, _lower, deterministic=True)

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if writer else "BEGIN")

    return engine


def _lower(value: object) -> object:
    return value.lower() if isinstance(value, str) else value


def _violated(exc: IntegrityError) -> str:
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


def _like_fragment(term: str) -> str:
    escaped = term.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


AnyRow = Row[Any] | PreparedRow  # SQLAlchemy's, or a prepared statement's


def _record(cls: type[R], row: AnyRow, prefix: str = "", **converted: Any) -> R:
    """Build dataclass ``cls`` from the row's columns of the same names (optionally
    prefixed, when joined to another table); ``converted`` supplies typed values."""
    m = row._mapping
    values = {
        name: converted[name] if name in converted else m[prefix + name]
        for name in _field_names(cls)
    }
    return cls(**values)


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _field_names(cls: type) -> tuple[str, ...]:
    """``dataclasses.fields`` walks the class each call; every row read needs this."""
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = tuple(f.name for f in fields(cls))
    return names


def _user(row: AnyRow, prefix: str = "") -> User:
    return _record(User, row, prefix, is_admin=bool(row._mapping[prefix + "is_admin"]))


def _token(row: AnyRow) -> Token:
    return _record(Token, row, scopes=frozenset(row.scopes.split()))


def _object(row: AnyRow) -> StoredObject:
    metadata = orjson.loads(row.metadata_json) if row.metadata_json is not None else None
    return _record(
        StoredObject,
        row,
        content_type=ContentType(row.content_type),
        state=ObjectState(row.state),
        metadata=metadata,
    )


def _namespace(row: AnyRow) -> Namespace:
    return _record(Namespace, row, visibility=Visibility(row.visibility))


def _invite(row: AnyRow) -> Invite:
    return _record(Invite, row)


@contextmanager
def _reachable() -> Iterator[None]:
    """Connection failures are an outage to report (503), not a bug (500)."""
    try:
        yield
    except (OperationalError, InterfaceError, PoolTimeout) as exc:
        raise Unavailable("the metadata database is unavailable; retry shortly") from exc


def _new_row(new: NewObject, state: ObjectState) -> dict[str, Any]:
    """Column values of a new object row, whichever way it is created."""
    return {
        "public_id": new.public_id,
        "owner_id": new.owner_id,
        "author_id": new.author_id,
        "name": new.name,
        "content_type": new.content_type.value,
        "state": state.value,
        "metadata_json": None if new.metadata is None else orjson.dumps(new.metadata).decode(),
        "create_time_ms": new.create_time_ms,
        "delete_after_time_ms": new.delete_after_time_ms,
        "namespace_id": new.namespace_id,
        "creator_token_id": new.creator_token_id,
        "staging_key": new.staging_key,
        "upload_deadline_ms": new.upload_deadline_ms,
        "unique_name": new.unique_name,
    }


def _not_expired(now_ms: int, c: Any = objects.c, state: ObjectState | None = None) -> Any:
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
        conds.append(func.lower(c.name).like(_like_fragment(query.name), escape="\\"))
    if query.search:
        conds.append(
            or_(
                c.public_id == query.search,
                func.lower(c.name).like(_like_fragment(query.search), escape="\\"),
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


class SqlMetadataStore:
    def __init__(self, url: str) -> None:
        target = driver_url(url)
        self._sqlite = target.get_backend_name() == "sqlite"
        if self._sqlite:
            self._writer = _sqlite_engine(target, writer=True)
            self._reader = _sqlite_engine(target, writer=False)
            # Writes: one thread, group commit. Reads: inline on the event loop (no pool).
            database = sqlite_file(target)
            lock = writer_lock_file(database) if database is not None else None
            self._group: GroupCommitter | None = GroupCommitter(self._writer, _reachable, lock)
            self._pool = None
            # Each thread that reads inline keeps one connection for prepared statements.
            self._inline = threading.local()
            self._inline_connections: list[Any] = []
        else:
            self._writer = self._reader = create_engine(
                target,
                pool_pre_ping=True,  # a connection that died while PostgreSQL was away is replaced
                pool_size=DB_THREADS,
                max_overflow=0,
                pool_timeout=10,
                connect_args={"connect_timeout": 5},
            )
            # Reads and writes alike run on this pool.
            self._group = None
            self._pool = ThreadPoolExecutor(max_workers=DB_THREADS, thread_name_prefix="db")

    async def close(self) -> None:
        if self._group is not None:
            self._group.shutdown()
            for raw in self._inline_connections:
                raw.close()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        self._writer.dispose()
        if self._reader is not self._writer:
            self._reader.dispose()

    async def _write(self, work: Callable[[Connection], T]) -> T:
        """Run ``work`` in a write transaction on a DB thread (on SQLite, a savepoint in a
        group commit) and return once it is committed."""
        if self._group is not None:
            return await asyncio.wrap_future(self._group.submit(work))

        def run() -> T:
            with _reachable(), self._writer.begin() as conn:
                return work(conn)

        assert self._pool is not None
        return await asyncio.wrap_future(self._pool.submit(run))

    async def _read(self, work: Callable[[Connection], T]) -> T:
        def run() -> T:
            with _reachable(), self._reader.connect() as conn:
                return work(conn)

        if self._pool is None:
            return run()
        return await asyncio.wrap_future(self._pool.submit(run))

    def _inline_connection(self) -> Any:
        """This thread's own SQLite connection (autocommit: each read is its own snapshot)."""
        raw = getattr(self._inline, "raw", None)
        if raw is None:
            raw = self._inline.raw = self._reader.raw_connection()
            self._inline_connections.append(raw)
        return raw

    async def _first(
        self, stmt: Any, mapper: Callable[[Any], R], params: dict[str, Any] | None = None
    ) -> R | None:
        """The first row of ``stmt`` through ``mapper``, or None. A ``Prepared`` statement
        runs on the driver's connection: on SQLite, this thread's own, right here."""
        params = params or {}
        dialect = self._reader.dialect
        if isinstance(stmt, Prepared) and self._pool is None:
            with _reachable():
                row = stmt.first(self._inline_connection().driver_connection, dialect, params)
            return mapper(row) if row else None

        def work(conn: Connection) -> R | None:
            row: AnyRow | None
            if isinstance(stmt, Prepared):
                row = stmt.first(conn, dialect, params)
            else:
                row = conn.execute(stmt, params).first()
            return mapper(row) if row else None

        return await self._read(work)

    # --- users and tokens ----------------------------------------------------------------

    async def create_user(
        self, name: str, email: str | None, is_admin: bool, now_ms: int
    ) -> User | None:
        """The new user, or None when the name was taken (by a racing create too)."""
        stmt = (
            insert(users)
            .values(name=name, email=email, is_admin=is_admin, created_at_ms=now_ms)
            .returning(*users.c)
        )
        try:
            return await self._write(lambda conn: _user(conn.execute(stmt).one()))
        except IntegrityError:  # users.name is the one unique column a new user can break
            return None

    async def _one_user(self, where: Any) -> User | None:
        return await self._first(select(users).where(where), _user)

    async def get_user_by_name(self, name: str) -> User | None:
        return await self._one_user(users.c.name == name)

    async def count_users(self) -> int:
        stmt = select(func.count()).select_from(users)
        return await self._read(lambda conn: conn.execute(stmt).scalar_one())

    async def create_token(
        self,
        user_id: int,
        name: str,
        token_hash: str,
        prefix: str,
        scopes: frozenset[str],
        now_ms: int,
    ) -> Token:
        stmt = (
            insert(tokens)
            .values(
                user_id=user_id,
                name=name,
                token_hash=token_hash,
                prefix=prefix,
                scopes=" ".join(sorted(scopes)),
                created_at_ms=now_ms,
            )
            .returning(*tokens.c)
        )
        return await self._write(lambda conn: _token(conn.execute(stmt).one()))

    _TOKEN_WITH_USER = select(tokens, *[c.label(f"u_{c.name}") for c in users.c]).join(
        users, users.c.id == tokens.c.user_id
    )

    @staticmethod
    def _token_and_user(row: AnyRow) -> tuple[Token, User]:
        return _token(row), _user(row, prefix="u_")

    # Built once: these run on every request, and building a statement costs more than
    # running it on SQLite.
    _FIND_TOKEN = Prepared(
        _TOKEN_WITH_USER.where(
            tokens.c.token_hash == bindparam("token_hash"), tokens.c.revoked_at_ms.is_(None)
        )
    )
    _GET_OBJECT = Prepared(select(objects).where(objects.c.public_id == bindparam("public_id")))
    _GET_OBJECT_BY_ID = Prepared(select(objects).where(objects.c.id == bindparam("id")))
    # Built once: values come as parameters, so each insert reuses the compiled statement.
    _INSERT_OBJECT = Prepared(insert(objects).returning(*objects.c), values_from_params=True)
    _INSERT_KEY = insert(idempotency_keys)
    _GET_KEY = select(idempotency_keys.c.request_hash, idempotency_keys.c.public_id).where(
        idempotency_keys.c.token_id == bindparam("token_id"),
        idempotency_keys.c.key_hash == bindparam("key_hash"),
    )

    async def find_token(self, token_hash: str) -> tuple[Token, User] | None:
        return await self._first(self._FIND_TOKEN, self._token_and_user, {"token_hash": token_hash})

    async def list_tokens(self, user_id: int | None) -> list[tuple[Token, User]]:
        stmt = self._TOKEN_WITH_USER.order_by(tokens.c.id)
        if user_id is not None:
            stmt = stmt.where(tokens.c.user_id == user_id)
        return await self._read(
            lambda conn: [self._token_and_user(r) for r in conn.execute(stmt).all()]
        )

    async def revoke_token(self, token_id: int, now_ms: int) -> bool:
        stmt = (
            update(tokens)
            .where(tokens.c.id == token_id, tokens.c.revoked_at_ms.is_(None))
            .values(revoked_at_ms=now_ms)
        )
        return await self._write(lambda conn: conn.execute(stmt).rowcount == 1)

    # --- objects -------------------------------------------------------------------------

    async def create_object(
        self, new: NewObject, keyed: KeyedRequest | None = None
    ) -> StoredObject | None:
        values = _new_row(new, ObjectState.UPLOADING)

        def work(conn: Connection) -> StoredObject:
            row = self._INSERT_OBJECT.one(conn, self._writer.dialect, values)
            if new.metadata:
                conn.execute(
                    insert(object_metadata),
                    [{"object_id": row.id, "key": k, "value": v} for k, v in new.metadata.items()],
                )
            return _object(row)

        return await self._keyed_write(keyed, work)

    async def _keyed_write(
        self, keyed: KeyedRequest | None, work: Callable[[Connection], StoredObject | None]
    ) -> StoredObject | None:
        """Run ``work`` and record ``keyed`` with the object it returns, in one transaction.
        The key's primary key decides between concurrent twins: the loser's transaction
        rolls back whole and it gets None, as does a request whose key is known already."""

        def work_and_record(conn: Connection) -> StoredObject | None:
            done = work(conn)
            if done is not None and keyed is not None:
                conn.execute(self._INSERT_KEY, {"public_id": done.public_id, **asdict(keyed)})
            return done

        try:
            return await self._write(work_and_record)
        except IntegrityError:
            if keyed is None or await self.kept_answer(keyed) is None:
                raise
            return None

    async def kept_answer(self, keyed: KeyedRequest) -> KeptAnswer | None:
        params = {"token_id": keyed.token_id, "key_hash": keyed.key_hash}
        return await self._first(self._GET_KEY, lambda r: _record(KeptAnswer, r), params)

    async def forget_keys(self, cutoff_ms: int, limit: int) -> int:
        key = tuple_(idempotency_keys.c.token_id, idempotency_keys.c.key_hash)
        due = (
            select(idempotency_keys.c.token_id, idempotency_keys.c.key_hash)
            .where(idempotency_keys.c.created_at_ms <= cutoff_ms)
            .order_by(idempotency_keys.c.created_at_ms)
            .limit(limit)
        )
        if not self._sqlite:  # replicas purging at once take different rows
            due = due.with_for_update(skip_locked=True)
        stmt = delete(idempotency_keys).where(key.in_(due))
        return await self._write(lambda conn: conn.execute(stmt).rowcount)

    async def insert_stored_object(
        self, new: NewObject, blob_key: str, blob: BlobWritten, mime_type: str
    ) -> StoredObject:
        """Insert an object whose bytes are already stored (whole-object puts); raise
        NameTaken when its name is to be unique and is in use in its scope."""
        values = {
            **_new_row(new, ObjectState.READ_ONLY),
            "size": blob.size,
            "md5": blob.md5,
            "sha256": blob.sha256,
            "blob_key": blob_key,
            "mime_type": mime_type,
        }
        try:
            return await self._write(
                lambda conn: _object(self._INSERT_OBJECT.one(conn, self._writer.dialect, values))
            )
        except IntegrityError as exc:
            violated = _violated(exc)
            if violated in ("uq_objects_owner_name", "uq_objects_namespace_name"):
                raise NameTaken(new.name) from None
            await self._raise_if_namespace_gone(
                violated, "fk_objects_namespace_id", new.namespace_id
            )
            raise

    async def _raise_if_namespace_gone(
        self, violated: str, foreign_key: str, namespace_id: int | None
    ) -> None:
        """Raise NamespaceGone when ``violated`` is ``foreign_key``, the write's reference
        to namespace ``namespace_id``. SQLite does not say which key failed: the namespace
        being gone does (users, the other keys' targets, are never deleted)."""
        if namespace_id is None or violated not in (foreign_key, SOME_FOREIGN_KEY):
            return
        if violated == foreign_key or not await self.get_namespaces({namespace_id}):
            raise NamespaceGone("Namespace no longer exists")

    # Built once: on every Djinn upload, building and caching the statement cost more than
    # running it.
    @staticmethod
    def _name_check(scope: Any, partial_index: Any) -> Any:
        """Whether a name is taken in a scope, repeating the partial index's predicate."""
        where = (scope == bindparam("scope_id"), partial_index, objects.c.name == bindparam("name"))
        return Prepared(select(objects.c.id).where(*where).limit(1))

    _NAME_IN_NAMESPACE = _name_check(objects.c.namespace_id, UNIQUE_NAMESPACED)
    _NAME_AT_TOP = _name_check(objects.c.owner_id, UNIQUE_TOP_LEVEL)

    async def name_taken(self, owner_id: int, namespace_id: int | None, name: str) -> bool:
        if namespace_id is not None:
            stmt, scope_id = self._NAME_IN_NAMESPACE, namespace_id
        else:
            stmt, scope_id = self._NAME_AT_TOP, owner_id
        params = {"scope_id": scope_id, "name": name}
        return await self._first(stmt, lambda _row: True, params) is not None

    async def get_object(self, ref: str | int) -> StoredObject | None:
        """By public id (``obj_…``) or by integer id."""
        if isinstance(ref, str):
            return await self._first(self._GET_OBJECT, _object, {"public_id": ref})
        return await self._first(self._GET_OBJECT_BY_ID, _object, {"id": ref})

    async def list_objects(self, query: ObjectQuery, now_ms: int) -> Page:
        conds = [*_scope(query, objects.c), _not_expired(now_ms, objects.c, query.state)]
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
                objects=[_object(r) for r in rows[: query.limit]],
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
                named = func.lower(objects.c.name).like(_like_fragment(term), escape="\\")
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
            _not_expired(now_ms, n, query.state),
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

    # The upload path's statements, built once (building one costs more than running it).
    _UPLOAD_STATE = Prepared(
        select(objects.c.state, objects.c.blob_key)
        .where(objects.c.public_id == bindparam("public_id"))
        .with_for_update()
    )
    _ATTACH = Prepared(
        update(objects)
        .where(objects.c.public_id == bindparam("b_public_id"))
        .values(
            blob_key=bindparam("b_blob_key"),
            size=bindparam("b_size"),
            md5=bindparam("b_md5"),
            sha256=bindparam("b_sha256"),
            mime_type=bindparam("b_mime_type"),
        )
    )
    _COMPLETE = Prepared(
        update(objects)
        .where(
            objects.c.public_id == bindparam("b_public_id"),
            objects.c.state == ObjectState.UPLOADING.value,
            objects.c.blob_key.is_not(None),
        )
        .values(
            state=ObjectState.READ_ONLY.value,
            # Kept while a direct upload URL may still deliver bytes: the reaper then
            # removes what lands on the staging key (and clears both).
            upload_deadline_ms=case(
                (objects.c.staging_key.is_(None), None), else_=objects.c.upload_deadline_ms
            ),
        )
        .returning(*objects.c)
    )

    async def attach_blob(
        self, public_id: str, blob_key: str, blob: BlobWritten, mime_type: str
    ) -> tuple[bool, str | None]:
        values = {
            "b_public_id": public_id,
            "b_blob_key": blob_key,
            "b_size": blob.size,
            "b_md5": blob.md5,
            "b_sha256": blob.sha256,
            "b_mime_type": mime_type,
        }

        def work(conn: Connection) -> tuple[bool, str | None]:
            dialect = self._writer.dialect
            row = self._UPLOAD_STATE.first(conn, dialect, {"public_id": public_id})
            if row is None or row.state != ObjectState.UPLOADING.value:
                return False, None
            self._ATTACH.rows(conn, dialect, values)
            return True, row.blob_key

        return await self._write(work)

    async def complete_object(
        self, public_id: str, keyed: KeyedRequest | None = None
    ) -> StoredObject | None:
        def work(conn: Connection) -> StoredObject | None:
            row = self._COMPLETE.first(conn, self._writer.dialect, {"b_public_id": public_id})
            return _object(row) if row else None

        return await self._keyed_write(keyed, work)

    async def mark_deleted(
        self, public_id: str, now_ms: int
    ) -> tuple[StoredObject, str | None] | None:
        current = select(objects).where(objects.c.public_id == public_id).with_for_update()

        def work(conn: Connection) -> tuple[StoredObject, str | None] | None:
            row = conn.execute(current).first()
            if row is None:
                return None
            if row.state == ObjectState.DELETED.value:
                return _object(row), None
            updated = conn.execute(
                update(objects)
                .where(objects.c.id == row.id)
                .values(
                    state=ObjectState.DELETED.value,
                    deleted_time_ms=now_ms,
                    blob_key=None,
                    unique_name=False,  # the name is free again at once
                )
                .returning(*objects.c)
            ).one()
            return _object(updated), row.blob_key

        return await self._write(work)

    def _metadata_column(self, column: Any, owner_id: int, now_ms: int, *where: Any) -> Any:
        return (
            select(column)
            .join(objects, objects.c.id == object_metadata.c.object_id)
            .where(
                objects.c.owner_id == owner_id,
                objects.c.state != ObjectState.DELETED.value,
                _not_expired(now_ms),
                *where,
            )
            .distinct()
            .order_by(column)
        )

    async def metadata_keys(self, owner_id: int, now_ms: int) -> list[str]:
        stmt = self._metadata_column(object_metadata.c.key, owner_id, now_ms)
        return await self._read(lambda conn: list(conn.execute(stmt).scalars()))

    async def metadata_values(self, owner_id: int, key: str, now_ms: int) -> list[str]:
        stmt = self._metadata_column(
            object_metadata.c.value, owner_id, now_ms, object_metadata.c.key == key
        )
        return await self._read(lambda conn: list(conn.execute(stmt).scalars()))

    async def totals(self, now_ms: int) -> tuple[int, int]:
        """Completed, unexpired objects and their bytes (for metrics)."""
        stmt = select(func.count(), func.coalesce(func.sum(objects.c.size), 0)).where(
            objects.c.state == ObjectState.READ_ONLY.value, _not_expired(now_ms)
        )

        def work(conn: Connection) -> tuple[int, int]:
            count, size = conn.execute(stmt).one()
            return int(count), int(size)

        return await self._read(work)

    async def blob_references(self) -> dict[str, tuple[str, int, str]]:
        stmt = select(
            objects.c.blob_key, objects.c.public_id, objects.c.size, objects.c.sha256
        ).where(objects.c.blob_key.is_not(None))
        return await self._read(
            lambda conn: {r.blob_key: (r.public_id, r.size, r.sha256) for r in conn.execute(stmt)}
        )

    async def staging_keys(self) -> set[str]:
        stmt = select(objects.c.staging_key).where(objects.c.staging_key.is_not(None))
        return await self._read(lambda conn: set(conn.execute(stmt).scalars()))

    async def reap(self, now_ms: int, deleted_before_ms: int, limit: int) -> Reaped:
        uploading = objects.c.state == ObjectState.UPLOADING.value
        upload_over = objects.c.upload_deadline_ms <= now_ms
        due = or_(
            objects.c.delete_after_time_ms <= now_ms,
            and_(uploading, upload_over),
            and_(
                objects.c.state == ObjectState.DELETED.value,
                objects.c.deleted_time_ms <= deleted_before_ms,
            ),
        )
        pick = (
            select(objects.c.id, objects.c.blob_key, objects.c.staging_key).where(due).limit(limit)
        )
        # Finished objects whose upload URL can no longer be used: release the staging key.
        settled = (
            select(objects.c.id, objects.c.staging_key).where(upload_over, ~uploading).limit(limit)
        )
        if not self._sqlite:
            pick = pick.with_for_update(skip_locked=True)
            settled = settled.with_for_update(skip_locked=True)

        def work(conn: Connection) -> Reaped:
            rows = conn.execute(pick).all()
            ids = [r.id for r in rows]
            if ids:
                conn.execute(delete(object_metadata).where(object_metadata.c.object_id.in_(ids)))
                conn.execute(delete(objects).where(objects.c.id.in_(ids)))
            done = conn.execute(settled).all()
            if done:
                conn.execute(
                    update(objects)
                    .where(objects.c.id.in_([r.id for r in done]))
                    .values(staging_key=None, upload_deadline_ms=None)
                )
            return Reaped(
                object_ids=ids,
                blob_keys=[r.blob_key for r in rows if r.blob_key],
                staging_keys=[r.staging_key for r in (*rows, *done) if r.staging_key],
                swept=len(done),
            )

        return await self._write(work)

    # --- users by id, for the relations Djinn embeds ------------------------------------

    async def get_users(self, ids: set[int]) -> dict[int, User]:
        if not ids:
            return {}
        stmt = select(users).where(users.c.id.in_(sorted(ids)))
        return await self._read(lambda conn: {r.id: _user(r) for r in conn.execute(stmt)})

    async def get_user_by_handle(self, handle: str) -> User | None:
        """A user by name, or by email address."""
        return await self._one_user(or_(users.c.name == handle, users.c.email == handle))

    # --- namespaces ----------------------------------------------------------------------

    @staticmethod
    def _insert_namespace(
        conn: Connection,
        owner_id: int,
        parent: Namespace | None,
        name: str,
        description: str,
        visibility: Visibility,
        now_ms: int,
    ) -> Namespace:
        row = conn.execute(
            insert(namespaces)
            .values(
                owner_id=owner_id,
                root_id=parent.root_id if parent else None,
                parent_id=parent.id if parent else None,
                name=name,
                path=f"{parent.path}/{name}" if parent else name,
                level=parent.level + 1 if parent else 0,
                description=description,
                visibility=(parent.visibility if parent else visibility).value,
                created_at_ms=now_ms,
            )
            .returning(*namespaces.c)
        ).one()
        if parent is None:
            row = conn.execute(
                update(namespaces)
                .where(namespaces.c.id == row.id)
                .values(root_id=row.id)
                .returning(*namespaces.c)
            ).one()
        return _namespace(row)

    async def create_namespace(
        self,
        owner_id: int,
        parent: Namespace | None,
        name: str,
        description: str,
        visibility: Visibility,
        now_ms: int,
    ) -> Namespace | None:
        """The new namespace, or None when the owner already has one at that path; raise
        NamespaceGone when the parent was deleted meanwhile."""
        try:
            return await self._write(
                lambda conn: self._insert_namespace(
                    conn, owner_id, parent, name, description, visibility, now_ms
                )
            )
        except IntegrityError as exc:
            violated = _violated(exc)
            if violated == "uq_namespaces_owner_path":
                return None
            parent_id = parent.id if parent else None
            await self._raise_if_namespace_gone(violated, "namespaces_parent_id_fkey", parent_id)
            raise

    async def ensure_namespace_path(
        self, owner_id: int, segments: list[str], now_ms: int
    ) -> Namespace:
        """The owner's namespace at ``a/b/c``, creating only the missing segments (private,
        or the parent's visibility)."""

        def work(conn: Connection) -> Namespace:
            parent: Namespace | None = None
            for depth, name in enumerate(segments):
                path = "/".join(segments[: depth + 1])
                row = conn.execute(
                    select(namespaces).where(
                        namespaces.c.owner_id == owner_id, namespaces.c.path == path
                    )
                ).first()
                parent = (
                    _namespace(row)
                    if row
                    else self._insert_namespace(
                        conn, owner_id, parent, name, "", Visibility.PRIVATE, now_ms
                    )
                )
            assert parent is not None
            return parent

        try:
            return await self._write(work)
        except IntegrityError:  # another replica created a segment first: it exists now
            return await self._write(work)

    async def get_namespace_by_path(self, owner_id: int, path: str) -> Namespace | None:
        stmt = select(namespaces).where(
            namespaces.c.owner_id == owner_id, namespaces.c.path == path
        )
        return await self._first(stmt, _namespace)

    async def get_namespaces(self, ids: set[int]) -> dict[int, Namespace]:
        if not ids:
            return {}
        stmt = select(namespaces).where(namespaces.c.id.in_(sorted(ids)))
        return await self._read(lambda conn: {r.id: _namespace(r) for r in conn.execute(stmt)})

    async def list_namespaces(
        self, viewer_id: int, search: str | None, offset: int, limit: int
    ) -> tuple[list[Namespace], int]:
        shared_roots = select(namespace_collaborators.c.namespace_id).where(
            namespace_collaborators.c.user_id == viewer_id
        )
        conds: list[Any] = [
            or_(namespaces.c.owner_id == viewer_id, namespaces.c.root_id.in_(shared_roots))
        ]
        return await self._namespace_page(conds, search, offset, limit)

    async def list_children(
        self, parent: Namespace, search: str | None, offset: int, limit: int
    ) -> tuple[list[Namespace], int]:
        # root_id first: the tree's index finds the children without a scan
        conds = [namespaces.c.root_id == parent.root_id, namespaces.c.parent_id == parent.id]
        return await self._namespace_page(conds, search, offset, limit)

    async def _namespace_page(
        self, conds: list[Any], search: str | None, offset: int, limit: int
    ) -> tuple[list[Namespace], int]:
        """One page of the namespaces matching ``conds`` (and ``search`` in the path), by
        path, with the number of all that match."""
        if search:
            conds = [
                *conds,
                func.lower(namespaces.c.path).like(_like_fragment(search), escape="\\"),
            ]
        stmt = (
            select(namespaces)
            .where(*conds)
            .order_by(namespaces.c.path, namespaces.c.id)
            .offset(offset)
            .limit(limit)
        )
        count = select(func.count()).select_from(namespaces).where(*conds)

        def work(conn: Connection) -> tuple[list[Namespace], int]:
            return [_namespace(r) for r in conn.execute(stmt)], conn.execute(count).scalar_one()

        return await self._read(work)

    async def update_namespace(
        self, namespace: Namespace, description: str | None, visibility: Visibility | None
    ) -> Namespace:
        def work(conn: Connection) -> Namespace:
            if description is not None:
                conn.execute(
                    update(namespaces)
                    .where(namespaces.c.id == namespace.id)
                    .values(description=description)
                )
            if visibility is not None:  # set on the root: the whole tree follows
                conn.execute(
                    update(namespaces)
                    .where(namespaces.c.root_id == namespace.root_id)
                    .values(visibility=visibility.value)
                )
            row = conn.execute(select(namespaces).where(namespaces.c.id == namespace.id)).one()
            return _namespace(row)

        return await self._write(work)

    async def delete_namespace(self, namespace: Namespace) -> None:
        """Delete the namespace and everything below it. Objects stay with their owner,
        outside any namespace, and their names stop counting as taken."""
        prefix = namespace.path + "/"
        subtree = select(namespaces.c.id).where(
            namespaces.c.owner_id == namespace.owner_id,
            or_(
                namespaces.c.id == namespace.id,
                # exact, case-sensitive prefix (SQLite's LIKE ignores case)
                func.substr(namespaces.c.path, 1, len(prefix)) == prefix,
            ),
        )

        def work(conn: Connection) -> None:
            ids = list(conn.execute(subtree).scalars())
            conn.execute(
                update(objects)
                .where(objects.c.namespace_id.in_(ids))
                .values(namespace_id=None, unique_name=False)
            )
            conn.execute(delete(namespace_invites).where(namespace_invites.c.namespace_id.in_(ids)))
            conn.execute(
                delete(namespace_collaborators).where(
                    namespace_collaborators.c.namespace_id.in_(ids)
                )
            )
            conn.execute(delete(namespaces).where(namespaces.c.id.in_(ids)))

        await self._write(work)

    async def namespace_access(
        self, namespace_id: int, user_id: int | None
    ) -> tuple[Namespace, bool] | None:
        """The root of the namespace, and whether ``user_id`` collaborates on it."""
        root_of = select(namespaces.c.root_id).where(namespaces.c.id == namespace_id)

        def work(conn: Connection) -> tuple[Namespace, bool] | None:
            row = conn.execute(
                select(namespaces).where(namespaces.c.id == root_of.scalar_subquery())
            ).first()
            if row is None:
                return None
            collaborating = False
            if user_id is not None:
                collaborating = (
                    conn.execute(
                        select(namespace_collaborators.c.user_id).where(
                            namespace_collaborators.c.namespace_id == row.id,
                            namespace_collaborators.c.user_id == user_id,
                        )
                    ).first()
                    is not None
                )
            return _namespace(row), collaborating

        return await self._read(work)

    async def list_collaborators(self, root_id: int) -> list[Collaborator]:
        stmt = (
            select(users, namespace_collaborators.c.created_at_ms.label("joined_at_ms"))
            .join(namespace_collaborators, namespace_collaborators.c.user_id == users.c.id)
            .where(namespace_collaborators.c.namespace_id == root_id)
            .order_by(users.c.name)
        )
        return await self._read(
            lambda conn: [
                Collaborator(user=_user(r), namespace_id=root_id, created_at_ms=r.joined_at_ms)
                for r in conn.execute(stmt)
            ]
        )

    async def remove_collaborator(self, root_id: int, user_id: int) -> bool:
        stmt = delete(namespace_collaborators).where(
            namespace_collaborators.c.namespace_id == root_id,
            namespace_collaborators.c.user_id == user_id,
        )
        return await self._write(lambda conn: conn.execute(stmt).rowcount == 1)

    # --- invites -------------------------------------------------------------------------

    async def create_invite(
        self, root_id: int, inviter_id: int, invitee_id: int, now_ms: int
    ) -> Invite | None:
        """The new invite, or None if that user is already invited to that namespace; raise
        NamespaceGone when the namespace was deleted meanwhile."""
        stmt = (
            insert(namespace_invites)
            .values(
                namespace_id=root_id,
                inviter_id=inviter_id,
                invitee_id=invitee_id,
                created_at_ms=now_ms,
            )
            .returning(*namespace_invites.c)
        )
        try:
            return await self._write(lambda conn: _invite(conn.execute(stmt).one()))
        except IntegrityError as exc:
            violated = _violated(exc)
            if violated == "uq_namespace_invites_invitee":
                return None
            await self._raise_if_namespace_gone(
                violated, "namespace_invites_namespace_id_fkey", root_id
            )
            raise

    async def get_invite(self, invite_id: int) -> Invite | None:
        return await self._first(
            select(namespace_invites).where(namespace_invites.c.id == invite_id), _invite
        )

    async def list_invites(
        self, *, invitee_id: int | None = None, namespace_id: int | None = None
    ) -> list[Invite]:
        stmt = select(namespace_invites).order_by(namespace_invites.c.id)
        if invitee_id is not None:
            stmt = stmt.where(namespace_invites.c.invitee_id == invitee_id)
        if namespace_id is not None:
            stmt = stmt.where(namespace_invites.c.namespace_id == namespace_id)
        return await self._read(lambda conn: [_invite(r) for r in conn.execute(stmt)])

    async def accept_invite(self, invite: Invite, now_ms: int) -> None:
        def work(conn: Connection) -> None:
            already = conn.execute(
                select(namespace_collaborators.c.user_id).where(
                    namespace_collaborators.c.namespace_id == invite.namespace_id,
                    namespace_collaborators.c.user_id == invite.invitee_id,
                )
            ).first()
            if already is None:
                conn.execute(
                    insert(namespace_collaborators).values(
                        namespace_id=invite.namespace_id,
                        user_id=invite.invitee_id,
                        created_at_ms=now_ms,
                    )
                )
            conn.execute(delete(namespace_invites).where(namespace_invites.c.id == invite.id))

        try:
            await self._write(work)
        except IntegrityError as exc:
            await self._raise_if_namespace_gone(
                _violated(exc), "namespace_collaborators_namespace_id_fkey", invite.namespace_id
            )
            raise

    async def delete_invite(self, invite_id: int) -> bool:
        stmt = delete(namespace_invites).where(namespace_invites.c.id == invite_id)
        return await self._write(lambda conn: conn.execute(stmt).rowcount == 1)
