"""Dependencies going away: PostgreSQL or S3 unreachable gives 503 with Retry-After (not a
500, not a hang), and requests succeed again when they come back, without a restart."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy.engine import make_url

from stowage.seaweed import SeaweedFS

from .backends import backend_settings
from .harness import ThreadServer, run_thread_server_with
from .tcpproxy import TcpProxy


@dataclass
class FragileServer:
    server: ThreadServer
    database: TcpProxy
    s3: TcpProxy


@pytest.fixture
def fragile(
    request: pytest.FixtureRequest, tmp_path: Path, pg_base_url: str | None
) -> Iterator[FragileServer]:
    """PostgreSQL + S3 stowage whose connections to both pass through blockable proxies."""
    with backend_settings("postgres-s3", request, pg_base_url) as settings:
        db = make_url(settings["database_url"])
        database = TcpProxy(db.host or "127.0.0.1", db.port or 5432)
        s3_url = urlsplit(settings["s3_endpoint"])
        s3 = TcpProxy(s3_url.hostname or "127.0.0.1", s3_url.port or 80)
        settings["database_url"] = db.set(port=database.port).render_as_string(False)
        settings["s3_endpoint"] = f"http://127.0.0.1:{s3.port}"
        try:
            for server in run_thread_server_with(tmp_path, settings):
                yield FragileServer(server, database, s3)
        finally:
            database.close()
            s3.close()


@pytest.fixture
def own_seaweed(
    request: pytest.FixtureRequest, tmp_path: Path, pg_base_url: str | None
) -> Iterator[tuple[ThreadServer, SeaweedFS]]:
    """PostgreSQL + S3 stowage on a SeaweedFS of its own, which the test may stop."""
    s3 = SeaweedFS.start(tmp_path / "seaweedfs", buckets=("own",))
    try:
        with backend_settings("postgres-s3", request, pg_base_url) as settings:
            settings.update(s3_endpoint=s3.endpoint, s3_bucket="own")
            for server in run_thread_server_with(tmp_path, settings):
                yield server, s3
    finally:
        s3.stop()


def assert_unavailable(r: httpx.Response) -> None:
    assert r.status_code == 503, r.text
    assert r.headers["retry-after"] == "5"
    assert "unavailable" in r.json()["message"]


def test_database_outage_and_recovery(fragile: FragileServer) -> None:
    server = fragile.server
    with server.client() as c:
        obj = c.post("/objects", params={"name": "a.txt"}, content=b"a" * 600).json()
        fragile.database.block()
        for r in (
            c.get("/v1/objects"),
            c.get(f"/objects/{obj['id']}"),
            c.post("/v1/objects", json={"name": "x", "content_type": "text"}),
            c.post("/objects", params={"name": "b.txt"}, content=b"b"),
        ):
            assert_unavailable(r)
        fragile.database.unblock()
        assert c.get(f"/objects/{obj['id']}").json()["name"] == "a.txt"
        assert c.get("/v1/objects").status_code == 200
        assert c.post("/objects", params={"name": "b.txt"}, content=b"b").status_code == 201


def test_blob_store_outage_and_recovery(fragile: FragileServer) -> None:
    server = fragile.server
    accept = {"Accept": "application/octet-stream"}
    big = b"\x00" * 20_000  # past STOWAGE_INLINE_MAX_BYTES: kept in the blob store
    with server.client() as c:
        obj = c.post("/objects", params={"name": "a.bin"}, content=big).json()
        small = c.post("/objects", params={"name": "small.bin"}, content=b"small").json()
        pending = c.post("/v1/objects", json={"name": "p", "content_type": "text"}).json()
        httpx.put(pending["upload_url"], content=b"pending").raise_for_status()

        fragile.s3.block()
        assert_unavailable(c.get(f"/objects/{obj['id']}", headers=accept))
        assert_unavailable(c.post("/objects", params={"name": "b.bin"}, content=big))
        assert_unavailable(c.post(f"/v1/objects/{pending['id']}/complete"))
        # Small objects live in the database (core/objects/inline.py): still there.
        assert c.get(f"/objects/{small['id']}", headers=accept).content == b"small"
        assert c.post("/objects", params={"name": "c.bin"}, content=b"c").status_code == 201
        assert c.get(f"/objects/{obj['id']}").status_code == 200  # metadata still answers
        assert c.get("/objects", params={"search": "b.bin"}).json() == []  # nothing half-made

        fragile.s3.unblock()
        assert c.get(f"/objects/{obj['id']}", headers=accept).content == big
        assert c.post(f"/v1/objects/{pending['id']}/complete").json()["state"] == "READ_ONLY"
        assert c.post("/objects", params={"name": "b.bin"}, content=b"b").status_code == 201


def test_seaweedfs_stopped_and_started_again(own_seaweed: tuple[ThreadServer, SeaweedFS]) -> None:
    server, s3 = own_seaweed
    accept = {"Accept": "application/octet-stream"}
    with server.client() as c:
        kept = b"k" * 20_000  # past STOWAGE_INLINE_MAX_BYTES: kept in the blob store
        obj = c.post("/objects", params={"name": "kept.bin"}, content=kept).json()
        s3.stop()
        assert_unavailable(c.get(f"/objects/{obj['id']}", headers=accept))
        assert_unavailable(c.post("/objects", params={"name": "new.bin"}, content=kept))
        s3.restart()
        # The S3 port answers before SeaweedFS's volume server is back: until then a read is
        # still an outage (503), never a wrong answer; then it recovers with no restart.
        deadline = time.monotonic() + 60
        while (back := c.get(f"/objects/{obj['id']}", headers=accept)).status_code != 200:
            assert_unavailable(back)
            assert time.monotonic() < deadline, "stowage did not recover after SeaweedFS"
            time.sleep(0.2)
        assert back.content == kept
        assert c.post("/objects", params={"name": "new.bin"}, content=b"n").status_code == 201


def test_readyz_follows_the_dependencies(fragile: FragileServer) -> None:
    with httpx.Client(base_url=fragile.server.base_url) as c:
        assert c.get("/readyz").json() == {
            "status": "ready",
            "checks": {"database": "ok", "blobs": "ok"},
        }
        fragile.database.block()
        r = c.get("/readyz")
        assert r.status_code == 503
        assert "unavailable" in r.json()["checks"]["database"]
        assert r.json()["checks"]["blobs"] == "ok"
        assert c.get("/healthz").status_code == 200  # the process itself is fine
        fragile.database.unblock()
        fragile.s3.block()
        r = c.get("/readyz")
        assert (r.status_code, r.json()["checks"]["database"]) == (503, "ok")
        fragile.s3.unblock()
        assert c.get("/readyz").status_code == 200
