"""The server-admin CLI and first-start behaviour, run as real processes."""

from __future__ import annotations

import stat
import subprocess

import httpx

from .conftest import ProcServer


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
    on_sqlite = "STOWAGE_DATABASE_URL" not in proc_server.env
    assert (proc_server.data_dir / "stowage.db").exists() == on_sqlite


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

    headers = {"Authorization": f"Bearer {token}"}
    assert httpx.get(f"{proc_server.base_url}/v1/objects", headers=headers).status_code == 200
    revoked = proc_server.cli("tokens", "revoke", token_id)
    assert f"revoked token {token_id}" in revoked.stdout
    assert httpx.get(f"{proc_server.base_url}/v1/objects", headers=headers).status_code == 401
    again = proc_server.cli("tokens", "revoke", token_id, check=False)
    assert again.returncode == 1


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
    from stowage.processes import free_port, wait_healthy

    port = free_port()
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
