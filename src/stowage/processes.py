"""Starting local servers on loopback (free ports, ``stowage serve``, waiting until one
answers) and scratch PostgreSQL schemas.

Shared by ``make cluster``, the SeaweedFS launcher, the test fixtures and the benchmarks,
which all start real servers as child processes.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
from sqlalchemy.engine import make_url


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


def start_serve(
    data_dir: Path,
    *,
    env: dict[str, str] | None = None,
    log_level: str = "warning",
    stderr: Any = subprocess.DEVNULL,
    preexec_fn: Any = None,
    timeout_s: float = 30,
) -> tuple[subprocess.Popen[bytes], str]:
    """``stowage serve`` on a free port with a data dir of its own; returns it once healthy."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "stowage.cli", "serve"],
        env={
            **os.environ,
            "STOWAGE_S3_API_PORT": str(free_port()),  # never the default port another holds
            **(env or {}),
            "STOWAGE_DATA_DIR": str(data_dir),
            "STOWAGE_PORT": str(port),
            "STOWAGE_LOG_LEVEL": log_level,
        },
        stdout=subprocess.DEVNULL,
        stderr=stderr,
        preexec_fn=preexec_fn,
    )
    base = f"http://127.0.0.1:{port}"
    wait_healthy(base, process, timeout_s)
    return process, base


@contextlib.contextmanager
def scratch_schema(base_url: str, prefix: str) -> Iterator[str]:
    """A URL into a fresh schema of the database at ``base_url``, dropped afterwards."""
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(base_url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    url = make_url(base_url).update_query_dict({"options": f"-csearch_path={schema},public"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with psycopg.connect(base_url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
