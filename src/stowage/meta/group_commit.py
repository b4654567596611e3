"""Group commit for SQLite: write transactions that queue up together share one COMMIT.

SQLite has one writer, and with ``synchronous=FULL`` every COMMIT waits for an fsync of the
WAL. One transaction per request capped small uploads at about one fsync each (~600
transactions/s here, and the Runloop flow needs three). So the writes waiting at once are
taken as one batch: each runs inside its own SAVEPOINT (so one that fails rolls back
alone), and they all commit at once. No caller hears of success before that COMMIT, so a
2xx still means durable.

The batch's statements run on the event loop itself; only what waits goes to a thread:
taking the writer lock and ``BEGIN IMMEDIATE``, and the COMMIT with its fsync. A writer
thread of its own ran them before, and lost: Python's sqlite3 lets go of the GIL around
every statement, so a batch of small uploads took the GIL back ten times an upload from
an event loop that wanted it too. It spent twice the CPU of the statements and as long
again waiting (``make bench``, 4 KiB uploads: ~700 µs of writer time each). A statement
here costs tens of microseconds; the loop pays them instead of waiting for them.

Several processes (``STOWAGE_WORKERS``, the CLI next to a running server) each commit
their own batches. SQLite lets one of them write at a time, and the others wait in
``busy_timeout``, which polls with sleeps of up to 100 ms: under load that put p99 at
~71 ms. So the processes take turns on an ``flock`` of a file beside the database instead,
held around each batch's ``BEGIN IMMEDIATE`` ... ``COMMIT``: the kernel wakes the next one
the moment the lock is free, and a batch still commits once. Within a process, batches of
different event loops (the tests run one beside the server's) take turns on a lock too.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine

Work = Callable[[Connection], Any]
MAX_BATCH = 128


class WriterLock:
    """An exclusive ``flock`` on ``path``, taken and released around each batch. The file
    is opened once; the lock goes with the process if it dies holding it."""

    def __init__(self, path: Path) -> None:
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)

    def acquire(self) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_EX)

    def release(self) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        os.close(self._fd)


class GroupCommitter:
    def __init__(
        self,
        engine: Engine,
        reachable: Callable[[], AbstractContextManager[None]],
        lock_path: Path | None = None,
    ):
        self._engine = engine
        self._reachable = reachable  # maps connection failures to Unavailable
        # Writers in other processes take turns on this lock (None: an in-memory database).
        self._lock = WriterLock(lock_path) if lock_path is not None else None
        self._turn = threading.Lock()  # one transaction at a time in this process
        self._waiting: dict[asyncio.AbstractEventLoop, list[tuple[Work, asyncio.Future[Any]]]]
        self._waiting = {}
        self._draining: dict[asyncio.AbstractEventLoop, asyncio.Task[None]] = {}

    async def run(self, work: Work) -> Any:
        """``work``'s result once the batch it joined has committed."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._waiting.setdefault(loop, []).append((work, future))
        if loop not in self._draining:
            self._draining[loop] = loop.create_task(self._drain(loop))
        return await future

    async def close(self) -> None:
        """Finish what this event loop has queued, then let the lock file go."""
        task = self._draining.get(asyncio.get_running_loop())
        if task is not None:
            await task
        if self._lock is not None and not self._draining:
            self._lock.close()
            self._lock = None

    async def _drain(self, loop: asyncio.AbstractEventLoop) -> None:
        """Commit what waits, in batches, until nothing does. Writes queued meanwhile
        form the next batch; the last check and the exit happen without an ``await``
        between them, so no write is left behind."""
        try:
            while waiting := self._waiting.pop(loop, None):
                for start in range(0, len(waiting), MAX_BATCH):
                    # A caller cancelled before its batch began has nothing written.
                    batch = [(w, f) for w, f in waiting[start : start + MAX_BATCH] if not f.done()]
                    if batch:
                        await self._commit(batch)
        finally:
            del self._draining[loop]

    async def _commit(self, batch: list[tuple[Work, asyncio.Future[Any]]]) -> None:
        try:
            conn = await _finished(asyncio.to_thread(self._begin), self._end)
        except Exception as exc:
            _settle(batch, [(False, exc)] * len(batch))
            return
        outcomes: list[tuple[bool, Any]] = []
        try:
            # Savepoints on the driver's connection: SQLAlchemy's nested transactions
            # cost more CPU than a small upload's INSERT.
            raw = conn.connection.dbapi_connection
            assert raw is not None
            for work, _ in batch:
                raw.execute("SAVEPOINT work")
                try:
                    with self._reachable():
                        outcomes.append((True, work(conn)))
                except Exception as exc:
                    if not raw.in_transaction:
                        # SQLite rolled the whole transaction back (a full disk, an I/O
                        # error): a SAVEPOINT now would open a new one, and the batch's
                        # later work would commit without the earlier.
                        raise
                    raw.execute("ROLLBACK TO work")
                    outcomes.append((False, exc))
                raw.execute("RELEASE work")
        except Exception as exc:  # nothing of the batch is kept
            await asyncio.to_thread(self._end, conn, commit=False)
            _settle(batch, [(False, exc)] * len(batch))
            return
        try:
            await asyncio.to_thread(self._end, conn, commit=True)
        except Exception as exc:  # the COMMIT itself failed: nothing of the batch is kept
            _settle(batch, [(False, exc)] * len(batch))
            return
        _settle(batch, outcomes)

    def _begin(self) -> Connection:
        """Take both locks and open the write transaction (``BEGIN IMMEDIATE``)."""
        self._turn.acquire()
        try:
            if self._lock is not None:
                self._lock.acquire()
            try:
                with self._reachable():
                    conn = self._engine.connect()
                    try:
                        conn.begin()
                    except BaseException:
                        conn.close()
                        raise
            except BaseException:
                if self._lock is not None:
                    self._lock.release()
                raise
        except BaseException:
            self._turn.release()
            raise
        return conn

    def _end(self, conn: Connection, commit: bool = False) -> None:
        """COMMIT (or roll back), then give both locks back whatever happened."""
        try:
            with self._reachable():
                if commit:
                    conn.commit()
                else:
                    with contextlib.suppress(Exception):
                        conn.rollback()
        finally:
            conn.close()  # rolls back what did not commit
            if self._lock is not None:
                self._lock.release()
            self._turn.release()


async def _finished(begun: Any, end: Callable[[Connection], None]) -> Connection:
    """The connection ``begun`` opens; if the caller is cancelled meanwhile (the loop is
    closing), the transaction it opens anyway is ended there, so no lock stays held."""
    task = asyncio.ensure_future(begun)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        task.add_done_callback(
            lambda t: None if t.cancelled() or t.exception() else end(t.result())
        )
        raise


def _settle(
    batch: list[tuple[Work, asyncio.Future[Any]]], outcomes: list[tuple[bool, Any]]
) -> None:
    for (_, future), (ok, value) in zip(batch, outcomes, strict=True):
        if future.done():  # its caller was cancelled while the batch ran
            continue
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)
