"""Group commit for SQLite: write transactions that queue up together share one COMMIT.

SQLite has one writer, and with ``synchronous=FULL`` every COMMIT waits for an fsync of the
WAL. One transaction per request capped small uploads at about one fsync each (~600
transactions/s here, and the Runloop flow needs three). The writer thread instead takes every
transaction waiting in the queue, runs each inside its own SAVEPOINT (so one that fails rolls
back alone), and commits them all at once. No caller hears of success before that COMMIT,
so a 2xx still means durable.

Several processes (``STOWAGE_WORKERS``, the CLI next to a running server) each have a writer
thread. SQLite lets one of them write at a time, and the others wait in ``busy_timeout``,
which polls with sleeps of up to 100 ms: under load that put p99 at ~71 ms. So the writers
take turns on an ``flock`` of a file beside the database instead, held around each batch's
``BEGIN IMMEDIATE`` ... ``COMMIT``: the kernel wakes the next one the moment the lock is
free, and a batch still commits once.
"""

from __future__ import annotations

import fcntl
import os
import queue
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine

from ..batches import batches

Work = Callable[[Connection], Any]
MAX_BATCH = 128


class WriterLock:
    """An exclusive ``flock`` on ``path``, taken and released around each batch. The file
    is opened once; the lock goes with the process if it dies holding it."""

    def __init__(self, path: Path) -> None:
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)

    @contextmanager
    def held(self) -> Iterator[None]:
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
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
        self._queue: queue.SimpleQueue[tuple[Work, Future[Any]] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="db-writer", daemon=True)
        self._thread.start()

    def submit(self, work: Work) -> Future[Any]:
        future: Future[Any] = Future()
        self._queue.put((work, future))
        return future

    def shutdown(self) -> None:
        """Finish what is queued, then stop the writer thread."""
        self._queue.put(None)
        self._thread.join()
        if self._lock is not None:
            self._lock.close()

    def _run(self) -> None:
        for batch in batches(self._queue, MAX_BATCH):
            self._commit([(w, f) for w, f in batch if f.set_running_or_notify_cancel()])

    def _commit(self, batch: list[tuple[Work, Future[Any]]]) -> None:
        outcomes: list[tuple[bool, Any]] = []
        try:
            turn = self._lock.held() if self._lock is not None else nullcontext()
            with turn, self._reachable(), self._engine.begin() as conn:
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
                            # SQLite rolled the whole transaction back (a full disk, an
                            # I/O error): a SAVEPOINT now would open a new one, and the
                            # batch's later work would commit without the earlier.
                            raise
                        raw.execute("ROLLBACK TO work")
                        outcomes.append((False, exc))
                    raw.execute("RELEASE work")
        except Exception as exc:  # the COMMIT itself failed: nothing of the batch is kept
            for _, future in batch:
                future.set_exception(exc)
            return
        for (_, future), (ok, value) in zip(batch, outcomes, strict=True):
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)
