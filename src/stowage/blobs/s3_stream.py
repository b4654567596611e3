"""What the S3 blob store's writes share, whole blobs (``s3.py``) and parts of its own
multipart uploads (``s3_parts.py``) alike: hashing the stream in batches on worker threads,
telling a failure of the incoming stream from one of S3, and wording the latter."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import Executor
from contextlib import contextmanager

from ..core.errors import TooLarge, Unavailable
from .digest import Digest

BATCH_BYTES = 1024 * 1024


async def nothing() -> AsyncIterator[bytes]:
    return
    yield


class Hasher(Digest):
    """A Digest that also remembers a failure of the incoming stream (not of S3)."""

    def __init__(self) -> None:
        super().__init__()
        self.failure: BaseException | None = None  # raised by the incoming stream, not S3

    async def guard(self, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        try:
            async for chunk in chunks:
                yield chunk
        except GeneratorExit:  # closed by the consumer: not a failure of the stream
            raise
        except BaseException as exc:
            self.failure = self.failure or exc
            raise


async def hashed(
    chunks: AsyncIterator[bytes], hasher: Hasher, max_bytes: int | None, pool: Executor
) -> AsyncIterator[bytes]:
    """The stream in batches of at least ``BATCH_BYTES``, each hashed on ``pool`` while the
    consumer sends it on (one batch at a time, so the digests see them in order); TooLarge
    (as the hasher's failure) past ``max_bytes``."""
    batch = bytearray()
    total = 0
    async for chunk in hasher.guard(chunks):
        total += len(chunk)
        if max_bytes is not None and total > max_bytes:
            hasher.failure = TooLarge(f"the upload exceeds the limit of {max_bytes} bytes")
            raise hasher.failure
        batch += chunk
        if len(batch) >= BATCH_BYTES:
            hashing = pool.submit(hasher.update, batch)  # while the batch goes on its way
            yield bytes(batch)
            await asyncio.wrap_future(hashing)
            batch = bytearray()
    if batch or total == 0:
        await asyncio.wrap_future(pool.submit(hasher.update, batch))
        yield bytes(batch)


def outage(exc: Exception) -> Unavailable:
    return Unavailable(f"the blob store is unavailable; retry shortly ({type(exc).__name__})")


@contextmanager
def reachable() -> Iterator[None]:
    """Anything but a missing key is the store failing us: report an outage (503)."""
    try:
        yield
    except FileNotFoundError:
        raise
    except Exception as exc:
        raise outage(exc) from exc
