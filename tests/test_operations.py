"""What operators and security reviewers check on every response."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import httpx

from stowage.processes import start_serve

from .harness import ThreadServer


def test_request_id_is_echoed_or_made(server: ThreadServer) -> None:
    with server.client() as c:
        sent = c.get("/v1/objects", headers={"X-Request-Id": "stainless-python-retry-abc-123"})
        assert sent.headers["x-request-id"] == "stainless-python-retry-abc-123"
        made = c.get("/objects").headers["x-request-id"]
        assert len(made) == 24 and made != c.get("/objects").headers["x-request-id"]
        odd = c.get("/objects", headers={"X-Request-Id": "bad id\twith spaces"})
        assert odd.headers["x-request-id"] != "bad id\twith spaces"


def test_security_headers_on_every_kind_of_response(server: ThreadServer) -> None:
    with server.client() as c:
        created = c.post("/v1/objects", json={"name": "h", "content_type": "text"}).json()
        responses = [
            c.get("/v1/objects"),  # JSON
            c.get("/v1/objects/obj_missing"),  # error
            httpx.put(created["upload_url"], content=b"h"),  # presigned (local or S3)
            c.get("/objects/123456"),  # Djinn 404
            httpx.get(server.base_url + "/nowhere"),  # router 404
        ]
        for r in responses[:2] + responses[3:]:
            assert r.headers["x-content-type-options"] == "nosniff", r.url
            assert r.headers["x-frame-options"] == "DENY"
            assert r.headers["referrer-policy"] == "no-referrer"
            assert "default-src 'none'" in r.headers["content-security-policy"]
        if not server.direct:
            assert responses[2].headers["x-content-type-options"] == "nosniff"
        assert "content-security-policy" not in c.get("/docs").headers


def test_healthz_and_readyz(server: ThreadServer) -> None:
    with httpx.Client(base_url=server.base_url) as c:
        assert c.get("/healthz").json() == {"status": "ok"}
        ready = c.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["checks"] == {"database": "ok", "blobs": "ok"}


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text format (0 when absent)."""
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        key, _, value = line.rpartition(" ")
        sample, _, rest = key.partition("{")
        got = ",".join(sorted(rest.rstrip("}").split(","))) if rest else ""
        if sample == name and got == want:
            return float(value)
    return 0.0


def test_prometheus_metrics(server: ThreadServer) -> None:
    with server.client() as c:
        for i in range(3):
            c.post("/objects", params={"name": f"m{i}.bin"}, content=b"m" * 1000)
        c.get("/objects/999999")
        first = c.get("/objects").json()[0]
        octets = {"Accept": "application/octet-stream"}
        assert c.get(f"/objects/{first['id']}", headers=octets).content == b"m" * 1000
        c.post("/v1/objects", json={"name": "ttl", "content_type": "text", "ttl_ms": 1})
        server.clock.advance(1)
        server.run(server.stowage.reaper.run_once())
        text = httpx.get(server.base_url + "/metrics").text
    route = {"route": "/objects", "method": "POST"}
    assert metric(text, "stowage_requests_total", status="201", **route) == 3
    assert (
        metric(
            text,
            "stowage_requests_total",
            route="/objects/{object_id}",
            method="GET",
            status="404",
        )
        == 1
    )
    # a download takes the fast path (api/common/hot.py) and is counted under its route all the same
    download = {"route": "/objects/{object_id}", "method": "GET", "status": "200"}
    assert metric(text, "stowage_requests_total", **download) == 1
    assert metric(text, "stowage_request_duration_seconds_count", **route) == 3
    assert metric(text, "stowage_received_bytes_total") >= 3000
    assert metric(text, "stowage_sent_bytes_total") > 0
    assert metric(text, "stowage_objects") == 3
    assert metric(text, "stowage_stored_bytes") == 3000
    assert metric(text, "stowage_reaper_runs_total") == 1
    assert metric(text, "stowage_reaped_objects_total") == 1


def test_the_documented_sqlite_backup_restores_a_clean_store(tmp_path: Path) -> None:
    """docs/operations.md, "SQLite + local disk": back up a running server, restore, check."""
    data, backup = tmp_path / "data", tmp_path / "backup"
    process, base = start_serve(data)
    try:
        token = (data / "admin-token").read_text().strip()
        auth = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=base, headers=auth) as c:
            ids = [
                c.post("/objects", params={"name": f"f{i}.bin"}, content=bytes([i]) * 5000).json()[
                    "id"
                ]
                for i in range(3)
            ]
            backup.mkdir()
            with (
                sqlite3.connect(data / "stowage.db") as live,
                sqlite3.connect(backup / "stowage.db") as copy,
            ):
                live.backup(copy)
            shutil.copytree(data / "blobs", backup / "blobs")
            shutil.copy2(data / "presign-secret", backup / "presign-secret")
            c.post("/objects", params={"name": "after.bin"}, content=b"later")  # not in it
    finally:
        process.terminate()
        process.wait(timeout=30)

    env = {**os.environ, "STOWAGE_DATA_DIR": str(backup)}
    fsck = subprocess.run(
        [sys.executable, "-m", "stowage.cli", "fsck", "--verify"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert fsck.returncode == 0 and "clean" in fsck.stdout, fsck.stdout + fsck.stderr
    process, base = start_serve(backup)
    try:
        with httpx.Client(base_url=base, headers=auth) as c:
            assert [o["name"] for o in c.get("/objects").json()] == ["f2.bin", "f1.bin", "f0.bin"]
            raw = {"Accept": "application/octet-stream"}
            for i, object_id in enumerate(ids):
                assert c.get(f"/objects/{object_id}", headers=raw).content == bytes([i]) * 5000
    finally:
        process.terminate()
        process.wait(timeout=30)
