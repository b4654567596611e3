"""The processes a benchmark run starts: stowage, a sendfile server, SeaweedFS tools, and
a private PostgreSQL schema. Everything binds to 127.0.0.1 and is stopped by the run."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg

from stowage.processes import free_port, scratch_schema, start_serve, wait_healthy
from stowage.seaweed import SeaweedFS

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/test"


class StowageServer:
    """``stowage serve`` in its own process on a free loopback port."""

    def __init__(self, data_dir: Path, extra_env: dict[str, str] | None = None) -> None:
        self.data_dir = data_dir
        self.proc, self.base = start_serve(data_dir, env=extra_env, timeout_s=60)
        self.token = (data_dir / "admin-token").read_text().strip()
        self.headers = {"Authorization": f"Bearer {self.token}"}

    def peak_rss_mib(self) -> float:
        """The kernel's high-water marks of the server's resident memory: ``stowage serve``
        and its worker process (where the requests run), added up."""
        return sum(_vm_hwm_mib(pid) for pid in self.pids())

    def pids(self) -> list[int]:
        """``stowage serve`` and its worker processes."""
        return [self.proc.pid, *_children(self.proc.pid)]

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=60)


@contextlib.contextmanager
def stowage(data_dir: Path, extra_env: dict[str, str] | None = None) -> Iterator[StowageServer]:
    server = StowageServer(data_dir, extra_env)
    try:
        yield server
    finally:
        server.stop()


def _children(pid: int) -> list[int]:
    return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def _vm_hwm_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM in /proc/{pid}/status")


@contextlib.contextmanager
def sendfile_server(root: Path) -> Iterator[str]:
    """aiohttp serving ``root`` with sendfile(2): the zero-copy GET baseline."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.sendfile_server", str(port), str(root)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_healthy(f"http://127.0.0.1:{port}", proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@contextlib.contextmanager
def pg_schema() -> Iterator[str | None]:
    """A database URL into a fresh schema of the local PostgreSQL, or None if none answers."""
    base = os.environ.get("STOWAGE_BENCH_DATABASE_URL", DEFAULT_PG)
    try:
        psycopg.connect(base, connect_timeout=3).close()
    except psycopg.Error:
        yield None
        return
    with scratch_schema(base, "bench") as url:
        yield url


def s5cmd_seconds(s3: SeaweedFS, *args: str, stdout: int | None = subprocess.DEVNULL) -> float:
    """Wall time of one s5cmd (Go) command against SeaweedFS."""
    binary = Path(sys.executable).parent / "s5cmd"
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": s3.access_key,
        "AWS_SECRET_ACCESS_KEY": s3.secret_key,
        "AWS_REGION": "us-east-1",
    }
    start = time.perf_counter()
    subprocess.run(
        [str(binary), "--endpoint-url", s3.endpoint, *args],
        env=env,
        check=True,
        stdout=stdout,
        stderr=subprocess.PIPE,
    )
    return time.perf_counter() - start


def s3_env(s3: SeaweedFS, bucket: str) -> dict[str, str]:
    """Settings that put stowage's blobs in ``bucket`` on this SeaweedFS."""
    return {
        "STOWAGE_BLOB_STORE": "s3",
        "STOWAGE_S3_ENDPOINT": s3.endpoint,
        "STOWAGE_S3_BUCKET": bucket,
        "STOWAGE_S3_ACCESS_KEY_ID": s3.access_key,
        "STOWAGE_S3_SECRET_ACCESS_KEY": s3.secret_key,
    }
