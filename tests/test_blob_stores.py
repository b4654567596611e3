"""Every blob store against the BlobStore protocol (``core/ports.py``): one set of tests,
run on the in-memory store (the reference), the local disk (a tmp dir) and S3 (the
session's SeaweedFS, under a prefix of its own). They check what a user of the protocol
sees, bytes, digests and exceptions, so a new backend is held to the same answers; what
one store does on its own medium (files, fsync, crashes) is tested beside it.

``-k memory`` runs only the in-memory ones, in milliseconds.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from stowage.blobs.local import LocalBlobStore
from stowage.blobs.memory import MemoryBlobStore
from stowage.blobs.s3 import S3BlobStore
from stowage.core.errors import Invalid, TooLarge
from stowage.core.ids import new_blob_key
from stowage.core.models import BlobWritten
from stowage.core.ports import BlobParts, BlobStore, JoiningBlobStore
from stowage.core.sniff import SNIFF_LEN
from stowage.seaweed import SeaweedFS

from .aio import Endless, chunks, run
from .backends import BUCKET

MiB = 1024 * 1024
BIG = 3 * MiB + 7  # past the local store's 1 MiB batches: its two-thread path


def make_store(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> MemoryBlobStore | LocalBlobStore | S3BlobStore:
    if kind == "memory":
        return MemoryBlobStore()
    if kind == "local":
        return LocalBlobStore(tmp_path / "blobs")
    seaweed: SeaweedFS = request.getfixturevalue("seaweed")
    return S3BlobStore(
        BUCKET,
        seaweed.endpoint,
        "us-east-1",
        seaweed.access_key,
        seaweed.secret_key,
        path_style=True,
        prefix=f"conformance-{uuid.uuid4().hex[:12]}",  # an empty store of its own
    )


@pytest.fixture(params=["memory", "local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BlobStore]:
    made = make_store(request.param, request, tmp_path)
    try:
        yield made
    finally:
        made.close()


def written_for(data: bytes) -> BlobWritten:
    """What a store must report for ``data``: the figures clients verify downloads with."""
    md5, sha256 = hashlib.md5(data).hexdigest(), hashlib.sha256(data).hexdigest()
    return BlobWritten(len(data), md5, sha256, data[:SNIFF_LEN])


async def read_all(store: BlobStore, key: str, start: int, length: int) -> bytes:
    return b"".join([part async for part in await store.read(key, start, length)])


def put(store: BlobStore, key: str, data: bytes) -> BlobWritten:
    return run(store.put(key, chunks(data, 65536), None))


def put_key(store: BlobStore, key: str, data: bytes) -> str:
    put(store, key, data)
    return key


def assert_absent(store: BlobStore, key: str) -> None:
    """Nothing under ``key``: not listed, and reading it fails as for a key never written."""
    assert key not in run(store.inventory())
    with pytest.raises(FileNotFoundError):
        run(store.read_bytes(key, 0, 1))


def test_put_reports_size_digests_and_head_and_the_bytes_read_back(store: BlobStore) -> None:
    data, key = os.urandom(BIG), new_blob_key()
    assert put(store, key, data) == written_for(data)
    assert run(read_all(store, key, 0, len(data))) == data
    assert run(store.read_bytes(key, 0, len(data))) == data


@pytest.mark.parametrize("size", [100, BIG], ids=["small", "big"])
def test_a_put_whose_content_is_stored_already_keeps_nothing(store: BlobStore, size: int) -> None:
    """Every byte is hashed, then, when ``known`` names a blob with that content, dropped:
    nothing under the key, not even a temporary file, and ``shared`` names the other."""
    data, stored, key = os.urandom(size), new_blob_key(), new_blob_key()
    put(store, stored, data)
    asked: list[tuple[int, str]] = []

    async def known(size: int, sha256: str) -> str | None:
        asked.append((size, sha256))
        return stored

    written = run(store.put(key, chunks(data, 65536), None, known))
    assert written == dataclasses.replace(written_for(data), shared=stored)
    assert asked == [(len(data), hashlib.sha256(data).hexdigest())]
    assert_absent(store, key)
    assert set(run(store.inventory())) == {stored}
    if isinstance(store, LocalBlobStore):
        assert [p.name for p in store.root.rglob("*") if p.is_file()] == [stored]
    parts = getattr(store, "parts", None)
    if parts is not None:  # the store's own upload of a big body was aborted
        assert run(parts.in_progress()) == {}


@pytest.mark.parametrize(
    ("start", "length"),
    [(0, 1), (1000, 2 * MiB), (BIG - 10, 10), (BIG - 10, 100), (7, 0)],
    ids=["first-byte", "middle", "last-bytes", "past-the-end", "nothing"],
)
def test_a_range_reads_those_bytes_cut_at_the_end(
    store: BlobStore, start: int, length: int
) -> None:
    data, key = os.urandom(BIG), new_blob_key()
    put(store, key, data)
    assert run(read_all(store, key, start, length)) == data[start : start + length]
    assert run(store.read_bytes(key, start, length)) == data[start : start + length]


def test_an_empty_blob_is_stored_listed_and_read(store: BlobStore) -> None:
    key = new_blob_key()
    assert put(store, key, b"") == written_for(b"")
    assert key in run(store.inventory())
    assert run(store.read_bytes(key, 0, 0)) == b""
    assert run(read_all(store, key, 0, 0)) == b""


def test_inventory_lists_each_blob_with_its_modification_time(store: BlobStore) -> None:
    assert run(store.inventory()) == {}
    before = time.time()
    keys = {new_blob_key() for _ in range(3)}
    for key in keys:
        put(store, key, key.encode())
    listed = run(store.inventory())
    assert set(listed) == keys
    # S3 keeps whole seconds, and its clock is the server's: a little slack either way.
    assert all(before - 2 <= mtime <= time.time() + 2 for mtime in listed.values())


def test_delete_removes_the_blob_and_may_be_repeated(store: BlobStore) -> None:
    kept, gone = new_blob_key(), new_blob_key()
    put(store, kept, b"kept")
    put(store, gone, b"gone")
    run(store.delete(gone))
    run(store.delete(gone))  # deleting twice is fine
    run(store.delete(new_blob_key()))  # and so is a key never written
    assert_absent(store, gone)
    assert run(store.read_bytes(kept, 0, 4)) == b"kept"


def test_a_missing_blob_fails_when_opened_not_midway(store: BlobStore) -> None:
    """``read`` raises before returning its stream, so an HTTP response never starts."""
    with pytest.raises(FileNotFoundError):
        run(store.read(new_blob_key(), 0, 10))
    with pytest.raises(FileNotFoundError):
        run(store.read_bytes(new_blob_key(), 0, 10))


def test_a_second_put_replaces_the_blob(store: BlobStore) -> None:
    key, first, second = new_blob_key(), os.urandom(5000), os.urandom(300)
    put(store, key, first)
    assert put(store, key, second) == written_for(second)
    assert run(store.read_bytes(key, 0, 5000)) == second
    assert list(run(store.inventory())) == [key]


def test_a_limit_stops_reading_early_and_keeps_nothing(store: BlobStore) -> None:
    body, key = Endless(), new_blob_key()
    with pytest.raises(TooLarge):
        run(store.put(key, body.stream(), MiB))
    assert body.consumed <= MiB + body.chunk
    assert_absent(store, key)


def test_a_body_of_exactly_the_limit_is_kept(store: BlobStore) -> None:
    data, key = os.urandom(MiB), new_blob_key()
    assert run(store.put(key, chunks(data, 65536), MiB)) == written_for(data)


@pytest.mark.parametrize("fail_after", [0, 100_000, 2 * MiB])
def test_a_stream_that_breaks_keeps_nothing(store: BlobStore, fail_after: int) -> None:
    """The client's own error comes out (not a store failure), and no blob is left."""
    key = new_blob_key()
    with pytest.raises(ConnectionResetError):
        run(store.put(key, chunks(os.urandom(BIG), 65536, fail_after), None))
    assert_absent(store, key)


