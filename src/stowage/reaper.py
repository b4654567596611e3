"""The TTL reaper: a background task that enforces namespaces' retention rules and removes
expired objects, old tombstones, idempotency keys past their lifetime and blobs nothing
has referenced for the grace (``ObjectService.collect_blobs``), each in bounded batches;
it also makes the digests a restart left unmade (``ObjectService.fill_digests``).

Every worker process of a server has one, but only one of them sweeps: the first to take
an ``flock`` on ``<data>/reaper.lock`` keeps it for its life, and the others try again
each interval, so another takes over when that worker dies. Two reapers at once would
still be safe, only wasted work: on SQLite each batch is a write transaction, which
writers take in turn (``meta/group_commit.py``), so the second finds the rows gone; on
PostgreSQL batches are picked ``FOR UPDATE SKIP LOCKED``, which is also what keeps the
reapers of replicas (a data directory each) apart.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
from pathlib import Path

from .core.objects import ObjectService
from .metrics import Metrics

log = logging.getLogger(__name__)
LOCK_FILE = "reaper.lock"
# How far ahead a max_age rule sets expiries, at least: an object then vanishes at its age
# even when the next sweep comes after it (see core/retention.py).
MIN_LOOKAHEAD_S = 60
RULES = ("max_age", "keep_newest")


class SweepTurn:
    """Whether this process is the one that sweeps for its data directory."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._fd: int | None = None

    def ours(self) -> bool:
        if self._fd is not None:
            return True
        fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class Reaper:
    def __init__(
        self, objects: ObjectService, interval_s: float, metrics: Metrics, data_dir: Path
    ) -> None:
        self._objects = objects
        self._interval = interval_s
        self._metrics = metrics
        self._turn = SweepTurn(data_dir / LOCK_FILE)
        self._task: asyncio.Task[None] | None = None

    async def run_once(self) -> int:
        """Sweep until nothing is due; return how many objects were removed."""
        await self._enforce_retention()
        total = 0
        while (reaped := await self._objects.reap()).object_ids or reaped.swept:
            total += len(reaped.object_ids)
        while await self._objects.reap_multipart():
            pass
        orphans = await self._objects.reap_orphan_parts()
        if orphans:
            log.warning("reaper aborted %d orphan multipart uploads in the blob store", orphans)
        while await self._objects.forget_keys():
            pass
        await self._objects.fill_digests()
        collected = 0
        while found := await self._objects.collect_blobs():
            collected += found
        self._metrics.collected_blobs.inc(collected)
        self._metrics.reaper_runs.inc()
        self._metrics.reaped.inc(total)
        if total:
            log.info("reaper removed %d expired or deleted objects", total)
        return total

    async def _enforce_retention(self) -> None:
        """Expire what the retention rules no longer keep, batch by batch; the sweep that
        follows removes it."""
        lookahead_ms = int(max(2 * self._interval, MIN_LOOKAHEAD_S) * 1000)
        while True:
            batches = await self._objects.enforce_retention(lookahead_ms)
            if not any(expired.objects for expired in batches):
                return
            for rule, expired in zip(RULES, batches, strict=True):
                if expired.objects:
                    self._metrics.retention_objects.labels(rule).inc(expired.objects)
                    self._metrics.retention_bytes.labels(rule).inc(expired.bytes)
                    log.info("retention rule %s expired %d objects", rule, expired.objects)

    async def _loop(self) -> None:
        while True:
            try:
                if self._turn.ours():
                    await self.run_once()
            except Exception:  # a failed sweep must not stop the next one
                log.exception("reaper sweep failed; retrying in %.0fs", self._interval)
            await asyncio.sleep(self._interval)

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="stowage-reaper")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        self._turn.release()
