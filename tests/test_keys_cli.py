"""``stowage keys``: S3 access keys made, listed, rotated and revoked by the real command
against a server's data directory, on each backend. The secret is shown once, derived
alike by the CLI and a server process, and stored nowhere."""

from __future__ import annotations

import subprocess

from stowage.backends import open_metadata
from stowage.bootstrap import load_secret
from stowage.config import Settings
from stowage.core.access import AccessService, Principal, parse_scopes
from stowage.core.clock import SystemClock

from .aio import run
from .harness import ProcServer

SCOPES = "object:read,write,delete namespace:read,write"


def issued(result: subprocess.CompletedProcess[str]) -> tuple[str, str]:
    """The access key id and secret from the ``export`` lines ``create``/``rotate`` print."""
    lines = dict(line.removeprefix("export ").split("=", 1) for line in result.stdout.splitlines())
    assert set(lines) == {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}, result.stdout
    return lines["AWS_ACCESS_KEY_ID"], lines["AWS_SECRET_ACCESS_KEY"]


def as_the_server_sees_it(server: ProcServer, key: str) -> tuple[Principal, str] | None:
    """``key_for`` in a process of its own with the server's settings, as a worker runs it."""
    settings = Settings(  # type: ignore[arg-type]
        **{
            field: server.env[f"STOWAGE_{field.upper()}"]
            for field in Settings.model_fields
            if f"STOWAGE_{field.upper()}" in server.env
        }
    )

    async def look_up() -> tuple[Principal, str] | None:
        meta = open_metadata(settings)
        try:
            return await AccessService(meta, SystemClock(), load_secret(settings)).key_for(key)
        finally:
            await meta.close()

    return run(look_up())


def stored_bytes(server: ProcServer) -> bytes | None:
    """Everything the SQLite database holds, WAL included; None on PostgreSQL."""
    files = [server.data_dir / f"stowage.db{suffix}" for suffix in ("", "-wal")]
    if "STOWAGE_DATABASE_URL" in server.env:
        return None
    return b"".join(path.read_bytes() for path in files if path.exists())


def test_keys_lifecycle(proc_server: ProcServer) -> None:
    proc_server.cli("users", "create", "kim")
    created = proc_server.cli(
        "keys", "create", "--user", "kim", "--scope", SCOPES, "--name", "laptop"
    )
    key, secret = issued(created)
    assert key.startswith("STW") and len(key) == 20 and len(secret) == 40
    assert "shown once" in created.stderr and "aws configure" in created.stderr
    assert secret not in created.stderr  # printed once, on stdout

    found = as_the_server_sees_it(proc_server, key)
    assert found is not None
    principal, derived = found
    assert (principal.user.name, principal.scopes, derived) == ("kim", parse_scopes(SCOPES), secret)

    listing = proc_server.cli("keys", "list", "--user", "kim").stdout
    assert key in listing and "laptop" in listing
    assert secret not in listing
    assert key not in proc_server.cli("tokens", "list").stdout  # keys are not bearer tokens

    rotated = proc_server.cli("keys", "rotate", key)
    same_key, new_secret = issued(rotated)
    assert same_key == key and new_secret != secret
    assert as_the_server_sees_it(proc_server, key) == (principal, new_secret)

    stored = stored_bytes(proc_server)
    if stored is not None:
        assert key.encode() in stored  # the grep would find what is there
        assert secret.encode() not in stored and new_secret.encode() not in stored

    revoked = proc_server.cli("keys", "revoke", key)
    assert f"revoked access key {key}" in revoked.stdout
    assert as_the_server_sees_it(proc_server, key) is None
    assert "yes" in proc_server.cli("keys", "list", "--user", "kim").stdout
    for again in (["revoke", key], ["rotate", key]):
        refused = proc_server.cli("keys", *again, check=False)
        assert refused.returncode == 1 and "no live access key" in refused.stderr


def test_bad_keys_input_gives_a_message_and_exit_1(proc_server: ProcServer) -> None:
    cases = [
        (["create", "--user", "admin", "--scope", "object:fly"], "unknown permission"),
        (["create", "--user", "nobody", "--scope", "object:read"], "no user named"),
        (["list", "--user", "nobody"], "no user named"),
        (["revoke", "STW00000000000000000"], "no live access key"),
    ]
    for args, message in cases:
        result = proc_server.cli("keys", *args, check=False)
        assert result.returncode == 1, args
        assert message in result.stderr, args
        assert "Traceback" not in result.stderr
        assert "AWS_SECRET_ACCESS_KEY" not in result.stdout
