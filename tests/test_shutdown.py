"""SIGTERM lets in-flight uploads finish (up to STOWAGE_SHUTDOWN_TIMEOUT_SECONDS); the
server's worker process never outlives a killed parent; a busy port is refused."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from stowage.processes import start_serve


def test_sigterm_finishes_the_upload_in_flight(tmp_path: Path) -> None:
    process, base = start_serve(tmp_path)
    token = (tmp_path / "admin-token").read_text().strip()
    first_sent, terminated = threading.Event(), threading.Event()
    chunk = os.urandom(256 * 1024)

    def body() -> Iterator[bytes]:
        yield chunk
        first_sent.set()
        assert terminated.wait(30)  # the rest goes out after SIGTERM
        for _ in range(7):
            yield chunk

    result: dict[str, httpx.Response] = {}

    def upload() -> None:
        result["r"] = httpx.post(
            f"{base}/objects",
            params={"name": "late.bin"},
            content=body(),
            headers={"Authorization": f"Bearer {token}"},
            timeout=60,
        )

    uploader = threading.Thread(target=upload)
    uploader.start()
    assert first_sent.wait(30)
    process.send_signal(signal.SIGTERM)
    terminated.set()
    uploader.join(60)
    assert result["r"].status_code == 201, result["r"].text
    assert result["r"].json()["sha256"] == hashlib.sha256(chunk * 8).hexdigest()
    assert process.wait(timeout=30) in (0, -signal.SIGTERM)


def children(pid: int) -> list[int]:
    found = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(child) for child in found]


def test_the_server_worker_dies_with_its_parent(tmp_path: Path) -> None:
    process, base = start_serve(tmp_path)
    workers = children(process.pid)
    assert workers and httpx.get(f"{base}/healthz").status_code == 200
    process.kill()  # SIGKILL: no chance to stop the worker itself
    process.wait(timeout=30)
    deadline = time.monotonic() + 30
    while any(Path(f"/proc/{w}").exists() and "zombie" not in _state(w) for w in workers):
        assert time.monotonic() < deadline, "the worker outlived its parent"
        time.sleep(0.05)
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{base}/healthz", timeout=2)


def _state(pid: int) -> str:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return "zombie"
    return next(line for line in status.splitlines() if line.startswith("State:")).lower()


def test_a_second_server_on_a_busy_port_refuses_to_start(tmp_path: Path) -> None:
    """SO_REUSEPORT would otherwise let it take half of the first server's connections."""
    process, base = start_serve(tmp_path / "first")
    try:
        env = {
            **os.environ,
            "STOWAGE_DATA_DIR": str(tmp_path / "second"),
            "STOWAGE_PORT": base.rsplit(":", 1)[1],
        }
        second = subprocess.run(
            [sys.executable, "-m", "stowage.cli", "serve"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert second.returncode == 1
        assert "cannot listen" in second.stderr and "in use" in second.stderr
    finally:
        process.terminate()
        process.wait(timeout=30)
