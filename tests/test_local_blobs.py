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
