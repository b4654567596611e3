"""The database handle every part of ``SqlMetadataStore`` runs its transactions on.

Each operation is one synchronous transaction. Where it runs depends on the database:

* SQLite: reads run inline on the event loop. They take tens of microseconds and WAL
  readers never wait for the writer, while a hop to a worker thread costs 65-120 us on
  these machines (the async drivers paid such a hop per cursor call: ~1 ms per query).
  Writes are grouped into batches (``group_commit``) on one connection that opens every
  transaction with ``BEGIN IMMEDIATE``, so writers queue instead of failing on lock
  upgrade; only the lock, the BEGIN and the COMMIT's fsync wait on a thread.
* PostgreSQL: every operation is a network round trip, so all of them run in a thread pool.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from ..core.errors import Unavailable
from .group_commit import GroupCommitter
from .prepared import Prepared
from .records import AnyRow

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
        if writer:
            # A COMMIT writes the WAL and the group commit fsyncs it after, and runs the
            # checkpoints: both off the event loop and the writer lock (group_commit.py).
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA wal_autocheckpoint=0")
        else:
            cursor.execute("PRAGMA synchronous=FULL")
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


@contextmanager
def _reachable() -> Iterator[None]:
    """Connection failures are an outage to report (503), not a bug (500)."""
    try:
        yield
    except _UNREACHABLE as exc:
        raise _unavailable() from exc


_UNREACHABLE = (OperationalError, InterfaceError, PoolTimeout)


def _unavailable() -> Unavailable:
    return Unavailable("the metadata database is unavailable; retry shortly")


class Database:
    """The engines, threads and inline connections of one database, and the three ways
    to run a transaction on them: ``_write``, ``_read`` and ``_first``."""

    def __init__(self, url: str) -> None:
        target = driver_url(url)
        self._sqlite = target.get_backend_name() == "sqlite"
        if self._sqlite:
            self._writer = _sqlite_engine(target, writer=True)
            self._reader = _sqlite_engine(target, writer=False)
            # Writes: one thread, group commit. Reads: inline on the event loop (no pool).
            database = sqlite_file(target)
            lock = writer_lock_file(database) if database is not None else None
            self._group: GroupCommitter | None = GroupCommitter(
                self._writer, _reachable, database, lock
            )
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
            await self._group.close()
            for raw in self._inline_connections:
                raw.close()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        self._writer.dispose()
        if self._reader is not self._writer:
            self._reader.dispose()

    async def _write(self, work: Callable[[Connection], T]) -> T:
        """Run ``work`` in a write transaction on a DB thread (on SQLite, a savepoint in a
        group commit, on this event loop) and return once it is committed."""
        if self._group is not None:
            result: T = await self._group.run(work)
            return result

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

    async def _all(
        self, stmt: Prepared, mapper: Callable[[Any], R], params: dict[str, Any]
    ) -> list[R]:
        """Every row of a prepared ``stmt`` through ``mapper``, read as ``_first`` reads."""
        dialect = self._reader.dialect
        if self._pool is None:
            with _reachable():
                rows = stmt.rows(self._inline_connection().driver_connection, dialect, params)
            return [mapper(row) for row in rows]
        return await self._read(lambda conn: [mapper(r) for r in stmt.rows(conn, dialect, params)])

    async def _first(
        self, stmt: Any, mapper: Callable[[Any], R], params: dict[str, Any] | None = None
    ) -> R | None:
        """The first row of ``stmt`` through ``mapper``, or None. A ``Prepared`` statement
        runs on the driver's connection: on SQLite, this thread's own, right here."""
        params = params or {}
        dialect = self._reader.dialect
        if isinstance(stmt, Prepared) and self._pool is None:
            try:  # not ``with _reachable()``: a generator context costs more than the read
                row = stmt.first(self._inline_connection().driver_connection, dialect, params)
            except _UNREACHABLE as exc:
                raise _unavailable() from exc
            return mapper(row) if row else None

        def work(conn: Connection) -> R | None:
            row: AnyRow | None
            if isinstance(stmt, Prepared):
                row = stmt.first(conn, dialect, params)
            else:
                row = conn.execute(stmt, params).first()
            return mapper(row) if row else None

        return await self._read(work)
