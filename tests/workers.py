"""A ``stowage serve``'s worker processes as the kernel shows them: which exist, and which
connections each has accepted, so a test can make sure it reaches every worker."""

from __future__ import annotations

import contextlib
import os
import re
import time
from pathlib import Path

from .rawhttp import KeepAlive


def children(pid: int) -> list[int]:
    found = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(child) for child in found]


def held_connections(pid: int, base: str) -> int:
    """Connections to the server's port that process ``pid`` has accepted and holds open."""
    port = int(base.rsplit(":", 1)[1])
    open_here = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            established = fields[3] == "01"
            if established and int(fields[1].rsplit(":", 1)[1], 16) == port:
                open_here.add(f"socket:[{fields[9]}]")
    held = 0
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(FileNotFoundError):
            held += os.readlink(fd) in open_here
    return held


def wait_until_accepted(workers: list[int], base: str, count: int) -> None:
    """Until the workers together hold ``count`` connections (connecting is not accepting)."""
    deadline = time.monotonic() + 30
    while sum(held_connections(w, base) for w in workers) < count:
        assert time.monotonic() < deadline, "a connection was never accepted"
        time.sleep(0.01)


def reach_every_worker(server_pid: int, base: str) -> list[KeepAlive]:
    """Kept-alive connections, opened until every worker of the server holds one. The
    caller closes them; the server must be serving no other connection meanwhile."""
    workers = children(server_pid)
    connections: list[KeepAlive] = []
    while not all(held_connections(w, base) for w in workers):
        assert len(connections) < 32, "the connections never reached every worker"
        connection = KeepAlive(base)
        connections.append(connection)
        assert connection.request("GET", "/healthz").status == 200  # so it was accepted
    return connections


def flock_waiters(path: Path) -> int:
    """Processes blocked on an ``flock`` of ``path`` (``/proc/locks`` marks them ``->``)."""
    inode = path.stat().st_ino
    blocked = re.compile(rf"^\d+:\s+->\s+FLOCK\s+ADVISORY\s+WRITE\s+\d+\s+\S+:{inode}\s")
    return sum(bool(blocked.match(line)) for line in Path("/proc/locks").read_text().splitlines())
