"""The MetadataStore on SQLAlchemy Core, for SQLite and PostgreSQL alike.

SQLite gets one writer connection that opens every transaction with ``BEGIN IMMEDIATE``
(so concurrent writers queue on the busy timeout instead of failing on lock upgrade) and a
pool of readers, which WAL mode lets run beside the writer.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import orjson
from sqlalchemy import and_, delete, event, false, func, insert, or_, select, update
from sqlalchemy.engine import URL, Row, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

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


def async_url(url: str) -> URL:
    """Map the configured URL to the async driver for the same database."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return parsed.set(drivername="sqlite+aiosqlite")
    if backend == "postgresql":
        return parsed.set(drivername="postgresql+psycopg")
    raise ValueError(f"unsupported database {backend!r}: use sqlite:// or postgresql://")


def _sqlite_engine(url: URL, *, writer: bool) -> AsyncEngine:
    options: dict[str, Any] = {"pool_size": 1, "max_overflow": 0} if writer else {}
    engine = create_async_engine(url, **options)

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # let the "begin" hook below issue BEGIN
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")  # a committed row survives power loss
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if writer else "BEGIN")

    return engine


def _like_fragment(text: str) -> str:
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _user(row: Row[Any]) -> User:
    return User(
        id=row.id,
        name=row.name,
        email=row.email,
        is_admin=bool(row.is_admin),
        created_at_ms=row.created_at_ms,
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
        target = async_url(url)
        self._sqlite = target.get_backend_name() == "sqlite"
        if self._sqlite:
            self._writer = _sqlite_engine(target, writer=True)
            self._reader = _sqlite_engine(target, writer=False)
        else:
            self._writer = self._reader = create_async_engine(target, pool_pre_ping=True)

    async def close(self) -> None:
        await self._writer.dispose()
        if self._reader is not self._writer:
            await self._reader.dispose()

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[AsyncConnection]:
        async with self._writer.begin() as conn:
            yield conn

    @asynccontextmanager
    async def _read(self) -> AsyncIterator[AsyncConnection]:
        async with self._reader.connect() as conn:
            yield conn

    # --- users and tokens ----------------------------------------------------------------

    async def create_user(self, name: str, email: str | None, is_admin: bool, now_ms: int) -> User:
        async with self._write() as conn:
            row = (
                await conn.execute(
                    insert(users)
                    .values(name=name, email=email, is_admin=is_admin, created_at_ms=now_ms)
                    .returning(*users.c)
                )
            ).one()
        return _user(row)

    async def get_user(self, user_id: int) -> User | None:
        async with self._read() as conn:
            row = (await conn.execute(select(users).where(users.c.id == user_id))).first()
        return _user(row) if row else None

    async def get_user_by_name(self, name: str) -> User | None:
        async with self._read() as conn:
            row = (await conn.execute(select(users).where(users.c.name == name))).first()
        return _user(row) if row else None

    async def count_users(self) -> int:
        async with self._read() as conn:
            return (await conn.execute(select(func.count()).select_from(users))).scalar_one()

    async def create_token(
        self,
        user_id: int,
        name: str,
        token_hash: str,
        prefix: str,
        scopes: frozenset[str],
        now_ms: int,
    ) -> Token:
        async with self._write() as conn:
            row = (
                await conn.execute(
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
            ).one()
        return _token(row)

    async def find_token(self, token_hash: str) -> tuple[Token, User] | None:
        stmt = (
            select(tokens, users.c.name.label("user_name"))
            .join(users, users.c.id == tokens.c.user_id)
            .where(tokens.c.token_hash == token_hash, tokens.c.revoked_at_ms.is_(None))
        )
        async with self._read() as conn:
            row = (await conn.execute(stmt)).first()
            if row is None:
                return None
            user_row = (await conn.execute(select(users).where(users.c.id == row.user_id))).one()
        return _token(row), _user(user_row)

    async def list_tokens(self, user_id: int | None) -> list[tuple[Token, User]]:
        stmt = (
            select(tokens, *[c.label(f"u_{c.name}") for c in users.c])
            .join(users, users.c.id == tokens.c.user_id)
            .order_by(tokens.c.id)
        )
        if user_id is not None:
            stmt = stmt.where(tokens.c.user_id == user_id)
        async with self._read() as conn:
            rows = (await conn.execute(stmt)).all()
        return [
            (
                _token(r),
                User(
                    id=r.u_id,
                    name=r.u_name,
                    email=r.u_email,
                    is_admin=bool(r.u_is_admin),
                    created_at_ms=r.u_created_at_ms,
                ),
            )
            for r in rows
        ]

    async def revoke_token(self, token_id: int, now_ms: int) -> bool:
        async with self._write() as conn:
            result = await conn.execute(
                update(tokens)
                .where(tokens.c.id == token_id, tokens.c.revoked_at_ms.is_(None))
                .values(revoked_at_ms=now_ms)
            )
        return result.rowcount == 1

    # --- objects -------------------------------------------------------------------------

    async def create_object(self, new: NewObject) -> StoredObject:
        values = {
            "public_id": new.public_id,
            "owner_id": new.owner_id,
            "author_id": new.author_id,
            "name": new.name,
            "content_type": new.content_type.value,
            "state": ObjectState.UPLOADING.value,
            "metadata_json": orjson.dumps(new.metadata).decode()
            if new.metadata is not None
            else None,
            "create_time_ms": new.create_time_ms,
            "delete_after_time_ms": new.delete_after_time_ms,
        }
        async with self._write() as conn:
            row = (await conn.execute(insert(objects).values(values).returning(*objects.c))).one()
            if new.metadata:
                await conn.execute(
                    insert(object_metadata),
                    [{"object_id": row.id, "key": k, "value": v} for k, v in new.metadata.items()],
                )
        return _object(row)

    async def get_object(self, public_id: str) -> StoredObject | None:
        async with self._read() as conn:
            row = (
                await conn.execute(select(objects).where(objects.c.public_id == public_id))
            ).first()
        return _object(row) if row else None

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
        async with self._read() as conn:
            rows = (await conn.execute(stmt)).all()
            total = None
            if query.include_total_count:
                total = (
                    await conn.execute(
                        select(func.count()).select_from(objects).where(and_(*conds))
                    )
                ).scalar_one()
        return Page(
            objects=[_object(r) for r in rows[: query.limit]],
            has_more=len(rows) > query.limit,
            total_count=total,
        )

    async def attach_blob(
        self, public_id: str, blob_key: str, blob: BlobWritten
    ) -> tuple[bool, str | None]:
        async with self._write() as conn:
            row = (
                await conn.execute(
                    select(objects.c.state, objects.c.blob_key)
                    .where(objects.c.public_id == public_id)
                    .with_for_update()
                )
            ).first()
            if row is None or row.state != ObjectState.UPLOADING.value:
                return False, None
            await conn.execute(
                update(objects)
                .where(objects.c.public_id == public_id)
                .values(blob_key=blob_key, size=blob.size, md5=blob.md5, sha256=blob.sha256)
            )
        return True, row.blob_key

    async def complete_object(self, public_id: str) -> StoredObject | None:
        async with self._write() as conn:
            row = (
                await conn.execute(
                    update(objects)
                    .where(
                        objects.c.public_id == public_id,
                        objects.c.state == ObjectState.UPLOADING.value,
                        objects.c.blob_key.is_not(None),
                    )
                    .values(state=ObjectState.READ_ONLY.value)
                    .returning(*objects.c)
                )
            ).first()
        return _object(row) if row else None

    async def mark_deleted(
        self, public_id: str, now_ms: int
    ) -> tuple[StoredObject, str | None] | None:
        async with self._write() as conn:
            row = (
                await conn.execute(
                    select(objects).where(objects.c.public_id == public_id).with_for_update()
                )
            ).first()
            if row is None:
                return None
            if row.state == ObjectState.DELETED.value:
                return _object(row), None
            updated = (
                await conn.execute(
                    update(objects)
                    .where(objects.c.id == row.id)
                    .values(state=ObjectState.DELETED.value, deleted_time_ms=now_ms, blob_key=None)
                    .returning(*objects.c)
                )
            ).one()
        return _object(updated), row.blob_key

    def _metadata_scope(self, owner_id: int, now_ms: int) -> list[Any]:
        return [
            objects.c.owner_id == owner_id,
            objects.c.state != ObjectState.DELETED.value,
            _not_expired(now_ms),
        ]

    async def metadata_keys(self, owner_id: int, now_ms: int) -> list[str]:
        stmt = (
            select(object_metadata.c.key)
            .join(objects, objects.c.id == object_metadata.c.object_id)
            .where(*self._metadata_scope(owner_id, now_ms))
            .distinct()
            .order_by(object_metadata.c.key)
        )
        async with self._read() as conn:
            return list((await conn.execute(stmt)).scalars())

    async def metadata_values(self, owner_id: int, key: str, now_ms: int) -> list[str]:
        stmt = (
            select(object_metadata.c.value)
            .join(objects, objects.c.id == object_metadata.c.object_id)
            .where(object_metadata.c.key == key, *self._metadata_scope(owner_id, now_ms))
            .distinct()
            .order_by(object_metadata.c.value)
        )
        async with self._read() as conn:
            return list((await conn.execute(stmt)).scalars())

    async def reap(self, now_ms: int, deleted_before_ms: int, limit: int) -> Reaped:
        due = or_(
            objects.c.delete_after_time_ms <= now_ms,
            and_(
                objects.c.state == ObjectState.DELETED.value,
                objects.c.deleted_time_ms <= deleted_before_ms,
            ),
        )
        stmt = select(objects.c.id, objects.c.blob_key).where(due).limit(limit)
        if not self._sqlite:
            stmt = stmt.with_for_update(skip_locked=True)
        async with self._write() as conn:
            rows: Sequence[Row[Any]] = (await conn.execute(stmt)).all()
            ids = [r.id for r in rows]
            if ids:
                await conn.execute(
                    delete(object_metadata).where(object_metadata.c.object_id.in_(ids))
                )
                await conn.execute(delete(objects).where(objects.c.id.in_(ids)))
        return Reaped(object_ids=ids, blob_keys=[r.blob_key for r in rows if r.blob_key])
