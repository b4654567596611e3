"""Real stowage servers on free loopback ports, for the fixtures in conftest.py and the
tests that start servers of their own.

* ``ProcServer``: ``stowage serve`` as a separate process, as a user would start it.
* ``ThreadServer``: the same server (Granian, embedded) in a thread of the test process,
  still over a real socket, but with a ManualClock so expiry can be tested without
  sleeping, and the reaper triggered by hand.

Each runs on one of the deployment shapes of ``backends``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from botocore.config import Config
from granian.server.embed import Server as EmbeddedGranian

from stowage.app import create_app
from stowage.bootstrap import prepare
from stowage.config import Settings
from stowage.core.access import parse_scopes
from stowage.core.clock import ManualClock
from stowage.processes import free_port, wait_healthy
from stowage.server import http_options
from stowage.service import Stowage

from .aio import stored_blob_keys
from .backends import backend_settings

SMALL_UPLOAD_LIMIT = 32 * 1024 * 1024


@dataclass
class ProcServer:
    base_url: str
    token: str
    data_dir: Path
    env: dict[str, str]
    log_path: Path
    pid: int  # of ``stowage serve``, whose children are the workers

    def processes(self) -> list[int]:
        """``stowage serve`` and its worker processes."""
        children = Path(f"/proc/{self.pid}/task/{self.pid}/children").read_text().split()
        return [self.pid, *map(int, children)]

    @staticmethod
    def cli_command() -> list[str]:
        return [sys.executable, "-m", "stowage.cli"]

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run the ``stowage`` CLI against this server's data directory."""
        return subprocess.run(
            [*self.cli_command(), *args],
            env=self.env,
            capture_output=True,
            text=True,
            check=check,
            timeout=60,
        )


@contextlib.contextmanager
def proc_server_on(
    backend: str,
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    pg_base: str | None,
    **settings: str,
) -> Iterator[ProcServer]:
    """A ``stowage serve`` process of its own on this backend, with more ``settings``."""
    with backend_settings(backend, request, pg_base) as extra:
        yield from _run_proc_server(tmp_path_factory, extra | settings)


def _run_proc_server(
    tmp_path_factory: pytest.TempPathFactory, extra: dict[str, str]
) -> Iterator[ProcServer]:
    data_dir = tmp_path_factory.mktemp("proc-data")
    port = free_port()
    env = {
        **os.environ,
        "STOWAGE_DATA_DIR": str(data_dir),
        "STOWAGE_PORT": str(port),
        "STOWAGE_HOST": "127.0.0.1",
        "STOWAGE_LOG_LEVEL": "warning",
    }
    env.update({f"STOWAGE_{k.upper()}": v for k, v in extra.items()})
    log_path = data_dir.parent / "proc-server.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [*ProcServer.cli_command(), "serve"], env=env, stdout=log, stderr=log
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base_url, proc)
        token = (data_dir / "admin-token").read_text().strip()
        yield ProcServer(base_url, token, data_dir, env, log_path, proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


@dataclass
class ThreadServer:
    base_url: str
    token: str
    clock: ManualClock
    stowage: Stowage
    settings: Settings
    loop: asyncio.AbstractEventLoop

    def run(self, coro: Any) -> Any:
        """Run a coroutine on the server's event loop (e.g. a reaper sweep) and wait."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=30)

    @property
    def direct(self) -> bool:
        """True when presigned URLs point at S3 rather than at stowage."""
        return self.settings.blob_store == "s3"

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run the ``stowage`` CLI with this server's settings."""
        env = dict(os.environ)
        for name, value in self.settings.model_dump().items():
            if value is not None:
                env[f"STOWAGE_{name.upper()}"] = str(value)
        return subprocess.run(
            [*ProcServer.cli_command(), *args], env=env, capture_output=True, text=True, timeout=120
        )

    def stored_blobs(self) -> set[str]:
        """The keys of the blobs stored: in the blob store, whichever backend it is, and
        in the database (inline blobs, ``core/objects/inline.py``)."""
        return self.run(stored_blob_keys(self.stowage.meta, self.stowage.blobs))

    def collect_blobs(self) -> int:
        """Let the blob grace pass and collect what deletes and the reaper released, as a
        later reaper sweep would; how many blobs went."""
        self.clock.advance(self.settings.blob_grace_seconds * 1000)
        return int(self.run(self.stowage.objects.collect_blobs()))

    def s3_client(self, scopes: str) -> Any:
        """boto3 on this server's S3 port, with a new access key of the admin's."""
        issued = self.run(self.stowage.access.create_key("admin", parse_scopes(scopes), "test"))
        return boto3.client(
            "s3",
            endpoint_url=f"http://127.0.0.1:{self.settings.s3_api_port}",
            aws_access_key_id=issued.key.access_key_id,
            aws_secret_access_key=issued.secret,
            region_name="us-east-1",
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
        )

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token or self.token}"}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=30)

    def new_user_token(
        self, name: str, scopes: str = "object:read,write,delete", email: str | None = None
    ) -> str:
        """Create a user and return a new token for them."""
        access = self.stowage.access
        self.run(access.create_user(name, email))
        return self.token_for(name, scopes)

    def token_for(self, name: str, scopes: str) -> str:
        """Another token for an existing user."""
        issued = self.stowage.access.issue_token(name, parse_scopes(scopes), "test")
        return self.run(issued).secret


