"""Concurrent-upload slots: one caller cannot occupy every upload this server can take.

Counted per process (each replica enforces its own share); a caller over its share, or a
server at capacity, gets TooBusy (429 with Retry-After) at once instead of queueing.
The caller is a token: the one presented, or for a presigned PUT the one that created the
object (else one token could take every slot through many upload URLs).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from .errors import TooBusy
from .models import StoredObject


def token_caller(token_id: int) -> str:
    return f"token:{token_id}"


def creator_caller(obj: StoredObject) -> str:
    """Whose slots a presigned PUT takes: the creating token's (its user's, for objects
    made before tokens were recorded)."""
    if obj.creator_token_id is None:
        return f"user:{obj.author_id}"
    return token_caller(obj.creator_token_id)


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
        """Occupy a slot for ``caller`` (``token_caller``, ``creator_caller``) meanwhile."""
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
