"""stowage fsck: orphans, missing blobs and corrupt blobs, found and (orphans) fixed; and
the S3 blob store's own multipart uploads, which a crash may leave behind."""

from __future__ import annotations

import hashlib
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from stowage.core.access import Principal
from stowage.core.fsck import check
from stowage.core.ids import new_blob_key
from stowage.core.models import MultipartUpload
from stowage.core.objects.multipart import ORPHAN_MARGIN_MS
from stowage.core.ports import BlobParts, DirectBlobStore

from .backends import BACKENDS, backend_settings
from .harness import ThreadServer, run_thread_server_with


@pytest.fixture(params=BACKENDS)
def server(
    request: pytest.FixtureRequest, tmp_path: Path, pg_base_url: str | None
) -> Iterator[ThreadServer]:
    """Every body in the blob store, none in the database (``inline_max_bytes`` 0): these
    tests break and mend its files. Inline blobs: test_inline_blobs.py."""
    with backend_settings(request.param, request, pg_base_url) as extra:
        yield from run_thread_server_with(tmp_path, {**extra, "inline_max_bytes": "0"})


async def body(data: bytes) -> AsyncIterator[bytes]:
    yield data


def fsck(server: ThreadServer, **options: object):  # type: ignore[no-untyped-def]
    s = server.stowage
    return server.run(check(s.meta, s.blobs, s.clock, **options))  # type: ignore[arg-type]


def test_a_consistent_store_is_clean(server: ThreadServer) -> None:
    with server.client() as c:
        for i in range(3):
            c.post("/objects", params={"name": f"f{i}.txt"}, content=b"x" * (i + 1))
        pending = c.post("/v1/objects", json={"name": "p", "content_type": "text"}).json()
        httpx.put(pending["upload_url"], content=b"staged").raise_for_status()
    server.clock.advance(10_000)  # past the grace period: only real orphans may show
    report = fsck(server, verify=True, grace_s=0)
    assert report.clean, report
    assert report.verified == 3 + (0 if server.direct else 1)


def test_orphans_missing_and_corrupt_blobs(server: ThreadServer) -> None:
    blobs = server.stowage.blobs
    with server.client() as c:
        kept = c.post("/objects", params={"name": "kept.txt"}, content=b"kept").json()
        lost = c.post("/objects", params={"name": "lost.txt"}, content=b"lost").json()
        bad = c.post("/objects", params={"name": "bad.txt"}, content=b"good bytes").json()
    rows = {o["id"]: server.run(server.stowage.meta.get_object(o["id"])) for o in (kept, lost, bad)}
    orphan = new_blob_key()
    server.run(blobs.put(orphan, body(b"nobody's"), None))
    server.run(blobs.delete(rows[lost["id"]].blob_key))
    server.run(blobs.put(rows[bad["id"]].blob_key, body(b"rotten bytes"), None))

    young = fsck(server)  # within the grace period the orphan may be an upload in flight
    assert young.orphans == [] and young.missing == [lost["object_id"]]

    server.clock.advance(10_000)  # the orphan's mtime is now in the past
    report = fsck(server, verify=True, grace_s=0)
    assert report.orphans == [orphan]
    assert report.missing == [lost["object_id"]]
    assert report.corrupt == [bad["object_id"]]

    cli = server.cli("fsck", "--verify", "--fix", "--grace", "0")
    assert cli.returncode == 1, cli.stdout + cli.stderr  # missing and corrupt remain
    assert "removed 1 orphan blobs" in cli.stdout
    assert lost["object_id"] in cli.stdout and bad["object_id"] in cli.stdout
    assert orphan not in server.stored_blobs()
    assert rows[kept["id"]].blob_key in server.stored_blobs()


