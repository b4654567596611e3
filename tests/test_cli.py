"""The server-admin CLI and first-start behaviour, run as real processes."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from stowage.bootstrap import prepare
from stowage.config import Settings
from stowage.core.access import TOKEN_CACHE_SECONDS
from stowage.processes import free_ports, start_serve, wait_healthy

from .backends import BACKENDS, backend_settings
from .harness import ProcServer
from .rawhttp import KeepAlive
from .workers import children, reach_every_worker


def test_first_start_created_private_secrets_and_printed_the_token(
    proc_server: ProcServer,
) -> None:
    for name in ("admin-token", "presign-secret"):
        mode = stat.S_IMODE((proc_server.data_dir / name).stat().st_mode)
        assert mode == 0o600, name
    banner = proc_server.log_path.read_text()
    assert f"listening on {proc_server.base_url}" in banner
    assert proc_server.token in banner
    assert "RUNLOOP_BASE_URL" in banner
    workers = len(children(proc_server.pid))
    assert workers == Settings().workers  # one per usable CPU, as the banner says
    assert f"workers:  {workers} process" in banner
    on_sqlite = "STOWAGE_DATABASE_URL" not in proc_server.env
    assert (proc_server.data_dir / "stowage.db").exists() == on_sqlite


def test_the_same_user_created_twice_at_once_is_one_user_and_one_clear_error(
    proc_server: ProcServer,
) -> None:
    """The name check and the insert were two steps: a racing twin got a traceback."""
    command = [*proc_server.cli_command(), "users", "create", "twin"]
    runs = [
        subprocess.Popen(
            command, env=proc_server.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(4)
    ]
    results = [(run.wait(timeout=60), run.stderr.read() if run.stderr else "") for run in runs]
    assert sorted(code for code, _ in results) == [0, 1, 1, 1]
    for code, stderr in results:
        assert "Traceback" not in stderr
        assert code == 0 or "already exists" in stderr


def test_users_and_tokens_lifecycle(proc_server: ProcServer) -> None:
    created = proc_server.cli("users", "create", "carol", "--email", "carol@example.test")
    assert "created user carol" in created.stdout
    dup = proc_server.cli("users", "create", "carol", check=False)
    assert dup.returncode == 1
    assert "already exists" in dup.stderr

    issued = proc_server.cli(
        "tokens", "create", "--user", "carol", "--scope", "object:read,write", "--name", "ci"
    )
    token = issued.stdout.strip()
    assert token.startswith("stw_")
    assert "shown once" in issued.stderr

    listing = proc_server.cli("tokens", "list", "--user", "carol").stdout
    assert "ci" in listing and token[:12] in listing and token not in listing
    token_id = next(line.split()[1] for line in listing.splitlines() if token[:12] in line)

    headers: dict[str, str | bytes] = {"Authorization": f"Bearer {token}"}
    connections = reach_every_worker(proc_server.pid, proc_server.base_url)
    try:
        for connection in connections:  # every worker has seen (and cached) the token
            assert connection.request("GET", "/v1/objects", headers).status == 200
        revoked = proc_server.cli("tokens", "revoke", token_id)
        assert f"revoked token {token_id}" in revoked.stdout
        refused_everywhere_by(time.monotonic() + TOKEN_CACHE_SECONDS, connections, headers)
    finally:
        for connection in connections:
            connection.__exit__()
    again = proc_server.cli("tokens", "revoke", token_id, check=False)
    assert again.returncode == 1


def test_quotas_and_usage(proc_server: ProcServer) -> None:
    proc_server.cli("users", "create", "quinn")
    token = proc_server.cli(
        "tokens", "create", "--user", "quinn", "--scope", "object:write namespace:write,delete"
    ).stdout.strip()
    auth = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=proc_server.base_url, headers=auth) as c:
        assert c.post("/namespaces", json={"name": "builds"}).status_code == 201
        assert (
            c.post("/namespaces", json={"name": "nightly", "parent": "builds"}).status_code == 201
        )
        params = {"name": "a.bin", "namespace": "builds/nightly"}
        assert c.post("/objects", params=params, content=b"a" * 1536).status_code == 201

    table = proc_server.cli("quotas", "set", "--user", "quinn", "--max-bytes", "10GiB").stdout
    assert re.search(r"quinn\s*│\s*1\s*│\s*│\s*1.5 KiB\s*│\s*10.0 GiB", table)
    proc_server.cli("quotas", "set", "--user", "quinn", "--max-objects", "100")  # bytes stay
    proc_server.cli("quotas", "set", "--namespace", "builds@quinn", "--max-bytes", "500MB")
    listed = proc_server.cli("quotas", "list", "--bytes").stdout
    assert re.search(r"quinn\s*│\s*1\s*│\s*100\s*│\s*1536\s*│\s*10737418240", listed)
    assert re.search(r"builds@quinn\s*│\s*1\s*│\s*│\s*1536\s*│\s*500000000", listed)
    usage = proc_server.cli("usage", "--user", "quinn", "--bytes").stdout
    assert re.search(r"quinn\s*│\s*1\s*│\s*100\s*│\s*1536\s*│\s*10737418240", usage)
    everyone = proc_server.cli("usage").stdout
    assert "quinn" in everyone and "builds@quinn" in everyone

    for args, message in [
        (["set", "--user", "quinn", "--max-bytes", "lots"], "is not a size"),
        (["set", "--user", "quinn"], "give --max-bytes, --max-objects or both"),
        (["set", "--user", "nobody", "--max-objects", "1"], "no user named 'nobody'"),
        (["set", "--namespace", "builds/nightly@quinn", "--max-objects", "1"], "root namespaces"),
        (["set", "--namespace", "builds", "--max-objects", "1"], "PATH@OWNER"),
        (["clear", "--user", "quinn", "--namespace", "builds@quinn"], "a user (--user NAME) or"),
        (["set", "--user", "quinn", "--max-objects", "-1"], "between 0 and"),
    ]:
        refused = proc_server.cli("quotas", *args, check=False)
        assert refused.returncode == 1, args
        assert message in refused.stderr, (args, refused.stderr)

    assert "cleared" in proc_server.cli("quotas", "clear", "--user", "quinn").stdout
    with httpx.Client(base_url=proc_server.base_url, headers=auth) as c:
        assert c.delete("/n/quinn/builds").status_code == 204  # its quota goes with it
    again = proc_server.cli("quotas", "clear", "--user", "quinn", check=False)
    assert again.returncode == 1 and "has no quota" in again.stderr
    assert "quinn" not in proc_server.cli("quotas", "list").stdout


def refused_everywhere_by(
    deadline: float, connections: list[KeepAlive], headers: dict[str, str | bytes]
) -> None:
    """Poll every worker with a revoked token: from ``deadline`` on, all must refuse it."""
    while True:
        now = time.monotonic()
        statuses = {c.request("GET", "/v1/objects", headers).status for c in connections}
        if now > deadline:
            assert statuses == {401}, "a worker still honours the revoked token"
            return
        assert statuses <= {200, 401}
        time.sleep(0.05)


def test_bad_cli_input_gives_a_message_and_nonzero_exit(proc_server: ProcServer) -> None:
    cases = [
        (["tokens", "create", "--user", "admin", "--scope", "object:fly"], "unknown permission"),
        (["tokens", "create", "--user", "admin", "--scope", "objects:read"], "unknown scope"),
        (["tokens", "create", "--user", "nobody", "--scope", "object:read"], "no user named"),
        (["users", "create", "bad name!"], "user name must be"),
    ]
    for args, message in cases:
        result: subprocess.CompletedProcess[str] = proc_server.cli(*args, check=False)
        assert result.returncode == 1, args
        assert message in result.stderr, args
        assert "Traceback" not in result.stderr


def test_a_second_start_keeps_the_admin_and_does_not_reprint_a_token(
    proc_server: ProcServer,
) -> None:
    port = free_ports(1)[0]
    env = {**proc_server.env, "STOWAGE_PORT": str(port)}
    proc = subprocess.Popen(
        [*proc_server.cli_command(), "serve"], env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        wait_healthy(f"http://127.0.0.1:{port}", proc)
        headers = {"Authorization": f"Bearer {proc_server.token}"}
        assert httpx.get(f"http://127.0.0.1:{port}/v1/objects", headers=headers).status_code == 200
    finally:
        proc.terminate()
        banner, _ = proc.communicate(timeout=20)
    assert "stw_" not in banner
    assert "admin token: in" in banner


@pytest.mark.parametrize("backend", BACKENDS)
def test_servers_starting_together_on_a_fresh_store_make_one_admin(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path, pg_base_url: str | None
) -> None:
    """Replicas start together in a deployment: on a fresh store every one of them must come
    up (first-start work waits its turn), and exactly one creates the admin and prints its
    token. Here they share one data directory, and on PostgreSQL one schema."""
    replicas = 5
    with backend_settings(backend, request, pg_base_url) as extra:
        env = {
            **os.environ,
            "STOWAGE_DATA_DIR": str(tmp_path / "data"),
            "STOWAGE_LOG_LEVEL": "warning",
            **{f"STOWAGE_{k.upper()}": v for k, v in extra.items()},
        }
        logs = [tmp_path / f"serve-{i}.log" for i in range(replicas)]
        ports = free_ports(replicas)
        procs = []
        for port, log in zip(ports, logs, strict=True):
            with open(log, "wb") as out:
                command = [*ProcServer.cli_command(), "serve"]
                env_i = {**env, "STOWAGE_PORT": str(port)}
                procs.append(subprocess.Popen(command, env=env_i, stdout=out, stderr=out))
        try:
            for port, proc, log in zip(ports, procs, logs, strict=True):
                try:
                    wait_healthy(f"http://127.0.0.1:{port}", proc, timeout_s=90)
                except RuntimeError:
                    pytest.fail(f"a server did not come up:\n{log.read_text()}")
            token = (tmp_path / "data" / "admin-token").read_text().strip()
            headers = {"Authorization": f"Bearer {token}"}
            for port in ports:
                me = httpx.get(f"http://127.0.0.1:{port}/user", headers=headers)
                assert me.json()["username"] == "admin"
            listing = subprocess.run(
                [*ProcServer.cli_command(), "tokens", "list"],
                env={**env, "COLUMNS": "300"},  # one line a token
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                proc.wait(timeout=30)
    assert [log.read_text().count(token) for log in logs].count(1) == 1
    assert sum(log.read_text().count("stw_") for log in logs) == 1
    assert listing.count("admin (first start)") == 1


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_first_start_keeps_the_data_directory_private(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path, pg_base_url: str | None
) -> None:
    """The database holds names, emails and token hashes: under the usual umask (022) a
    first start must still leave the data directory 0700 and every file in it 0600."""
    data = tmp_path / "data"
    with backend_settings(backend, request, pg_base_url) as extra:
        env = {f"STOWAGE_{k.upper()}": v for k, v in extra.items()}
        proc, base = start_serve(data, env=env, preexec_fn=lambda: os.umask(0o022))
        try:
            token = (data / "admin-token").read_text().strip()
            headers = {"Authorization": f"Bearer {token}"}
            # Past STOWAGE_INLINE_MAX_BYTES, so that its blob is a file of its own.
            body = b"private" * 3000
            up = httpx.post(f"{base}/objects?name=a.txt", headers=headers, content=body)
            assert up.status_code == 201
            assert _mode(data) == 0o700
            files = [p for p in data.rglob("*") if p.is_file()]
            names = {p.name for p in files}
            assert {"admin-token", "presign-secret", "first-start.lock"} <= names
            if backend == "sqlite-local":
                assert {"stowage.db", "stowage.db-wal", "stowage.db-shm"} <= names
                assert len([p for p in files if p.parent.parent.name == "blobs"]) == 1
            assert {p.name: _mode(p) for p in files} == {p.name: 0o600 for p in files}
        finally:
            proc.terminate()
            proc.wait(timeout=30)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_start_tightens_an_existing_installation_and_says_so(
    backend: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    pg_base_url: str | None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Installations made before stowage kept its files private have a 0755 data directory
    and a 0644 database: the next start narrows them and logs what it changed."""
    with backend_settings(backend, request, pg_base_url) as extra:
        settings = Settings(**extra, data_dir=tmp_path / "data")  # type: ignore[arg-type]
        prepare(settings)
        loose = [p for p in (tmp_path / "data").iterdir() if p.is_file()]
        (tmp_path / "data").chmod(0o755)
        for path in loose:
            path.chmod(0o644)
        prepare(settings)
    assert _mode(tmp_path / "data") == 0o700
    assert {p.name: _mode(p) for p in loose} == {p.name: 0o600 for p in loose}
    warned = " ".join(r.getMessage() for r in caplog.records if r.levelname == "WARNING")
    for path in [tmp_path / "data", *loose]:
        assert str(path) in warned
