"""The local blob store's write path: hashes, atomic publish, nothing left on failure."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from stowage.blobs.local import LocalBlobStore
from stowage.core.errors import TooLarge
from stowage.core.ids import BLOB_DIRECTORY_SECONDS, new_blob_key


async def chunks(data: bytes, size: int, fail_after: int | None = None) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        if fail_after is not None and i >= fail_after:
            raise ConnectionResetError("client went away")
        yield data[i : i + size]
        await asyncio.sleep(0)


def files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def test_put_read_delete(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    data = os.urandom(5 * 1024 * 1024 + 7)

    async def scenario() -> None:
        written = await store.put("ab" + "0" * 30, chunks(data, 65536), None)
        assert written.size == len(data)
        assert written.md5 == hashlib.md5(data).hexdigest()
        assert written.sha256 == hashlib.sha256(data).hexdigest()
        assert files(tmp_path) == [store.path("ab" + "0" * 30)]
        assert oct(store.path("ab" + "0" * 30).stat().st_mode & 0o777) == "0o600"
        parts = [p async for p in await store.read("ab" + "0" * 30, 1000, 2 * 1024 * 1024)]
        assert b"".join(parts) == data[1000 : 1000 + 2 * 1024 * 1024]
        assert "ab" + "0" * 30 in await store.inventory()
        await store.delete("ab" + "0" * 30)
        await store.delete("ab" + "0" * 30)  # deleting twice is fine
        assert "ab" + "0" * 30 not in await store.inventory()

    asyncio.run(scenario())
    store.close()


@pytest.mark.parametrize("fail_after", [0, 100_000, 3 * 1024 * 1024])
def test_a_stream_that_breaks_leaves_nothing(tmp_path: Path, fail_after: int) -> None:
    store = LocalBlobStore(tmp_path)
    data = os.urandom(4 * 1024 * 1024)
    with pytest.raises(ConnectionResetError):
        asyncio.run(store.put("cd" + "1" * 30, chunks(data, 65536, fail_after), None))
    assert files(tmp_path) == []
    store.close()


def test_limit_stops_reading_early(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    consumed = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal consumed
        while True:
            consumed += 65536
            yield b"z" * 65536

    with pytest.raises(TooLarge):
        asyncio.run(store.put("ef" + "2" * 30, endless(), 1024 * 1024))
    assert consumed <= 1024 * 1024 + 65536
    assert files(tmp_path) == []
    store.close()


def test_small_blobs_written_together_are_all_published(tmp_path: Path) -> None:
    """Small bodies take the batched path (the event loop writes, one thread makes a batch
    durable): each lands whole under its own key, readable, with nothing temporary left."""
    store = LocalBlobStore(tmp_path)
    bodies = {new_blob_key(): os.urandom(n) for n in (0, 1, 4096, 65536, 1024 * 1024 - 1) * 20}

    async def scenario() -> None:
        written = await asyncio.gather(
            *(store.put(key, chunks(body, 1500), None) for key, body in bodies.items())
        )
        for (key, body), blob in zip(bodies.items(), written, strict=True):
            assert blob.size == len(body)
            assert blob.sha256 == hashlib.sha256(body).hexdigest()
            assert await store.read_bytes(key, 0, len(body)) == body

    asyncio.run(scenario())
    store.close()
    assert files(tmp_path) == sorted(store.path(key) for key in bodies)


def test_blobs_written_together_share_a_directory() -> None:
    """The key's first two digits (its directory) follow the clock, so one fsync of that
    directory covers a batch; over 256 periods every directory gets its turn."""
    start = 1_800_000_000.0
    same = {new_blob_key(start + i * 0.01)[:2] for i in range(100)}
    assert len(same) == 1
    later = {new_blob_key(start + i * BLOB_DIRECTORY_SECONDS)[:2] for i in range(256)}
    assert len(later) == 256
    keys = {new_blob_key(start) for _ in range(1000)}
    assert len(keys) == 1000 and all(len(k) == 32 for k in keys)
