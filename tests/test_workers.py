"""``stowage serve`` runs STOWAGE_WORKERS processes: what they share must hold across them.
SQLite writers take turns on one lock, and ``/metrics`` counts every worker's requests."""

from __future__ import annotations

import fcntl
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from stowage.processes import start_serve

from .test_operations import metric
from .workers import children, flock_waiters, reach_every_worker


@pytest.fixture
def two_workers(tmp_path: Path) -> Iterator[tuple[int, str]]:
    process, base = start_serve(tmp_path, env={"STOWAGE_WORKERS": "2"})
    try:
        yield process.pid, base
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


def test_metrics_add_up_the_requests_of_every_worker(two_workers: tuple[int, str]) -> None:
    pid, base = two_workers
    assert len(children(pid)) == 2
    connections = reach_every_worker(pid, base)
    try:
        for connection in connections:
            for _ in range(4):
                assert connection.request("GET", "/objects/999").status == 404
    finally:
        for connection in connections:
            connection.__exit__()
    sent = 4 * len(connections)
    labels = {"route": "/objects/{object_id}", "method": "GET"}
    # Each worker hands its tallies to the shared files within a second (metrics.flush).
    deadline = time.monotonic() + 10
    while True:
        text = httpx.get(f"{base}/metrics").text
        counted = metric(text, "stowage_requests_total", status="404", **labels)
        if counted == sent or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert counted == sent
    assert metric(text, "stowage_request_duration_seconds_count", **labels) == sent


def test_sqlite_writers_of_every_worker_take_turns_on_one_lock(
    tmp_path: Path, two_workers: tuple[int, str]
) -> None:
    """A write waits, without polling, while another process holds the writer lock, and
    goes through once it is let go; whichever worker it reached."""
    _, base = two_workers
    lock_file = tmp_path / "stowage.db-writer.lock"
    token = (tmp_path / "admin-token").read_text().strip()
    replies: list[int] = []
    fd = os.open(lock_file, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)

        def write(name: str) -> None:
            r = httpx.post(
                f"{base}/objects",
                params={"name": name},
                content=b"x",
                headers={"Authorization": f"Bearer {token}"},
                timeout=60,
            )
            replies.append(r.status_code)

        writers = [threading.Thread(target=write, args=(f"w{i}",)) for i in range(4)]
        for writer in writers:
            writer.start()
        deadline = time.monotonic() + 30
        while flock_waiters(lock_file) == 0:
            assert time.monotonic() < deadline, "no write waited for the writer lock"
            time.sleep(0.01)
        assert replies == []
    finally:
        os.close(fd)
    for writer in writers:
        writer.join(60)
    assert replies == [201] * 4
