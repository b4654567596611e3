"""SIGTERM lets in-flight uploads finish in every worker (up to
STOWAGE_SHUTDOWN_TIMEOUT_SECONDS); no worker process outlives a killed parent; a busy port
is refused."""

from __future__ import annotations

import fcntl
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

from stowage.processes import free_port, start_serve

from .workers import children, flock_waiters, held_connections, wait_until_accepted


def test_sigterm_finishes_the_uploads_in_flight_in_every_worker(tmp_path: Path) -> None:
    process, base = start_serve(tmp_path, env={"STOWAGE_WORKERS": "2"})
    token = (tmp_path / "admin-token").read_text().strip()
    workers = children(process.pid)
    assert len(workers) == 2
    terminated = threading.Event()
    chunk = os.urandom(256 * 1024)
    results: list[httpx.Response] = []

    def upload(name: str, first_sent: threading.Event) -> None:
        def body() -> Iterator[bytes]:
            yield chunk
            first_sent.set()
            assert terminated.wait(30)  # the rest goes out after SIGTERM
            for _ in range(7):
                yield chunk

        results.append(
            httpx.post(
                f"{base}/objects",
                params={"name": name},
                content=body(),
                headers={"Authorization": f"Bearer {token}"},
                timeout=60,
            )
        )

    # Which worker accepts a connection is the kernel's choice: start uploads until every
    # worker is holding one.
    uploaders: list[threading.Thread] = []
    while not all(held_connections(w, base) for w in workers):
        assert len(uploaders) < 16, "the uploads never reached every worker"
        first_sent = threading.Event()
        uploader = threading.Thread(target=upload, args=(f"late{len(uploaders)}", first_sent))
        uploader.start()
        uploaders.append(uploader)
        assert first_sent.wait(30)
        wait_until_accepted(workers, base, len(uploaders))
    process.send_signal(signal.SIGTERM)
    terminated.set()
    for uploader in uploaders:
        uploader.join(60)
    assert [r.status_code for r in results] == [201] * len(uploaders), results[0].text
    digest = hashlib.sha256(chunk * 8).hexdigest()
    assert {r.json()["sha256"] for r in results} == {digest}
    assert process.wait(timeout=30) in (0, -signal.SIGTERM)


def test_every_server_worker_dies_with_its_parent(tmp_path: Path) -> None:
    process, base = start_serve(tmp_path, env={"STOWAGE_WORKERS": "2"})
    workers = children(process.pid)
    assert len(workers) == 2 and httpx.get(f"{base}/healthz").status_code == 200
    process.kill()  # SIGKILL: no chance to stop the worker itself
    process.wait(timeout=30)
    deadline = time.monotonic() + 30
    while any(Path(f"/proc/{w}").exists() and "zombie" not in _state(w) for w in workers):
        assert time.monotonic() < deadline, "the worker outlived its parent"
        time.sleep(0.05)
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{base}/healthz", timeout=2)


def test_sigterm_stops_workers_that_are_still_starting(tmp_path: Path) -> None:
    """Workers build the app one after another (first-start work takes a lock); one that
    is stopped meanwhile must end, not start serving and wait to be killed."""
    env = {
        **os.environ,
        "STOWAGE_DATA_DIR": str(tmp_path),
        "STOWAGE_PORT": str(free_port()),
        "STOWAGE_WORKERS": "2",
        "STOWAGE_SHUTDOWN_TIMEOUT_SECONDS": "60",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "stowage.cli", "serve"], env=env, stdout=subprocess.PIPE
    )
    try:
        assert process.stdout is not None
        while b"listening on" not in process.stdout.readline():
            assert process.poll() is None
        lock = os.open(tmp_path / "first-start.lock", os.O_RDWR)
        fcntl.flock(lock, fcntl.LOCK_EX)  # the workers' first-start work waits behind this
        try:
            deadline = time.monotonic() + 30
            while flock_waiters(tmp_path / "first-start.lock") < 2:
                assert time.monotonic() < deadline, "the workers never reached first-start work"
                time.sleep(0.01)
            workers = children(process.pid)
            process.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + 20
            while any("zombie" not in _state(w) for w in workers):
                assert time.monotonic() < deadline, "a starting worker ignored SIGTERM"
                time.sleep(0.05)
        finally:
            os.close(lock)
        assert process.wait(timeout=20) in (0, 1, -signal.SIGTERM)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


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