def test_a_failed_put_leaves_the_blob_already_there(store: BlobStore) -> None:
    key, data = new_blob_key(), os.urandom(5000)
    put(store, key, data)
    with pytest.raises(ConnectionResetError):
        run(store.put(key, chunks(os.urandom(BIG), 65536, 100_000), None))
    with pytest.raises(TooLarge):
        run(store.put(key, Endless().stream(), MiB))
    assert run(store.read_bytes(key, 0, len(data))) == data


def test_blobs_written_together_each_land_whole(store: BlobStore) -> None:
    bodies = {new_blob_key(): os.urandom(n) for n in (0, 1, 4096, 65536, MiB + 1) * 4}

    async def together() -> list[BlobWritten]:
        return await asyncio.gather(
            *(store.put(key, chunks(body, 1500), None) for key, body in bodies.items())
        )

    assert run(together()) == [written_for(body) for body in bodies.values()]
    for key, body in bodies.items():
        assert run(store.read_bytes(key, 0, len(body))) == body


def test_a_usable_store_answers_ping(store: BlobStore) -> None:
    assert run(store.ping()) is None


def test_digest_reads_a_stored_blob_for_what_its_write_reported(store: BlobStore) -> None:
    data = os.urandom(BIG)
    assert run(store.digest(put_key(store, new_blob_key(), data))) == written_for(data)
    with pytest.raises(FileNotFoundError):
        run(store.digest(new_blob_key()))


