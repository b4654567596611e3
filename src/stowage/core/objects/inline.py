"""Small blobs kept in the metadata database, in their own ``blobs`` row.

Stored as a file, a small upload costs far more than its bytes: creating the file (on
ext4, hundreds of microseconds of kernel CPU once many files were recently deleted), its
fsync, a rename and an fsync of its directory, on threads the event loop waits for. A
body of at most ``Limits.inline_max_bytes`` is kept in the row of its blob instead,
inserted in the transaction that inserts its object: the commit that makes the row
durable makes the bytes durable with it, and nothing is acknowledged before that commit.
Deduplication is the same as for any blob: the row is the blob's row, and a twin found
when it is inserted is held instead (``meta.blobs._claim``).

The key of such a blob starts with ``INLINE_KEY_PREFIX``: readers know from the key
alone that the bytes are in the database, and there is nothing to delete beyond the row.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator

from ..ids import is_inline_key
from ..models import BlobWritten
from ..ports import BlobStore, MetadataStore
from ..sniff import SNIFF_LEN


async def whole_if_small(
    chunks: AsyncIterator[bytes], limit: int
) -> tuple[bytes | None, AsyncIterator[bytes]]:
    """The whole body when it ends within ``limit`` bytes; else None, and the stream again
    from its first byte (what was read to find out is not read twice)."""
    held: list[bytes] = []
    size = 0
    async for chunk in chunks:
        held.append(chunk)
        size += len(chunk)
        if size > limit:
            return None, _again(held, chunks)
    return b"".join(held), chunks


async def _again(held: list[bytes], rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    for chunk in held:
        yield chunk
    async for chunk in rest:
        yield chunk


def inline_written(data: bytes) -> BlobWritten:
    md5 = hashlib.md5(data, usedforsecurity=False).hexdigest()
    sha256 = hashlib.sha256(data).hexdigest()
    return BlobWritten(len(data), md5, sha256, data[:SNIFF_LEN], inline=data)


def inline_range(data: bytes | None, start: int, length: int) -> bytes:
    """``length`` bytes from ``start`` of a blob's row's bytes; FileNotFoundError without
    any, as for a blob store's missing file."""
    if data is None:
        raise FileNotFoundError("the inline blob has no row")
    return data[start : start + length]


async def read_blob(
    meta: MetadataStore, blobs: BlobStore, key: str, start: int, length: int
) -> AsyncIterator[bytes]:
    """``length`` bytes of the blob ``key`` from ``start``, as ``BlobStore.read`` opens
    them, wherever they are: an inline blob's from its row, others' from the store."""
    if is_inline_key(key):
        return _once(inline_range(await meta.inline_data(key), start, length))
    return await blobs.read(key, start, length)


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data
