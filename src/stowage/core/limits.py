"""Concurrent-upload slots: one caller cannot occupy every upload this server can take.

Counted per process (each replica enforces its own share); a caller over its share, or a
server at capacity, gets TooBusy (429 with Retry-After) at once instead of queueing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from .errors import TooBusy


class UploadSlots:
    def __init__(self, total: int, per_caller: int) -> None:
        self.total = total
        self.per_caller = per_caller
        self._in_use: Counter[str] = Counter()

    @property
    def in_use(self) -> int:
        return sum(self._in_use.values())

    @asynccontextmanager
    async def hold(self, caller: str) -> AsyncIterator[None]:
        """Occupy a slot for ``caller`` (a token, or a presigned URL's object) meanwhile."""
        if self._in_use[caller] >= self.per_caller:
            raise TooBusy(f"at most {self.per_caller} uploads at once per token; retry shortly")
        if self.in_use >= self.total:
            raise TooBusy("the server is taking as many uploads as it can; retry shortly")
        self._in_use[caller] += 1
        try:
            yield
        finally:
            self._in_use[caller] -= 1
            if not self._in_use[caller]:
                del self._in_use[caller]
