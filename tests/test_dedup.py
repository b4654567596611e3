"""Whole-object deduplication: identical bytes are stored once, whichever dialect uploads
them, on both backends; a twin's delete or expiry never takes the other's bytes; the
collector removes a blob only once nothing has referenced it for the grace; fsck checks
shared blobs once. Time is a ManualClock: no sleeping."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from botocore.client import BaseClient
from sqlalchemy import insert, select

from stowage.core.errors import Unavailable
from stowage.core.fsck import check
from stowage.core.ids import new_blob_key
from stowage.core.models import BlobWritten, ContentType, NewObject
from stowage.meta.migrate import locked_connection
from stowage.meta.schema import blobs, objects, users
from stowage.processes import free_port

from .backends import BACKENDS, backend_settings, database_url, migrate_to
from .harness import ThreadServer, run_thread_server_with

GRACE_S = 60
SCOPES = "object:read,write,delete namespace:read,write,delete"
OCTETS = {"Accept": "application/octet-stream"}


@pytest.fixture(params=BACKENDS)
def server(
    request: pytest.FixtureRequest, tmp_path: Path, pg_base_url: str | None
) -> Iterator[ThreadServer]:
    """A server with its S3 port open and a grace short enough for S3's clock-skew check
    to accept requests signed after the manual clock passed it."""
    with backend_settings(request.param, request, pg_base_url) as extra:
        settings = {**extra, "s3_api_port": str(free_port()), "blob_grace_seconds": str(GRACE_S)}
        yield from run_thread_server_with(tmp_path, settings)


def s3_client(server: ThreadServer) -> BaseClient:
    client: BaseClient = server.s3_client(SCOPES)
    return client


def djinn_put(c: httpx.Client, name: str, data: bytes) -> dict:
    r = c.post("/objects", params={"name": name}, content=data)
    assert r.status_code == 201, r.text
    return r.json()


def runloop_put(c: httpx.Client, name: str, data: bytes, ttl_ms: int | None = None) -> dict:
    created = c.post(
        "/v1/objects", json={"name": name, "content_type": "binary", "ttl_ms": ttl_ms}
    ).json()
    assert httpx.put(created["upload_url"], content=data).status_code == 200
    done = c.post(f"/v1/objects/{created['id']}/complete")
    assert done.status_code == 200, done.text
    return done.json()


def blob_of(server: ThreadServer, ref: str | int) -> str:
    found = server.run(server.stowage.meta.get_object(ref))
    assert found is not None and found.blob_key is not None
    return str(found.blob_key)


def djinn_bytes(c: httpx.Client, object_id: int) -> bytes:
    got = c.get(f"/objects/{object_id}", headers=OCTETS)
    assert got.status_code == 200, got.text
    return got.content


def test_identical_uploads_through_every_dialect_share_one_blob_but_assembled_ones(
    server: ThreadServer,
) -> None:
    data = os.urandom(300_000)
    s3 = s3_client(server)
    s3.create_bucket(Bucket="twins")
    with server.client() as c:
        first = djinn_put(c, "first.bin", data)
        stored = server.stored_blobs()
        second = djinn_put(c, "second.bin", data)
        runloop = runloop_put(c, "third.bin", data)
        s3.put_object(Bucket="twins", Key="fourth.bin", Body=data)
        s3.copy_object(Bucket="twins", Key="fifth.bin", CopySource="twins/fourth.bin")
        started = s3.create_multipart_upload(Bucket="twins", Key="sixth.bin")["UploadId"]
        upload = {"Bucket": "twins", "Key": "sixth.bin", "UploadId": started}
        tag = s3.upload_part(**upload, PartNumber=1, Body=data)["ETag"]
        parts = {"Parts": [{"PartNumber": 1, "ETag": tag}]}
        s3.complete_multipart_upload(**upload, MultipartUpload=parts)
        bucket = server.run(server.stowage.meta.roots_named("twins", 1))[0]
        named = [
            server.run(server.stowage.meta.get_named(bucket.id, n))
            for n in ("fourth.bin", "fifth.bin", "sixth.bin")
        ]
        keys = {blob_of(server, first["id"]), blob_of(server, second["id"])}
        keys |= {blob_of(server, runloop["id"]), *(o.blob_key for o in named[:2])}
        assert len(keys) == 1
        # An object completed from parts has its sha256 only after Complete (digests.py):
        # its blob is its own.
        assembled = named[2]
        assert assembled is not None and assembled.blob_key not in keys
        server.collect_blobs()  # the copies that lost to the stored one leave nothing behind
        assert server.stored_blobs() == stored | {assembled.blob_key}
        assert djinn_bytes(c, second["id"]) == data
        assert s3.get_object(Bucket="twins", Key="sixth.bin")["Body"].read() == data
        sha = hashlib.sha256(data).hexdigest()
        assert {first["sha256"], second["sha256"]} == {sha}


def test_twins_uploaded_at_once_end_up_sharing_one_blob(server: ThreadServer) -> None:
    """None finds the others' blob stored yet, so each stores its own copy; the first to
    commit gives the content its blob, and the others take it and delete their copies."""
    data = os.urandom(200_000)
    with server.client() as c, ThreadPoolExecutor(8) as pool:
        made = list(pool.map(lambda i: djinn_put(c, f"at-once-{i}.bin", data), range(8)))
    assert len({blob_of(server, m["id"]) for m in made}) == 1
    assert len(server.stored_blobs()) == 1
    with server.client() as c:
        assert all(djinn_bytes(c, m["id"]) == data for m in made)


def test_deleting_one_twin_leaves_the_other_and_the_last_frees_the_bytes(
    server: ThreadServer,
) -> None:
    data = os.urandom(5000)
    with server.client() as c:
        one, two = djinn_put(c, "one.bin", data), djinn_put(c, "two.bin", data)
        key = blob_of(server, one["id"])
        assert c.delete(f"/objects/{one['id']}").status_code == 204
        assert server.collect_blobs() == 0
        assert key in server.stored_blobs()
        assert djinn_bytes(c, two["id"]) == data

        assert c.delete(f"/objects/{two['id']}").status_code == 204
        server.clock.advance(GRACE_S * 1000 - 1)  # an upload that found it may yet commit
        assert server.run(server.stowage.objects.collect_blobs()) == 0
        assert key in server.stored_blobs()
        assert server.collect_blobs() == 1
        assert key not in server.stored_blobs()
        again = djinn_put(c, "three.bin", data)  # stored anew, under a key of its own
        assert blob_of(server, again["id"]) != key
        assert djinn_bytes(c, again["id"]) == data


def test_the_expiry_of_one_twin_never_removes_the_others_bytes(server: ThreadServer) -> None:
    data = os.urandom(70_000)
    with server.client() as c:
        short = runloop_put(c, "short.bin", data, ttl_ms=1000)
        kept = djinn_put(c, "kept.bin", data)
        server.clock.advance(1000)
        assert server.run(server.stowage.reaper.run_once()) == 1
        assert server.collect_blobs() == 0
        assert c.get(f"/v1/objects/{short['id']}").status_code == 404
        assert djinn_bytes(c, kept["id"]) == data


def test_an_s3_key_put_again_with_the_same_bytes_keeps_its_blob(server: ThreadServer) -> None:
    s3 = s3_client(server)
    s3.create_bucket(Bucket="again")
    data = os.urandom(9 * 1024 * 1024)  # past one part: S3 gets a multipart upload, aborted
    for _ in range(3):
        s3.put_object(Bucket="again", Key="cache.tgz", Body=data)
    assert server.collect_blobs() == 0
    assert len(server.stored_blobs()) == 1
    assert s3.get_object(Bucket="again", Key="cache.tgz")["Body"].read() == data
    parts = getattr(server.stowage.blobs, "parts", None)
    if parts is not None:  # the dropped copies left no upload behind in the store
        assert server.run(parts.in_progress()) == {}


def new_object(server: ThreadServer, name: str) -> NewObject:
    now = server.clock.now_ms()
    return NewObject(
        public_id=f"obj_{new_blob_key()}",
        owner_id=1,
        author_id=1,
        name=name,
        content_type=ContentType.BINARY,
        metadata=None,
        create_time_ms=now,
        delete_after_time_ms=None,
    )


def test_a_hit_on_a_blob_whose_last_reference_goes_meanwhile_still_holds_it(
    server: ThreadServer,
) -> None:
    """The race: an upload finds blob X, X's last object is deleted, then the upload
    commits. Within half the grace the upload holds X and the collector keeps it; a blob
    released longer ago is not offered, and one collected before the commit fails the
    upload (503, retry) rather than leave a row without bytes."""
    meta, data = server.stowage.meta, os.urandom(1000)
    written = BlobWritten(
        len(data), hashlib.md5(data).hexdigest(), hashlib.sha256(data).hexdigest(), b""
    )
    with server.client() as c:
        first = djinn_put(c, "first.bin", data)
        key = blob_of(server, first["id"])
        found = server.run(meta.find_blob(written.size, written.sha256, server.clock.now_ms()))
        assert found == key
        assert c.delete(f"/objects/{first['id']}").status_code == 204
        server.clock.advance(GRACE_S * 1000 // 2 - 1)
        hit = BlobWritten(written.size, written.md5, written.sha256, b"", shared=found)
        late = server.run(meta.insert_stored_object(new_object(server, "late"), key, hit, "x"))
        assert late.blob_key == key
        assert server.collect_blobs() == 0
        assert djinn_bytes(c, late.id) == data

        assert c.delete(f"/objects/{late.id}").status_code == 204
        server.clock.advance(GRACE_S * 1000 // 2 + 1)
        fresh_after = server.clock.now_ms() - GRACE_S * 1000 // 2
        assert server.run(meta.find_blob(written.size, written.sha256, fresh_after)) is None
        assert server.collect_blobs() == 1
        with pytest.raises(Unavailable):
            server.run(meta.insert_stored_object(new_object(server, "too late"), key, hit, "x"))
        assert key not in server.stored_blobs()


async def body(data: bytes) -> AsyncIterator[bytes]:
    yield data


def test_fsck_verifies_shared_blobs_once_and_releases_rows_nothing_references(
    server: ThreadServer,
) -> None:
    s = server.stowage
    twin, rotten = b"twin bytes" * 2000, b"rotten bytes" * 2000  # past inline: in the store
    with server.client() as c:
        a, b = djinn_put(c, "a.bin", twin), djinn_put(c, "b.bin", twin)
        other = djinn_put(c, "c.bin", b"other bytes")
    server.clock.advance(10_000)
    report = server.run(check(s.meta, s.blobs, s.clock, verify=True, grace_s=0))
    assert report.clean and report.verified == 2, report

    shared = blob_of(server, a["id"])
    server.run(s.blobs.put(shared, body(rotten), None))
    report = server.run(check(s.meta, s.blobs, s.clock, verify=True, grace_s=0))
    assert sorted(report.corrupt) == sorted([a["object_id"], b["object_id"]])
    assert report.verified == 2
    server.run(s.blobs.put(shared, body(twin), None))

    # Objects that went without a delete (as a removed user's go, by cascade) leave their
    # blob's row unreleased: fsck finds it and --fix hands it to the collector.
    lonely = blob_of(server, other["id"])
    drop = objects.delete().where(objects.c.id == other["id"])
    with s.meta._writer.begin() as conn:  # type: ignore[attr-defined]
        conn.execute(drop)
    report = server.run(check(s.meta, s.blobs, s.clock, grace_s=0))
    assert report.unreferenced == [lonely] and not report.clean
    fixed = server.run(check(s.meta, s.blobs, s.clock, fix=True, grace_s=0))
    assert fixed.released == [lonely]
    assert server.collect_blobs() == 1
    assert lonely not in server.stored_blobs()
    assert server.run(check(s.meta, s.blobs, s.clock, verify=True, grace_s=0)).clean


def test_usage_shows_logical_stored_and_saved_bytes(server: ThreadServer) -> None:
    data = os.urandom(10_000)
    with server.client() as c:
        for name in ("x.bin", "y.bin", "z.bin"):
            djinn_put(c, name, data)
        djinn_put(c, "lone.bin", b"1234")
        metrics = c.get("/metrics").text
    figures = dict(re.findall(r"(?m)^(stowage_\w+) (\S+)$", metrics))
    assert float(figures["stowage_stored_bytes"]) == 30_004
    assert float(figures["stowage_blob_bytes"]) == 10_004
    assert float(figures["stowage_dedup_saved_bytes"]) == 20_000
    stats = server.cli("blobs", "stats")
    assert stats.returncode == 0, stats.stderr
    assert re.search(r"objects \(logical\)\s*│\s*4\s*│\s*30004", stats.stdout), stats.stdout
    assert re.search(r"blobs \(stored\)\s*│\s*2\s*│\s*10004", stats.stdout), stats.stdout
    assert re.search(r"saved by deduplication\s*│\s*│\s*20000", stats.stdout), stats.stdout
    usage = server.cli("usage", "--bytes")
    assert usage.returncode == 0, usage.stderr
    expected = "store: 30004 logical in 4 objects, 10004 stored in 2 blobs, 20000 saved"
    assert expected in usage.stdout, usage.stdout


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_the_migration_gives_existing_blobs_rows_and_points_old_twins_at_one(
    backend: str, tmp_path: Path, pg_base_url: str | None
) -> None:
    """Objects stored before deduplication: each blob gets its row; objects that held the
    same bytes under two keys now share one (the other copy is left to fsck --fix)."""
    with database_url(backend, pg_base_url) as url:
        url = url or f"sqlite:///{tmp_path / 'stowage.db'}"
        with locked_connection(url) as connection:
            migrate_to(connection, "0012")
            connection.execute(
                insert(users).values(id=1, name="old", is_admin=False, created_at_ms=1)
            )
            row = {"owner_id": 1, "author_id": 1, "content_type": "binary", "create_time_ms": 1}
            stored = [("a", "k2", "s" * 64, 3), ("b", "k1", "s" * 64, 3), ("c", "k3", "t" * 64, 5)]
            for name, key, sha, size in stored:
                connection.execute(
                    insert(objects).values(
                        public_id=f"obj_{name}",
                        name=name,
                        state="READ_ONLY",
                        blob_key=key,
                        sha256=sha,
                        size=size,
                        **row,
                    )
                )
            connection.execute(
                insert(objects).values(public_id="obj_d", name="d", state="UPLOADING", **row)
            )
            connection.commit()
            migrate_to(connection, "head")
            found = connection.execute(select(blobs.c.key, blobs.c.size, blobs.c.released_ms))
            assert sorted(found) == [("k1", 3, None), ("k3", 5, None)]
            held = connection.execute(select(objects.c.name, objects.c.blob_key))
            assert sorted(held) == [("a", "k1"), ("b", "k1"), ("c", "k3"), ("d", None)]
