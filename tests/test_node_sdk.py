"""The official Node SDK (@runloop/api-client from npm, the version in tests/node), unchanged,
against a live stowage: create, upload, complete, retrieve, list, download, delete, and the
SDK's own upload/download helpers (tests/node/roundtrip.mjs).

Since 1.25 the Node SDK speaks HTTP/2 with prior knowledge to http:// URLs and cannot fall
back. stowage serves h2c beside HTTP/1.1 on its one port, so the SDK works as it ships; its
documented opt-out, ``http2: false``, works too.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from .backends import BACKENDS
from .harness import ProcServer, proc_server_on

NODE_DIR = Path(__file__).parent / "node"


@pytest.fixture(scope="session")
def node_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/node with its locked dependencies installed (npm ci, from the npm registry)."""
    if not shutil.which("node") or not shutil.which("npm"):
        pytest.skip("Node.js 20+ and npm are needed for the Node SDK test")
    project = tmp_path_factory.mktemp("node")
    for name in ("package.json", "package-lock.json", "roundtrip.mjs"):
        shutil.copy(NODE_DIR / name, project / name)
    subprocess.run(
        ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=project,
        check=True,
        capture_output=True,
        timeout=300,
    )
    return project


def run_roundtrip(project: Path, server: ProcServer, http2: bool) -> dict:
    env = {
        **os.environ,
        "RUNLOOP_BASE_URL": server.base_url,
        "RUNLOOP_API_KEY": server.token,
        "SDK_HTTP2": "1" if http2 else "0",
    }
    done = subprocess.run(
        ["node", "roundtrip.mjs"], cwd=project, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(params=BACKENDS)
def default_server(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    pg_base_url: str | None,
) -> Iterator[ProcServer]:
    """``stowage serve`` with its defaults (the access log at info, as it ships)."""
    with proc_server_on(
        request.param, request, tmp_path_factory, pg_base_url, log_level="info"
    ) as server:
        yield server


def test_node_sdk_unchanged_on_the_default_server(
    node_project: Path, default_server: ProcServer
) -> None:
    """No settings on either side: the SDK opens HTTP/2 with prior knowledge (h2c)."""
    seen = run_roundtrip(node_project, default_server, http2=True)
    assert seen["bytes"] == 256 * 1024 + 3 and seen["listed"] == [seen["id"]]
    assert seen["missing"] == 400
    text = default_server.log_path.read_text().splitlines()
    lines = [json.loads(line) for line in text if line.startswith("{")]  # not the banner
    sdk_calls = [
        line
        for line in lines
        if line.get("request_id", "").startswith("stainless-node-retry-")  # the SDK's own
    ]
    assert sdk_calls and {line["http_version"] for line in sdk_calls} == {"2"}


def test_node_sdk_with_its_http1_opt_out(node_project: Path, proc_server: ProcServer) -> None:
    seen = run_roundtrip(node_project, proc_server, http2=False)
    assert seen["missing"] == 400
