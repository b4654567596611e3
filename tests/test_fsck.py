"""stowage fsck: orphans, missing blobs and corrupt blobs, found and (orphans) fixed."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx

from stowage.core.fsck import check
from stowage.core.ids import new_blob_key

from .harness import ThreadServer


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
