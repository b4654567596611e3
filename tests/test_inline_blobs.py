"""Small objects kept in the database (``core/objects/inline.py``): up to
``STOWAGE_INLINE_MAX_BYTES`` an upload's bytes go into its blob's row, written in the
transaction of its object, and nothing reaches the blob store; past it they go there as
before. Read whole or in ranges through every dialect, shared by twins, removed with
their row, and checked by fsck, on both backends."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import update

from stowage.core.fsck import check
from stowage.core.ids import is_inline_key
from stowage.meta.migrate import locked_connection
from stowage.meta.schema import blobs
from stowage.processes import free_port

from .backends import BACKENDS, backend_settings
from .harness import ThreadServer, run_thread_server_with

LIMIT = 16 * 1024  # the default
GRACE_S = 60
OCTETS = {"Accept": "application/octet-stream"}


@pytest.fixture(params=BACKENDS)
def server(
    request: pytest.FixtureRequest, tmp_path: Path, pg_base_url: str | None
) -> Iterator[ThreadServer]:
    with backend_settings(request.param, request, pg_base_url) as extra:
        settings = {**extra, "s3_api_port": str(free_port()), "blob_grace_seconds": str(GRACE_S)}
        yield from run_thread_server_with(tmp_path, settings)


def upload(c: httpx.Client, name: str, data: bytes) -> dict:
    r = c.post("/objects", params={"name": name}, content=data)
    assert r.status_code == 201, r.text
    return r.json()


def blob_key(server: ThreadServer, object_id: int) -> str:
    found = server.run(server.stowage.meta.get_object(object_id))
    assert found is not None and found.blob_key is not None
    return found.blob_key


def in_store(server: ThreadServer) -> set[str]:
    return set(server.run(server.stowage.blobs.inventory()))


def test_small_uploads_live_in_the_database_and_read_back_through_every_dialect(
    server: ThreadServer,
) -> None:
    data = os.urandom(LIMIT)
    s3 = server.s3_client("object:read,write namespace:read,write")
    with server.client() as c:
        made = upload(c, "small.bin", data)
        assert made["sha256"] == hashlib.sha256(data).hexdigest()
        assert made["md5"] == hashlib.md5(data).hexdigest()
        key = blob_key(server, made["id"])
        assert is_inline_key(key)
        assert in_store(server) == set()  # nothing went to the blob store

        assert c.get(f"/objects/{made['id']}", headers=OCTETS).content == data
        ranged = c.get(f"/objects/{made['id']}", headers={**OCTETS, "Range": "bytes=100-199"})
        assert ranged.status_code == 206 and ranged.content == data[100:200]
        link = c.get(f"/v1/objects/{made['object_id']}/download").json()["download_url"]
        assert httpx.get(link).content == data

        if not server.direct:  # on S3, a Runloop upload goes to the bucket (deploy.md)
            made = c.post("/v1/objects", json={"name": "three.txt", "content_type": "text"})
            created = made.json()
            assert httpx.put(created["upload_url"], content=b"a few bytes").status_code == 200
            done = c.post(f"/v1/objects/{created['id']}/complete").json()
            assert is_inline_key(blob_key(server, done["id"]))
            link = c.get(f"/v1/objects/{done['id']}/download").json()["download_url"]
            assert httpx.get(link).content == b"a few bytes"
            assert in_store(server) == set()

    s3.create_bucket(Bucket="tiny")
    s3.put_object(Bucket="tiny", Key="k", Body=b"inline through S3")
    s3.copy_object(Bucket="tiny", Key="copy", CopySource="tiny/k")
    for name in ("k", "copy"):
        assert s3.get_object(Bucket="tiny", Key=name)["Body"].read() == b"inline through S3"
    got = s3.get_object(Bucket="tiny", Key="k", Range="bytes=7-13")
    assert got["Body"].read() == b"through"
    assert in_store(server) == set()


def test_a_body_past_the_limit_goes_to_the_blob_store(server: ThreadServer) -> None:
    data = os.urandom(LIMIT + 1)
    with server.client() as c:
        made = upload(c, "larger.bin", data)
        key = blob_key(server, made["id"])
        assert not is_inline_key(key)
        assert in_store(server) == {key}
        assert c.get(f"/objects/{made['id']}", headers=OCTETS).content == data


def test_twins_share_one_row_and_the_last_delete_frees_it(server: ThreadServer) -> None:
    data = os.urandom(3000)
    with server.client() as c:
        one, two = upload(c, "one.bin", data), upload(c, "two.bin", data)
        key = blob_key(server, one["id"])
        assert blob_key(server, two["id"]) == key
        rows = server.run(server.stowage.meta.blob_rows())
        assert [k for k in rows if is_inline_key(k)] == [key]
        for made in (one, two):
            assert c.delete(f"/objects/{made['id']}").status_code == 204
    assert server.collect_blobs() == 1
    assert key not in server.run(server.stowage.meta.blob_rows())


def test_fsck_checks_inline_blobs_against_their_objects(server: ThreadServer) -> None:
    s = server.stowage
    with server.client() as c:
        made = upload(c, "checked.bin", b"the bytes fsck reads back")
    key = blob_key(server, made["id"])
    server.clock.advance(10_000)
    report = server.run(check(s.meta, s.blobs, s.clock, verify=True, grace_s=0))
    assert report.clean and report.verified == 1 and report.blobs == 1, report

    with locked_connection(s.settings.sqlalchemy_url) as conn:
        conn.execute(update(blobs).where(blobs.c.key == key).values(data=b"rotten"))
        conn.commit()
    report = server.run(check(s.meta, s.blobs, s.clock, verify=True, grace_s=0))
    assert report.corrupt == [made["object_id"]]


def test_inline_off_keeps_every_body_in_the_blob_store(tmp_path: Path) -> None:
    for server in run_thread_server_with(tmp_path, {"inline_max_bytes": "0"}):
        with server.client() as c:
            made = upload(c, "small.bin", b"kept as a file")
            key = blob_key(server, made["id"])
            assert not is_inline_key(key) and in_store(server) == {key}
            assert c.get(f"/objects/{made['id']}", headers=OCTETS).content == b"kept as a file"
