"""Starting local servers on loopback: free ports and waiting until one answers.

Shared by ``make cluster``, the SeaweedFS launcher, the test fixtures and the benchmarks,
which all start real servers as child processes.
"""

from __future__ import annotations

import socket
import subprocess
import time

import httpx


def free_ports(count: int) -> list[int]:
    """Distinct free loopback ports (all held open together, so none repeats)."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def free_port() -> int:
    return free_ports(1)[0]


def wait_healthy(
    base_url: str, process: subprocess.Popen[bytes] | None = None, timeout_s: float = 30
) -> None:
    """Return once ``GET /healthz`` answers 200; raise if the process exits or time runs out."""
    deadline = time.monotonic() + timeout_s
    while True:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the server for {base_url} exited with {process.returncode}")
        try:
            if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{base_url} did not become healthy in {timeout_s:.0f} s")
        time.sleep(0.05)
