"""Group commit for SQLite: write transactions that queue up together share one COMMIT.

SQLite has one writer, and with ``synchronous=FULL`` every COMMIT waits for an fsync of the
WAL. One transaction per request capped small uploads at about one fsync each (~600
transactions/s here, and the Runloop flow needs three). The writer thread instead takes every
transaction waiting in the queue, runs each inside its own SAVEPOINT (so one that fails rolls
back alone), and commits them all at once. No caller hears of success before that COMMIT,
so a 2xx still means durable.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import AbstractContextManager
from typing import Any

from sqlalchemy import Connection, Engine

Work = Callable[[Connection], Any]
MAX_BATCH = 128


class GroupCommitter:
    def __init__(self, engine: Engine, reachable: Callable[[], AbstractContextManager[None]]):
        self._engine = engine
        self._reachable = reachable  # maps connection failures to Unavailable
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

    def _batches(self) -> Iterator[list[tuple[Work, Future[Any]]]]:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            stopping = False
            while len(batch) < MAX_BATCH:
                try:
                    job = self._queue.get_nowait()
                except queue.Empty:
                    break
                if job is None:
                    stopping = True
                    break
                batch.append(job)
            yield batch
            if stopping:
                return

    def _run(self) -> None:
        for batch in self._batches():
            self._commit([(w, f) for w, f in batch if f.set_running_or_notify_cancel()])

    def _commit(self, batch: list[tuple[Work, Future[Any]]]) -> None:
        outcomes: list[tuple[bool, Any]] = []
        try:
            with self._reachable(), self._engine.begin() as conn:
                for work, _ in batch:
                    try:
                        with self._reachable(), conn.begin_nested():
                            outcomes.append((True, work(conn)))
                    except Exception as exc:
                        outcomes.append((False, exc))
        except Exception as exc:  # the COMMIT itself failed: nothing of the batch is kept
            for _, future in batch:
                future.set_exception(exc)
            return
        for (_, future), (ok, value) in zip(batch, outcomes, strict=True):
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)