def run_thread_server(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path, pg_base: str | None
) -> Iterator[ThreadServer]:
    with backend_settings(backend, request, pg_base) as extra:
        yield from run_thread_server_with(tmp_path, extra)


def run_thread_server_with(tmp_path: Path, extra: dict[str, str]) -> Iterator[ThreadServer]:
    settings = Settings(
        **{"s3_api_port": "0", **extra},  # type: ignore[arg-type]
        data_dir=tmp_path / "data",
        port=free_port(),
        max_upload_bytes=SMALL_UPLOAD_LIMIT,
        reaper_interval_seconds=0,  # tests sweep explicitly
        deleted_retention_seconds=60,
    )
    prepared = prepare(settings)
    assert prepared.new_admin_token is not None
    clock = ManualClock()
    app = create_app(settings, prepared.presign_secret, clock)
    granian = EmbeddedGranian(app, **http_options(settings))
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_until_complete, args=(granian.serve(),), daemon=True)
    thread.start()
    base_url = f"http://127.0.0.1:{settings.port}"
    try:
        wait_healthy(base_url)
        yield ThreadServer(
            base_url, prepared.new_admin_token, clock, app.state.stowage, settings, loop
        )
    finally:
        loop.call_soon_threadsafe(granian.stop)
        thread.join(timeout=20)
        loop.close()


def create_s3_key(env: dict[str, str], user: str, scopes: str) -> tuple[str, str]:
    """``stowage keys create``, as an operator runs it: the id and the secret it prints."""
    printed = subprocess.run(
        [*ProcServer.cli_command(), "keys", "create", "--user", user, "--scope", scopes],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    exported = dict(re.findall(r"(?m)^export (AWS_[A-Z_]+)=(\S+)$", printed))
    return exported["AWS_ACCESS_KEY_ID"], exported["AWS_SECRET_ACCESS_KEY"]


def listed_with_digests(api: httpx.Client, path: str, name: str) -> dict[str, Any]:
    """The object ``name`` as the Djinn list at ``path`` shows it, once it has its md5 and
    sha256: an object assembled from multipart parts gets them just after completion
    (``core/objects/digests.py``)."""
    deadline = time.monotonic() + 30
    while True:
        [shown] = [o for o in api.get(path).json() if o["name"] == name]
        if shown["sha256"] is not None:
            return shown
        assert time.monotonic() < deadline, f"{name} has no digests after 30 s"
        time.sleep(0.05)
