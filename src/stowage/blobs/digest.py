"""What every blob write computes on the way: md5, sha256, size, and the first bytes."""

from __future__ import annotations

import dataclasses
import hashlib

from ..core.models import BlobWritten
from ..core.ports import KnownBlob
from ..core.sniff import SNIFF_LEN


async def stored_twin(known: KnownBlob | None, written: BlobWritten) -> BlobWritten | None:
    """``written`` as a copy of a stored blob (``shared``), when ``known`` names one with
    the same size and sha256; None when the bytes are to be kept."""
    if known is None or written.sha256 is None:
        return None
    found = await known(written.size, written.sha256)
    return None if found is None else dataclasses.replace(written, shared=found)


class Digest:
    def __init__(self) -> None:
        self.md5 = hashlib.md5(usedforsecurity=False)
        self.sha256 = hashlib.sha256()
        self.size = 0
        self.head = b""

    def update(self, data: bytes | bytearray) -> None:
        self.md5.update(data)
        self.update_but_md5(data)

    def update_but_md5(self, data: bytes | bytearray) -> None:
        """All but the md5, which another thread may compute meanwhile (``md5.update``):
        each digest holds one core at a few hundred MiB/s, and both are needed."""
        if len(self.head) < SNIFF_LEN:
            self.head += bytes(data[: SNIFF_LEN - len(self.head)])
        self.sha256.update(data)
        self.size += len(data)

    def result(self) -> BlobWritten:
        return BlobWritten(self.size, self.md5.hexdigest(), self.sha256.hexdigest(), self.head)
