"""What the local blob store does on disk, beyond the protocol (``test_blob_stores.py``):
one private file per blob at its key's path, no temporary file left by a failed write,
small blobs published in batches, and keys that group a batch in one directory."""

from __future__ import annotations

import asyncio
import hashlib
import os
from pathlib import Path

import pytest

from stowage.blobs.local import LocalBlobStore
from stowage.core.errors import TooLarge
from stowage.core.ids import BLOB_DIRECTORY_SECONDS, new_blob_key

from .aio import Endless, chunks, run


def files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


@pytest.mark.parametrize("size", [10, 5 * 1024 * 1024 + 7], ids=["batched", "two-threads"])
def test_a_blob_is_one_private_file_at_its_path(tmp_path: Path, size: int) -> None:
    store = LocalBlobStore(tmp_path)
    key = new_blob_key()
    run(store.put(key, chunks(os.urandom(size), 65536), None))
    store.close()
    assert files(tmp_path) == [store.path(key)]
    assert oct(store.path(key).stat().st_mode & 0o777) == "0o600"


@pytest.mark.parametrize("fail_after", [0, 100_000, 3 * 1024 * 1024, None])
def test_a_failed_write_leaves_no_file(tmp_path: Path, fail_after: int | None) -> None:
    """A broken stream at ``fail_after`` (None: a body over the limit) leaves neither the
    blob nor its temporary file."""
    store = LocalBlobStore(tmp_path)
    if fail_after is None:
        with pytest.raises(TooLarge):
            run(store.put(new_blob_key(), Endless().stream(), 1024 * 1024))
    else:
        body = chunks(os.urandom(4 * 1024 * 1024), 65536, fail_after)
        with pytest.raises(ConnectionResetError):
            run(store.put(new_blob_key(), body, None))
    store.close()
    assert files(tmp_path) == []


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

    run(scenario())
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
