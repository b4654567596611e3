"""Out of space mid-write: 507 with a message, the partial file gone, other objects intact,
shared blobs included.

The server runs under RLIMIT_FSIZE, so any file it grows past 8 MiB fails with EFBIG,
as a full disk would fail with ENOSPC.
"""

from __future__ import annotations

import resource
import signal
from pathlib import Path

import httpx

from stowage.processes import start_serve

LIMIT = 8 * 1024 * 1024


def limit_file_size() -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (LIMIT, LIMIT))


def test_a_full_disk_gives_507_and_keeps_everything_else(tmp_path: Path) -> None:
    data = tmp_path / "data"
    process, base = start_serve(data, preexec_fn=limit_file_size)
    try:
        headers = {"Authorization": f"Bearer {(data / 'admin-token').read_text().strip()}"}
        with httpx.Client(base_url=base, headers=headers, timeout=60) as c:
            kept = c.post("/objects", params={"name": "kept.bin"}, content=b"k" * 1_000_000)
            assert kept.status_code == 201
            twin = c.post("/objects", params={"name": "twin.bin"}, content=b"k" * 1_000_000)
            assert twin.status_code == 201  # shares kept.bin's blob
            r = c.post("/objects", params={"name": "huge.bin"}, content=b"h" * (LIMIT + 1024))
            assert r.status_code == 507
            assert "not enough storage" in r.json()["message"]
            created = c.post("/v1/objects", json={"name": "r", "content_type": "binary"}).json()
            put = httpx.put(created["upload_url"], content=b"r" * (LIMIT + 1024))
            assert put.status_code == 507
            assert "not enough storage" in put.json()["message"]

            temp_files = [p for p in (data / "blobs").rglob("*") if p.name.endswith(".tmp")]
            assert temp_files == []
            got = c.get(
                f"/objects/{kept.json()['id']}", headers={"Accept": "application/octet-stream"}
            )
            assert got.content == b"k" * 1_000_000
            assert c.delete(f"/objects/{kept.json()['id']}").status_code == 204
            got = c.get(
                f"/objects/{twin.json()['id']}", headers={"Accept": "application/octet-stream"}
            )
            assert got.content == b"k" * 1_000_000
            stored = [p for p in (data / "blobs").rglob("*") if p.is_file()]
            assert len(stored) == 1  # one copy of the twins' bytes, and nothing of the rest
            assert c.post("/objects", params={"name": "small.bin"}, content=b"s").status_code == 201
            assert process.poll() is None  # the server lived through it
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=20)