@pytest.fixture(params=["memory", "local"])
def joining(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[JoiningBlobStore]:
    """The stores that join blobs without copying them (``ports.JoiningBlobStore``)."""
    made = make_store(request.param, request, tmp_path)
    assert isinstance(made, JoiningBlobStore)
    try:
        yield made
    finally:
        made.close()


def test_a_joined_blob_reads_as_its_parts_end_to_end_and_outlives_them(
    joining: JoiningBlobStore,
) -> None:
    pieces = [os.urandom(n) for n in (BIG, 0, 1000, MiB)]
    keys = [put_key(joining, new_blob_key(), piece) for piece in pieces]
    whole, key = b"".join(pieces), new_blob_key()
    assert run(joining.join(key, keys)) == len(whole)
    for key_of_part in keys:  # the parts' keys go; the joined blob keeps their bytes
        run(joining.delete(key_of_part))
    assert run(read_all(joining, key, 0, len(whole))) == whole
    for start, length in ((0, 10), (BIG - 5, 10), (BIG + 500, 1000), (len(whole) - 3, 10)):
        expected = whole[start : start + length]
        assert run(read_all(joining, key, start, length)) == expected
        assert run(joining.read_bytes(key, start, length)) == expected
    assert run(joining.digest(key)) == written_for(whole)
    assert key in run(joining.inventory())
    run(joining.delete(key))
    assert key not in run(joining.inventory())
    with pytest.raises(FileNotFoundError):
        run(joining.read(key, 0, 1))


def test_a_join_of_a_missing_part_leaves_nothing(joining: JoiningBlobStore) -> None:
    there = put_key(joining, new_blob_key(), b"there")
    key = new_blob_key()
    with pytest.raises(FileNotFoundError):
        run(joining.join(key, [there, new_blob_key()]))
    assert set(run(joining.inventory())) == {there}


@pytest.fixture
def s3(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[S3BlobStore]:
    """The S3 store, whose own multipart uploads (``ports.BlobParts``) are tested here."""
    made = make_store("s3", request, tmp_path)
    assert isinstance(made, S3BlobStore) and made.parts is not None  # the store has keys
    try:
        yield made
    finally:
        made.close()


def test_own_parts_complete_into_one_blob_of_the_parts_chosen(s3: S3BlobStore) -> None:
    parts: BlobParts | None = s3.parts
    assert parts is not None
    key = new_blob_key()
    first, second, unused = os.urandom(5 * MiB), os.urandom(1000), os.urandom(10)
    upload_id = run(parts.start(key))

    def put_part(number: int, data: bytes) -> str:
        return run(parts.put(key, upload_id, number, chunks(data, 65536), len(data)))

    put_part(1, os.urandom(5 * MiB))  # sent again below: the last one counts
    assert [put_part(n, d) for n, d in ((2, second), (1, first), (3, unused))] == [
        hashlib.md5(d).hexdigest() for d in (second, first, unused)
    ]
    listed = run(parts.in_progress())
    assert listed[upload_id][0] == key
    chosen = [(1, hashlib.md5(first).hexdigest()), (2, hashlib.md5(second).hexdigest())]
    assert run(parts.complete(key, upload_id, chosen)) == len(first + second)
    assert run(parts.complete(key, upload_id, chosen)) == len(first + second)
    assert upload_id not in run(parts.in_progress())
    assert run(s3.digest(key)) == written_for(first + second)


def test_own_parts_refuse_what_is_not_there_and_keep_nothing_aborted(s3: S3BlobStore) -> None:
    parts: BlobParts | None = s3.parts
    assert parts is not None
    key, data = new_blob_key(), os.urandom(1000)
    upload_id = run(parts.start(key))
    with pytest.raises(ConnectionResetError):  # the client's own error comes out
        run(parts.put(key, upload_id, 1, chunks(os.urandom(BIG), 65536, 100_000), BIG))
    with pytest.raises(TooLarge):
        run(parts.put(key, upload_id, 1, chunks(data, 100), 999))
    with pytest.raises(Invalid):
        run(parts.put(key, upload_id, 1, chunks(data, 100), 1001))
    run(parts.put(key, upload_id, 1, chunks(data, 100), 1000))
    with pytest.raises(Invalid):  # not that part's md5
        run(parts.complete(key, upload_id, [(1, hashlib.md5(b"other").hexdigest())]))
    run(parts.abort(key, upload_id))
    run(parts.abort(key, upload_id))  # aborting twice is fine
    assert upload_id not in run(parts.in_progress())
    with pytest.raises(FileNotFoundError):
        run(parts.put(key, upload_id, 2, chunks(data, 100), 1000))
