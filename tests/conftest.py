"""Fixtures that start real stowage servers on free loopback ports (``harness``).

* ``proc_server``: ``stowage serve`` as a separate process, as a user would start it.
* ``server``: the same server (Granian, embedded) in a thread of the test process, still
  over a real socket, but with a ManualClock so expiry can be tested without sleeping, and
  the reaper triggered by hand.

Both run once per deployment shape (``backends.BACKENDS``): SQLite + local disk, and
PostgreSQL + S3 on a real SeaweedFS (``seaweed``, started once per session) with the
PostgreSQL of ``pg_base_url``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from stowage.seaweed import SeaweedFS

from .backends import BACKENDS, BUCKET, reachable_postgres
from .harness import ProcServer, ThreadServer, proc_server_on, run_thread_server

# Many servers run at once here, and some tests start another from a running one's
# environment: none takes the S3 API's default port unless a test gives it one.
os.environ.setdefault("STOWAGE_S3_API_PORT", "0")


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedFS]:
    server = SeaweedFS.start(tmp_path_factory.mktemp("seaweedfs"), buckets=(BUCKET,))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def pg_base_url() -> Iterator[str | None]:
    """``backends.reachable_postgres``: None when there is none (its tests skip)."""
    with reachable_postgres() as url:
        yield url


@pytest.fixture(scope="session", params=BACKENDS)
def proc_server(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    pg_base_url: str | None,
) -> Iterator[ProcServer]:
    with proc_server_on(request.param, request, tmp_path_factory, pg_base_url) as server:
        yield server


@pytest.fixture(params=BACKENDS)
def server(
    request: pytest.FixtureRequest, tmp_path: Path, pg_base_url: str | None
) -> Iterator[ThreadServer]:
    yield from run_thread_server(request.param, request, tmp_path, pg_base_url)
