"""Small blobs made durable in batches: the files' fsyncs on a few threads, their renames,
then one fsync per directory for the whole batch.

A small upload made durable on its own costs two fsyncs (the file, then its directory
after the rename) on a thread of the blob pool, and two thread hops; with 32 uploads at
once each waited ~7 ms for that, on one core's worth of fsync latency. Here the event loop
writes the temporary file itself (a few microseconds for a small body), and one publisher
thread takes every file waiting: their fsyncs run side by side on ``FSYNC_THREADS``, the
renames follow, and each directory the batch renamed into is fsynced once. Blob keys
start with a prefix that changes every few seconds (``core.ids.new_blob_key``), so the
uploads of one batch mostly share a directory. Every waiting upload is then woken by one
call into its event loop.

Nothing is acknowledged before its file, its name and its directory entry are on disk,
as with the one-at-a-time path.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from ..batches import batches

FSYNC_THREADS = 4
MAX_BATCH = 256


@dataclass
class _Job:
    fd: int  # the temporary file, written and still open; the publisher closes it
    temporary: Path
    final: Path
    loop: asyncio.AbstractEventLoop
    done: asyncio.Future[None]
    error: BaseException | None = field(default=None)


class BatchPublisher:
    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._fsyncs = ThreadPoolExecutor(FSYNC_THREADS, thread_name_prefix="blob-fsync")
        self._thread = threading.Thread(target=self._run, name="blob-publisher", daemon=True)
        self._thread.start()

    async def publish(self, fd: int, temporary: Path, final: Path) -> None:
        """fsync, close and rename ``temporary`` to ``final``, and fsync its directory.
        On failure the temporary file is removed and the error raised here. Once called,
        the job runs to its end even if the caller is cancelled (an unreferenced blob is
        what fsck and the reaper remove)."""
        loop = asyncio.get_running_loop()
        job = _Job(fd, temporary, final, loop, loop.create_future())
        self._queue.put(job)
        await asyncio.shield(job.done)

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join()
        self._fsyncs.shutdown(wait=True)

    def _run(self) -> None:
        for batch in batches(self._queue, MAX_BATCH):
            self._publish(batch)

    def _publish(self, batch: list[_Job]) -> None:
        for job, error in zip(batch, self._fsyncs.map(_sync_and_close, batch), strict=True):
            job.error = error
        directories: set[Path] = set()
        for job in batch:
            if job.error is None:
                try:
                    os.rename(job.temporary, job.final)
                    directories.add(job.final.parent)
                    continue
                except OSError as exc:
                    job.error = exc
            job.temporary.unlink(missing_ok=True)
        failed: dict[Path, OSError] = {}
        for directory in directories:
            try:
                fsync_dir(directory)
            except OSError as exc:
                failed[directory] = exc
        by_loop: dict[asyncio.AbstractEventLoop, list[_Job]] = {}
        for job in batch:
            if job.error is None and job.final.parent in failed:
                job.error = failed[job.final.parent]
            by_loop.setdefault(job.loop, []).append(job)
        for loop, jobs in by_loop.items():
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
                loop.call_soon_threadsafe(_wake, jobs)


def _sync_and_close(job: _Job) -> OSError | None:
    try:
        os.fsync(job.fd)
    except OSError as exc:
        return exc
    finally:
        os.close(job.fd)
    return None


def _wake(jobs: list[_Job]) -> None:
    for job in jobs:
        if job.done.done():
            continue
        if job.error is None:
            job.done.set_result(None)
        else:
            job.done.set_exception(job.error)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
