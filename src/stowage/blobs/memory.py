"""Blobs in a dict of this process: the BlobStore protocol with nothing in the way.

It is the reference of the protocol (``tests/test_blob_stores.py`` holds the local and S3
stores to what it does) and the store of the fast core tests, which need real bytes and
digests but no disk, threads or network. Nothing survives the process, so no deployment
uses it.

A blob is kept only once its stream has ended within ``max_bytes``, so a failed or
oversized write leaves nothing behind, as the protocol asks; a write to a key that exists
replaces its blob, as on local disk (rename) and S3 (PUT).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence

from ..core.errors import TooLarge
from ..core.models import BlobWritten
from ..core.ports import KnownBlob
from .digest import Digest, stored_twin

READ_BYTES = 1024 * 1024


class MemoryBlobStore:
    def __init__(self) -> None:
        self._blobs: dict[str, tuple[bytes, float]] = {}  # key → (bytes, mtime)

    def close(self) -> None:
        """Nothing to release: no files, threads or connections."""

    async def put(
        self,
        key: str,
        chunks: AsyncIterator[bytes],
        max_bytes: int | None,
        known: KnownBlob | None = None,
    ) -> BlobWritten:
        digest = Digest()
        body = bytearray()
        async for chunk in chunks:
            if max_bytes is not None and len(body) + len(chunk) > max_bytes:
                raise TooLarge(f"the upload exceeds the limit of {max_bytes} bytes")
            digest.update(chunk)
            body += chunk
        written = digest.result()
        twin = await stored_twin(known, written)
        if twin is not None:
            return twin
        self._blobs[key] = (bytes(body), time.time())
        return written

    def _blob(self, key: str) -> bytes:
        """The blob's bytes; FileNotFoundError when there is none, as the other stores raise."""
        try:
            return self._blobs[key][0]
        except KeyError:
            raise FileNotFoundError(key) from None

    async def read(self, key: str, start: int, length: int) -> AsyncIterator[bytes]:
        """Look the blob up now (a missing one fails before a response starts), then stream."""
        data = memoryview(self._blob(key))[start : start + length]

        async def stream() -> AsyncIterator[bytes]:
            for offset in range(0, len(data), READ_BYTES):
                yield bytes(data[offset : offset + READ_BYTES])

        return stream()

    async def read_bytes(self, key: str, start: int, length: int) -> bytes:
        return self._blob(key)[start : start + length]

    async def digest(self, key: str) -> BlobWritten:
        digest = Digest()
        digest.update(self._blob(key))
        return digest.result()

    async def join(self, key: str, parts: Sequence[str]) -> int:
        """The parts end to end under ``key``, as ``LocalBlobStore.join``."""
        body = b"".join(self._blob(part) for part in parts)
        self._blobs[key] = (body, time.time())
        return len(body)

    async def delete(self, key: str) -> None:
        self._blobs.pop(key, None)

    async def inventory(self) -> dict[str, float]:
        return {key: mtime for key, (_, mtime) in self._blobs.items()}

    async def ping(self) -> None:
        """Always usable: the store is this process's memory."""
