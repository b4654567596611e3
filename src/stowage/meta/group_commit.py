"""Group commit for SQLite: write transactions that queue up together share one COMMIT,
and one fsync that makes it durable, taken after every process may write again.

SQLite has one writer, and a durable COMMIT waits for an fsync of the WAL. One
transaction per request capped small uploads at about one fsync each (~600
transactions/s here, and the Runloop flow needs three). So the writes waiting at once are
taken as one batch: each runs inside its own SAVEPOINT (so one that fails rolls back
alone), and they all commit at once. No caller hears of success before the fsync that
follows that COMMIT, so a 2xx still means durable.

Everything but waiting runs on the event loop: the SAVEPOINTs, the statements, and the
COMMIT itself, which writes the WAL without syncing it (the writer's connection runs
``synchronous=NORMAL``). Then the writer lock is given back, and only then is the WAL
fsynced, on a thread: other writers commit their batches while this one's fsync runs,
where ``synchronous=FULL`` had them wait for it. A later fsync of the WAL covers every
frame before it, and a checkpoint syncs the WAL before copying it into the database
(SQLite's rule for ``NORMAL``), so nothing acknowledged can be lost. What other
connections may see meanwhile is committed but possibly not yet durable: after a power
loss it can be gone, as is the 2xx its writer never got. Checkpoints run on a thread
too, after every ``CHECKPOINT_EVERY`` batches (``wal_autocheckpoint`` is off for the
writer), so no COMMIT on the loop waits for one. Threads ran more before, and lost each
time: Python's sqlite3 lets go of the GIL around every statement, and a thread then
waited for a busy event loop to hand it back (up to the 5 ms switch interval) while it
held the writer lock; for 4 KiB uploads that was ~700 µs of writer time each when the
statements ran there, and ~4 ms a batch when only the BEGIN and the COMMIT did.

Several processes (``STOWAGE_WORKERS``, the CLI next to a running server) each commit
their own batches. SQLite lets one of them write at a time, and the others wait in
``busy_timeout``, which polls with sleeps of up to 100 ms: under load that put p99 at
~71 ms. So the processes take turns on an ``flock`` of a file beside the database instead,
held from each batch's ``BEGIN IMMEDIATE`` to its COMMIT: taken on the event loop when it
is free, else waited for on a thread, which the kernel wakes the moment it is. Within a
process, batches of different event loops (the tests run one beside the server's) take
turns on a lock too.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import sqlite3
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine

log = logging.getLogger(__name__)

Work = Callable[[Connection], Any]
MAX_BATCH = 128
# A process checkpoints the WAL into the database after this many of its batches: a
# batch of small uploads writes tens of pages, and SQLite's own automatic checkpoint
# comes every 1,000. (The WAL file's size says nothing: it is reused from its start once
# all of it was copied, and keeps its size.)
CHECKPOINT_EVERY = 16


class WriterLock:
    """An exclusive ``flock`` on ``path``, taken and released around each batch. The file
    is opened once; the lock goes with the process if it dies holding it."""

    def __init__(self, path: Path) -> None:
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)

    def acquire(self, wait: bool = True) -> bool:
        """Take the lock, waiting for it unless ``wait`` is false: then say whether it
        was free."""
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def release(self) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        os.close(self._fd)


class GroupCommitter:
    def __init__(
        self,
        engine: Engine,
        reachable: Callable[[], AbstractContextManager[None]],
        database: Path | None = None,
        lock_path: Path | None = None,
    ):
        self._engine = engine
        self._reachable = reachable  # maps connection failures to Unavailable
        # Writers in other processes take turns on this lock (None: an in-memory database).
        self._lock = WriterLock(lock_path) if lock_path is not None else None
        # The file each COMMIT is made durable in, and the database it is checkpointed
        # into (None: an in-memory database, nothing to sync).
        self._wal = WalFile(database) if database is not None else None
        self._checkpointer: sqlite3.Connection | None = None
        self._checkpointing = threading.Lock()  # one at a time, and not while closing
        self._closed = False
        self._batches = 0
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
        if self._draining:  # another event loop still commits here
            return
        if self._lock is not None:
            self._lock.close()
            self._lock = None
        with self._checkpointing:
            self._closed = True
            if self._checkpointer is not None:
                self._checkpointer.close()
                self._checkpointer = None
        if self._wal is not None:
            self._wal.close()

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
            conn = self._begin(wait=False)
            if conn is None:  # another process is writing: wait for it on a thread
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
            self._end(conn, commit=False)
            _settle(batch, [(False, exc)] * len(batch))
            return
        try:
            self._end(conn, commit=True)
            await self._make_durable()
        except Exception as exc:  # not committed, or not known to be durable
            _settle(batch, [(False, exc)] * len(batch))
            return
        _settle(batch, outcomes)

    def _begin(self, wait: bool = True) -> Connection | None:
        """Take both locks and open the write transaction (``BEGIN IMMEDIATE``); without
        ``wait``, only if both are free (None when not)."""
        if not self._turn.acquire(blocking=wait):
            return None
        try:
            if self._lock is not None and not self._lock.acquire(wait):
                self._turn.release()
                return None
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

    async def _make_durable(self) -> None:
        """fdatasync the WAL, which holds every COMMIT so far (as SQLite syncs it: its
        data and size), on a thread; every ``CHECKPOINT_EVERY`` batches, start a
        checkpoint there too, which no caller waits for."""
        if self._wal is None:
            return
        fd = self._wal.current()
        if fd is None:  # checkpointed into the database, which that synced, and gone
            return
        # The thread makes one call that lets go of the GIL, and takes it back once: each
        # such call on a thread costs a wait for the busy event loop to hand the GIL
        # over, up to the switch interval (5 ms).
        await asyncio.to_thread(os.fdatasync, fd)
        self._batches += 1
        if self._batches % CHECKPOINT_EVERY == 0:
            asyncio.get_running_loop().run_in_executor(None, self._checkpoint)

    def _checkpoint(self) -> None:
        """A PASSIVE checkpoint: it copies what no reader still needs and waits for no
        one; once the WAL is all copied, the next writer starts it over from the top."""
        if not self._checkpointing.acquire(blocking=False):
            return  # one is running: it copies this batch's pages too, or the next will
        try:
            if self._closed:
                return
            if self._checkpointer is None:
                assert self._wal is not None
                self._checkpointer = sqlite3.connect(self._wal.database, check_same_thread=False)
            self._checkpointer.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except sqlite3.Error:
            log.warning("a WAL checkpoint failed; the next one retries", exc_info=True)
        finally:
            self._checkpointing.release()


class WalFile:
    """A database's WAL, kept open for its fdatasyncs. SQLite removes the file only when
    its last connection closes (the writer's stays open), but a new one would be another
    file: so each sync first checks, with a ``stat`` on the event loop, that the file
    open is still the one named."""

    def __init__(self, database: Path) -> None:
        self.database = database
        self.path = Path(f"{database}-wal")
        self._fd = -1
        self._inode = -1
        self._replaced: list[int] = []  # closed with the committer: a sync may be using one

    def current(self) -> int | None:
        """The open WAL, or None when there is no WAL."""
        try:
            named = os.stat(self.path)
        except FileNotFoundError:
            return None
        if named.st_ino != self._inode:
            if self._fd >= 0:
                self._replaced.append(self._fd)
            self._fd = os.open(self.path, os.O_RDONLY)
            self._inode = os.fstat(self._fd).st_ino
        return self._fd

    def close(self) -> None:
        for fd in [self._fd, *self._replaced]:
            if fd >= 0:
                os.close(fd)
        self._fd, self._inode, self._replaced = -1, -1, []


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