def test_cli_exit_codes(server: ThreadServer) -> None:
    clean = server.cli("fsck", "--verify")
    assert (clean.returncode, "clean" in clean.stdout) == (0, True), clean.stderr
    server.run(server.stowage.blobs.put(new_blob_key(), body(b"orphan"), None))
    found = server.cli("fsck", "--grace", "0")
    assert found.returncode == 1 and "1 orphan blobs" in found.stdout
    fixed = server.cli("fsck", "--grace", "0", "--fix")
    assert fixed.returncode == 0 and "fixed" in fixed.stdout


def _start_upload(server: ThreadServer, bucket: str) -> tuple[Principal, MultipartUpload]:
    s = server.stowage
    admin = server.run(s.access.authenticate(server.token))
    namespace = server.run(s.namespaces.create_root(admin, bucket))
    return admin, server.run(s.objects.start_multipart(admin, namespace, "big", None, None))


def _own_parts(server: ThreadServer) -> BlobParts:
    blobs = server.stowage.blobs
    if not isinstance(blobs, DirectBlobStore) or blobs.parts is None:
        pytest.skip("only the S3 blob store has multipart uploads of its own")
    return blobs.parts


def test_the_stores_own_uploads_no_row_holds_are_orphans(server: ThreadServer) -> None:
    """A crash between starting the store's upload and committing the row leaves one that
    no inventory shows: fsck finds it, and --fix aborts it, but not one in progress."""
    parts = _own_parts(server)
    _, held = _start_upload(server, "fsck-parts")
    orphan = server.run(parts.start(new_blob_key()))
    assert fsck(server).clean  # within the grace period it may be an upload starting
    server.clock.advance(10_000)
    found = fsck(server, grace_s=0)
    assert found.orphan_uploads == [orphan] and not found.clean
    fixed = server.cli("fsck", "--grace", "0", "--fix")
    assert fixed.returncode == 0 and "aborted 1 orphan multipart uploads" in fixed.stdout
    assert set(server.run(parts.in_progress())) == {held.backing_id}


def test_a_completion_cut_short_leaves_the_upload_to_retry_or_reap(server: ThreadServer) -> None:
    """The store's upload completed but the row not committed (a crash between the two):
    the blob is the upload's, not an orphan, a retried completion makes the object of it,
    and an upload that is never retried goes with its blob when it is reaped."""
    parts = _own_parts(server)
    s = server.stowage
    admin, upload = _start_upload(server, "cut-short")
    data = b"whole object"
    part = server.run(s.objects.put_part(admin, upload, 1, body(data), len(data)))
    assert upload.blob_key is not None and upload.backing_id is not None
    server.run(parts.complete(upload.blob_key, upload.backing_id, [(1, part.md5)]))
    server.clock.advance(10_000)
    assert fsck(server, grace_s=0).clean
    done = server.run(s.objects.complete_multipart(admin, upload, [(1, part.md5)]))
    assert done.size == len(data)
    deadline = time.monotonic() + 30  # its digests follow completion (digests.py)
    while (shown := server.run(s.meta.get_object(done.id))) and shown.sha256 is None:
        assert time.monotonic() < deadline, "no digests after 30 s"
        time.sleep(0.05)
    assert shown.sha256 == hashlib.sha256(data).hexdigest()
    assert fsck(server, verify=True, grace_s=0).clean

    admin, abandoned = _start_upload(server, "abandoned")
    part = server.run(s.objects.put_part(admin, abandoned, 1, body(data), len(data)))
    assert abandoned.blob_key is not None and abandoned.backing_id is not None
    server.run(parts.complete(abandoned.blob_key, abandoned.backing_id, [(1, part.md5)]))
    stray = server.run(parts.start(new_blob_key()))  # and one no row ever held
    server.clock.advance(s.objects.limits.upload_ttl_ms + ORPHAN_MARGIN_MS)
    server.run(s.reaper.run_once())
    assert abandoned.blob_key not in server.stored_blobs()
    assert stray not in server.run(parts.in_progress())
    assert fsck(server, grace_s=0).clean
