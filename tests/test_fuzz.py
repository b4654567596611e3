"""A bounded schemathesis run against a fresh server of each backend (see schema_fuzz)."""

from __future__ import annotations

from pathlib import Path

import pytest

from .backends import BACKENDS
from .harness import proc_server_on
from .schema_fuzz import run_schemathesis

MAX_EXAMPLES = 10  # per operation and phase: about a thousand requests a backend
SEED = 20261124


@pytest.mark.parametrize("backend", BACKENDS)
def test_schemathesis_finds_no_server_error_and_no_schema_mismatch(
    backend: str,
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    pg_base_url: str | None,
    tmp_path: Path,
) -> None:
    # A server of its own: what other tests stored would change what the fuzzer meets.
    with proc_server_on(backend, request, tmp_path_factory, pg_base_url) as server:
        run = run_schemathesis(
            server.base_url, server.token, max_examples=MAX_EXAMPLES, seed=SEED, workdir=tmp_path
        )
        log = server.log_path.read_text()
    assert run.returncode == 0, run.failures
    assert run.cases >= 300, run.output  # the run really exercised the API
    assert (tmp_path / "junit.xml").exists()
    assert "Traceback" not in log and "unhandled error" not in log, log[-4000:]
