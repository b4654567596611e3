"""The TTL reaper: a background task that removes expired objects, old tombstones and
idempotency keys past their lifetime, each in bounded batches."""

from __future__ import annotations

import asyncio
import logging

from .core.objects import ObjectService

log = logging.getLogger(__name__)


class Reaper:
    def __init__(self, objects: ObjectService, interval_s: float) -> None:
        self._objects = objects
        self._interval = interval_s
        self._task: asyncio.Task[None] | None = None
        self.runs = 0
        self.removed = 0

    async def run_once(self) -> int:
        """Sweep until nothing is due; return how many objects were removed."""
        total = 0
        while removed := await self._objects.reap():
            total += removed
        while await self._objects.forget_keys():
            pass
        self.runs += 1
        self.removed += total
        if total:
            log.info("reaper removed %d expired or deleted objects", total)
        return total

    async def _loop(self) -> None:
        while True:
            try:
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
