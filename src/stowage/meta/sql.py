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
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import orjson
from sqlalchemy import (
    Connection,
    Engine,
    and_,
    bindparam,
    create_engine,
    delete,
    event,
    false,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.engine import URL, Row, make_url

from ..core.models import (
    BlobWritten,
    ContentType,
    NewObject,
    ObjectQuery,
    ObjectState,
    Page,
    Reaped,
    StoredObject,
    Token,
    User,
)
from .schema import object_metadata, objects, tokens, users

SQLITE_BUSY_TIMEOUT_MS = 30_000
DB_THREADS = 8
T = TypeVar("T")


def driver_url(url: str) -> URL:
    """Map the configured URL to the driver stowage uses for that database."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return parsed.set(drivername="sqlite")
    if backend == "postgresql":
        return parsed.set(drivername="postgresql+psycopg")
    raise ValueError(f"unsupported database {backend!r}: use sqlite:// or postgresql://")


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

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if writer else "BEGIN")

    return engine


def _like_fragment(text: str) -> str:
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _user(row: Row[Any], prefix: str = "") -> User:
    """A User from ``row``; ``prefix`` names its columns when joined to another table."""
    m = row._mapping
    return User(
        id=m[prefix + "id"],
        name=m[prefix + "name"],
        email=m[prefix + "email"],
        is_admin=bool(m[prefix + "is_admin"]),
        created_at_ms=m[prefix + "created_at_ms"],
    )


def _token(row: Row[Any]) -> Token:
    return Token(
        id=row.id,
        user_id=row.user_id,
        name=row.name,
        prefix=row.prefix,
        scopes=frozenset(row.scopes.split()),
        created_at_ms=row.created_at_ms,
        revoked_at_ms=row.revoked_at_ms,
    )


def _object(row: Row[Any]) -> StoredObject:
    return StoredObject(
        id=row.id,
        public_id=row.public_id,
        owner_id=row.owner_id,
        author_id=row.author_id,
        name=row.name,
        content_type=ContentType(row.content_type),
        state=ObjectState(row.state),
        metadata=orjson.loads(row.metadata_json) if row.metadata_json is not None else None,
        create_time_ms=row.create_time_ms,
        delete_after_time_ms=row.delete_after_time_ms,
        size=row.size,
        md5=row.md5,
        sha256=row.sha256,
        blob_key=row.blob_key,
    )


def _not_expired(now_ms: int) -> Any:
    return or_(objects.c.delete_after_time_ms.is_(None), objects.c.delete_after_time_ms > now_ms)


class SqlMetadataStore:
    def __init__(self, url: str) -> None:
        target = driver_url(url)
        self._sqlite = target.get_backend_name() == "sqlite"
        if self._sqlite:
            self._writer = _sqlite_engine(target, writer=True)
            self._reader = _sqlite_engine(target, writer=False)
            self._write_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="db-writer")
            self._read_pool = None
        else:
            self._writer = self._reader = create_engine(
                target, pool_pre_ping=True, pool_size=DB_THREADS, max_overflow=0
            )
            self._write_pool = ThreadPoolExecutor(max_workers=DB_THREADS, thread_name_prefix="db")
            self._read_pool = self._write_pool

    async def close(self) -> None:
        self._write_pool.shutdown(wait=True)
        self._writer.dispose()
        if self._reader is not self._writer:
            self._reader.dispose()

    async def _write(self, work: Callable[[Connection], T]) -> T:
        """Run ``work`` in one write transaction on a DB thread."""

        def run() -> T:
            with self._writer.begin() as conn:
                return work(conn)

        return await asyncio.wrap_future(self._write_pool.submit(run))

    async def _read(self, work: Callable[[Connection], T]) -> T:
        def run() -> T:
            with self._reader.connect() as conn:
                return work(conn)

        if self._read_pool is None:
            return run()
        return await asyncio.wrap_future(self._read_pool.submit(run))

    # --- users and tokens ----------------------------------------------------------------

    async def create_user(self, name: str, email: str | None, is_admin: bool, now_ms: int) -> User:
        stmt = (
            insert(users)
            .values(name=name, email=email, is_admin=is_admin, created_at_ms=now_ms)
            .returning(*users.c)
        )
        return await self._write(lambda conn: _user(conn.execute(stmt).one()))

    async def _one_user(self, where: Any) -> User | None:
        def work(conn: Connection) -> User | None:
            row = conn.execute(select(users).where(where)).first()
            return _user(row) if row else None

        return await self._read(work)

    async def get_user(self, user_id: int) -> User | None:
        return await self._one_user(users.c.id == user_id)

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
    def _token_and_user(row: Row[Any]) -> tuple[Token, User]:
        return _token(row), _user(row, prefix="u_")

    # Built once: these run on every request, and building a statement costs more than
    # running it on SQLite.
    _FIND_TOKEN = _TOKEN_WITH_USER.where(
        tokens.c.token_hash == bindparam("token_hash"), tokens.c.revoked_at_ms.is_(None)
    )
    _GET_OBJECT = select(objects).where(objects.c.public_id == bindparam("public_id"))

    async def find_token(self, token_hash: str) -> tuple[Token, User] | None:
        def work(conn: Connection) -> tuple[Token, User] | None:
            row = conn.execute(self._FIND_TOKEN, {"token_hash": token_hash}).first()
            return self._token_and_user(row) if row else None

        return await self._read(work)

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

    async def create_object(self, new: NewObject) -> StoredObject:
        values = {
            "public_id": new.public_id,
            "owner_id": new.owner_id,
            "author_id": new.author_id,
            "name": new.name,
            "content_type": new.content_type.value,
            "state": ObjectState.UPLOADING.value,
            "metadata_json": None if new.metadata is None else orjson.dumps(new.metadata).decode(),
            "create_time_ms": new.create_time_ms,
            "delete_after_time_ms": new.delete_after_time_ms,
        }

        def work(conn: Connection) -> StoredObject:
            row = conn.execute(insert(objects).values(values).returning(*objects.c)).one()
            if new.metadata:
                conn.execute(
                    insert(object_metadata),
                    [{"object_id": row.id, "key": k, "value": v} for k, v in new.metadata.items()],
                )
            return _object(row)

        return await self._write(work)

    async def get_object(self, public_id: str) -> StoredObject | None:
        def work(conn: Connection) -> StoredObject | None:
            row = conn.execute(self._GET_OBJECT, {"public_id": public_id}).first()
            return _object(row) if row else None

        return await self._read(work)

    def _filters(self, query: ObjectQuery, now_ms: int) -> list[Any]:
        conds: list[Any] = [_not_expired(now_ms)]
        if query.public_only:
            # Nothing is public until namespaces give objects a visibility (Djinn dialect).
            conds.append(false())
        if query.owner_id is not None:
            conds.append(objects.c.owner_id == query.owner_id)
        if query.state is not None:
            conds.append(objects.c.state == query.state.value)
        else:
            conds.append(objects.c.state != ObjectState.DELETED.value)
        if query.content_type is not None:
            conds.append(objects.c.content_type == query.content_type.value)
        if query.name:
            conds.append(func.lower(objects.c.name).like(_like_fragment(query.name), escape="\\"))
        if query.search:
            conds.append(
                or_(
                    objects.c.public_id == query.search,
                    func.lower(objects.c.name).like(_like_fragment(query.search), escape="\\"),
                )
            )
        return conds

    async def list_objects(self, query: ObjectQuery, now_ms: int) -> Page:
        conds = self._filters(query, now_ms)
        page_conds = list(conds)
        if query.starting_after:
            page_conds.append(objects.c.public_id < query.starting_after)
        stmt = (
            select(objects)
            .where(and_(*page_conds))
            .order_by(objects.c.public_id.desc())
            .limit(query.limit + 1)
        )
        count = select(func.count()).select_from(objects).where(and_(*conds))

        def work(conn: Connection) -> Page:
            rows = conn.execute(stmt).all()
            total = conn.execute(count).scalar_one() if query.include_total_count else None
            return Page(
                objects=[_object(r) for r in rows[: query.limit]],
                has_more=len(rows) > query.limit,
                total_count=total,
            )

        return await self._read(work)

    async def attach_blob(
        self, public_id: str, blob_key: str, blob: BlobWritten
    ) -> tuple[bool, str | None]:
        current = (
            select(objects.c.state, objects.c.blob_key)
            .where(objects.c.public_id == public_id)
            .with_for_update()
        )
        change = (
            update(objects)
            .where(objects.c.public_id == public_id)
            .values(blob_key=blob_key, size=blob.size, md5=blob.md5, sha256=blob.sha256)
        )

        def work(conn: Connection) -> tuple[bool, str | None]:
            row = conn.execute(current).first()
            if row is None or row.state != ObjectState.UPLOADING.value:
                return False, None
            conn.execute(change)
            return True, row.blob_key

        return await self._write(work)

    async def complete_object(self, public_id: str) -> StoredObject | None:
        stmt = (
            update(objects)
            .where(
                objects.c.public_id == public_id,
                objects.c.state == ObjectState.UPLOADING.value,
                objects.c.blob_key.is_not(None),
            )
            .values(state=ObjectState.READ_ONLY.value)
            .returning(*objects.c)
        )

        def work(conn: Connection) -> StoredObject | None:
            row = conn.execute(stmt).first()
            return _object(row) if row else None

        return await self._write(work)

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
                .values(state=ObjectState.DELETED.value, deleted_time_ms=now_ms, blob_key=None)
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

    async def reap(self, now_ms: int, deleted_before_ms: int, limit: int) -> Reaped:
        due = or_(
            objects.c.delete_after_time_ms <= now_ms,
            and_(
                objects.c.state == ObjectState.DELETED.value,
                objects.c.deleted_time_ms <= deleted_before_ms,
            ),
        )
        pick = select(objects.c.id, objects.c.blob_key).where(due).limit(limit)
        if not self._sqlite:
            pick = pick.with_for_update(skip_locked=True)

        def work(conn: Connection) -> Reaped:
            rows: Sequence[Row[Any]] = conn.execute(pick).all()
            ids = [r.id for r in rows]
            if ids:
                conn.execute(delete(object_metadata).where(object_metadata.c.object_id.in_(ids)))
                conn.execute(delete(objects).where(objects.c.id.in_(ids)))
            return Reaped(object_ids=ids, blob_keys=[r.blob_key for r in rows if r.blob_key])

        return await self._write(work)
