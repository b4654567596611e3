"""The processes a benchmark run starts: stowage, a sendfile server, SeaweedFS tools, and
a private PostgreSQL schema. Everything binds to 127.0.0.1 and is stopped by the run."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import psycopg

from stowage.processes import free_port, scratch_schema, start_serve, wait_healthy
from stowage.seaweed import SeaweedFS

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/test"


class StowageServer:
    """``stowage serve`` in its own process on free loopback ports."""

    def __init__(self, data_dir: Path, extra_env: dict[str, str] | None = None) -> None:
        self.data_dir = data_dir
        self.s3_port = free_port()
        self.env = {**(extra_env or {}), "STOWAGE_S3_API_PORT": str(self.s3_port)}
        self.proc, self.base = start_serve(data_dir, env=self.env, timeout_s=60)
        self.token = (data_dir / "admin-token").read_text().strip()
        self.headers = {"Authorization": f"Bearer {self.token}"}

    def s3(self) -> StowageS3:
        """Its S3 API, with a new access key of the admin's (``stowage keys create``)."""
        printed = subprocess.run(
            [sys.executable, "-m", "stowage.cli", "keys", "create", "--user", "admin",
             "--scope", "object:read,write,delete namespace:read,write,delete"],
            env={**os.environ, **self.env, "STOWAGE_DATA_DIR": str(self.data_dir)},
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        exported = dict(re.findall(r"(?m)^export (AWS_[A-Z_]+)=(\S+)$", printed))
        return StowageS3(
            f"http://127.0.0.1:{self.s3_port}",
            exported["AWS_ACCESS_KEY_ID"],
            exported["AWS_SECRET_ACCESS_KEY"],
        )

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


class S3Endpoint(Protocol):
    """Where an S3 client goes, and its keys: SeaweedFS, or stowage's own S3 API."""

    @property
    def endpoint(self) -> str: ...
    @property
    def access_key(self) -> str: ...
    @property
    def secret_key(self) -> str: ...


@dataclass(frozen=True)
class StowageS3:
    endpoint: str
    access_key: str
    secret_key: str


def s5cmd_seconds(s3: S3Endpoint, *args: str, stdout: int | None = subprocess.DEVNULL) -> float:
    """Wall time of one s5cmd (Go) command against an S3 endpoint."""
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
