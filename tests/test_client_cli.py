"""The client commands (login, put, get, ls, info, rm, share) as a user runs them: the
real ``stowage`` CLI in a subprocess against a live server, on both backends."""

from __future__ import annotations

import hashlib
import io
import json
import os
import pty
import re
import socket
import stat
import subprocess
import sys
import tarfile
import threading
import uuid
from pathlib import Path

import httpx
import pytest

from .harness import ProcServer

CLI = [sys.executable, "-m", "stowage.cli"]


class User:
    """One person's shell: a config directory of their own, and the server to use."""

    def __init__(self, server: ProcServer, home: Path, token: str | None = None) -> None:
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("STOWAGE_")},
            "XDG_CONFIG_HOME": str(home / "config"),
            "STOWAGE_URL": server.base_url,
            "STOWAGE_TOKEN": token or server.token,
        }
        self.cwd = home

    def run(
        self, *args: str, stdin: bytes | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[bytes]:
        done = subprocess.run(
            [*CLI, *args], env=self.env, cwd=self.cwd, input=stdin, capture_output=True, timeout=120
        )
        if check:
            assert done.returncode == 0, done.stderr.decode()
        return done

    def text(self, *args: str, stdin: bytes | None = None) -> str:
        return self.run(*args, stdin=stdin).stdout.decode().strip()


@pytest.fixture
def user(proc_server: ProcServer, tmp_path: Path) -> User:
    return User(proc_server, tmp_path)


def unique(suffix: str) -> str:
    return f"t{uuid.uuid4().hex[:10]}{suffix}"


def test_put_and_get_a_file_byte_for_byte(user: User, tmp_path: Path) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)
    (tmp_path / "blob.bin").write_bytes(data)
    name = unique(".bin")
    object_id = user.text("put", "blob.bin", "--name", name)
    assert re.fullmatch(r"obj_[0-9a-z]+", object_id)
    assert user.text("get", object_id, "-o", "copy.bin") == ""
    assert (tmp_path / "copy.bin").read_bytes() == data
    user.run("get", object_id)  # no -o: named after the object, in the working directory
    assert (tmp_path / name).read_bytes() == data
    assert not list(tmp_path.glob(".*.part"))


def test_a_directory_goes_up_as_tar_gz_and_comes_back_whole(user: User, tmp_path: Path) -> None:
    tree = tmp_path / "site"
    (tree / "css").mkdir(parents=True)
    (tree / "index.html").write_text("<h1>hi</h1>")
    (tree / "css" / "a.css").write_bytes(os.urandom(5000))
    object_id = user.text("put", "site", "--name", unique(".tar.gz"))
    info = json.loads(user.text("info", object_id, "--json"))
    assert info["content_type"] == "tgz"
    archive = user.run("get", object_id, "-o", "-").stdout
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert (
            tar.extractfile(members["site/css/a.css"]).read()
            == (  # type: ignore[union-attr]
                tree / "css" / "a.css"
            ).read_bytes()
        )
        assert tar.extractfile(members["site/index.html"]).read() == b"<h1>hi</h1>"  # type: ignore[union-attr]


def test_stdin_to_stdout(user: User) -> None:
    data = os.urandom(200_000)
    object_id = user.text("put", "-", "--name", unique(".bin"), stdin=data)
    assert user.run("get", object_id, "-o", "-").stdout == data
    refused = user.run("put", "-", stdin=b"x", check=False)
    assert refused.returncode == 1 and b"needs --name" in refused.stderr


def test_ls_search_json_and_info(user: User, tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("alpha")
    tag = unique("")
    first = user.text(
        "put", "a.txt", "--name", f"{tag}-one.txt", "--meta", "build=7", "--ttl", "2d"
    )
    second = user.text("put", "a.txt", "--name", f"{tag}-two.txt")
    listing = user.text("ls", "--search", tag).splitlines()
    assert listing[0].split()[:3] == ["ID", "SIZE", "STATE"]
    assert [line.split()[0] for line in listing[1:]] == [second, first]  # newest first
    rows = [json.loads(line) for line in user.text("ls", "--search", tag, "--json").splitlines()]
    assert [r["name"] for r in rows] == [f"{tag}-two.txt", f"{tag}-one.txt"]
    facts = json.loads(user.text("info", first, "--json"))
    assert facts["metadata"] == {"build": "7"}
    assert facts["sha256"] == hashlib.sha256(b"alpha").hexdigest()
    assert facts["size"] == 5 and facts["expires"] != "-"
    assert first in user.text("info", first)
    nothing = user.text("ls", "--search", unique(""))
    assert nothing == "ID  SIZE  STATE  CREATED (UTC)  EXPIRES (UTC)  NAME"


def test_share_link_needs_no_token(user: User, tmp_path: Path) -> None:
    (tmp_path / "s.txt").write_text("shared bytes")
    object_id = user.text("put", "s.txt", "--name", unique(".txt"))
    url = user.text("share", object_id, "--expires", "10m")
    assert httpx.get(url).content == b"shared bytes"


def test_namespace_upload_and_rm(user: User, tmp_path: Path) -> None:
    (tmp_path / "n.txt").write_text("in a namespace")
    name = unique(".txt")
    object_id = user.text("put", "n.txt", "--name", name, "--namespace", "cli/tests")
    assert json.loads(user.text("info", object_id, "--json"))["namespace"] == "cli/tests"
    mixed = user.run("put", "n.txt", "--namespace", "cli", "--ttl", "1h", check=False)
    assert mixed.returncode == 2 and b"--ttl" in mixed.stderr
    other = user.text("put", "n.txt", "--name", unique(".txt"))
    assert user.run("rm", object_id, other).stderr.count(b"deleted") == 2
    gone = user.run("get", object_id, "-o", "-", check=False)
    assert gone.returncode == 1 and b"not found" in gone.stderr
    assert user.run("rm", object_id).returncode == 0  # deleting twice is not an error
    unknown = user.run("rm", "obj_doesnotexist", other, check=False)
    assert unknown.returncode == 1 and b"error:" in unknown.stderr


def test_errors_are_one_line_and_exit_1(
    user: User, proc_server: ProcServer, tmp_path: Path
) -> None:
    bad = User(proc_server, tmp_path, token="stw_not-a-real-token")
    refused = bad.run("ls", check=False)
    assert refused.returncode == 1
    assert b"refused the token" in refused.stderr and b"Traceback" not in refused.stderr
    unknown = user.run("info", "obj_doesnotexist", check=False)
    assert unknown.returncode == 1 and b"not found" in unknown.stderr
    missing = user.run("put", "no-such-file", check=False)
    assert missing.returncode == 1 and b"no such file" in missing.stderr
    nowhere = User(proc_server, tmp_path)
    nowhere.env["STOWAGE_URL"] = "http://127.0.0.1:9"
    down = nowhere.run("ls", check=False)
    assert down.returncode == 1 and b"cannot reach" in down.stderr
    bad_ttl = user.run("put", "x", "--ttl", "soon", check=False)
    assert bad_ttl.returncode == 2 and b"not a duration" in bad_ttl.stderr
    for command in ("put", "get", "ls", "info", "rm", "share", "login"):
        assert b"Usage:" in user.run(command, "--help").stdout


def test_login_saves_a_private_config_that_later_commands_use(
    proc_server: ProcServer, tmp_path: Path
) -> None:
    shell = User(proc_server, tmp_path)
    del shell.env["STOWAGE_URL"], shell.env["STOWAGE_TOKEN"]
    assert b"no server configured" in shell.run("ls", check=False).stderr
    wrong = shell.run("login", proc_server.base_url, "--token", "stw_wrong", check=False)
    assert wrong.returncode == 1 and b"refused the token" in wrong.stderr
    logged_in = shell.run("login", proc_server.base_url, "--token", proc_server.token)
    assert b"as admin" in logged_in.stderr
    saved = tmp_path / "config" / "stowage" / "client.json"
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    assert json.loads(saved.read_text())["url"] == proc_server.base_url
    assert shell.text("ls", "--limit", "1").startswith("ID")
    shell.env["STOWAGE_TOKEN"] = "stw_overridden"  # the environment wins over the file
    assert shell.run("ls", check=False).returncode == 1


def run_in_terminal(user: User, *args: str) -> bytes:
    """Run the CLI with a pseudo-terminal as stdout and stderr, as in an interactive shell."""
    controller, terminal = pty.openpty()
    env = {**user.env, "TERM": "xterm-256color", "COLUMNS": "120"}
    process = subprocess.Popen(
        [*CLI, *args],
        env=env,
        cwd=user.cwd,
        stdin=subprocess.DEVNULL,
        stdout=terminal,
        stderr=terminal,
    )
    os.close(terminal)
    seen = b""
    while True:
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # EIO: the last writer closed the terminal
            break
        if not chunk:
            break
        seen += chunk
    os.close(controller)
    assert process.wait(timeout=120) == 0, seen.decode(errors="replace")
    return seen


def test_progress_bar_on_a_terminal_and_none_in_a_pipe(user: User, tmp_path: Path) -> None:
    (tmp_path / "big.bin").write_bytes(os.urandom(12 * 1024 * 1024))
    shown = run_in_terminal(user, "put", "big.bin", "--name", unique(".bin"))
    assert b"12.0/12.0 MiB" in shown and b"/s" in shown, shown  # bytes, total and speed
    assert "━".encode() in shown  # the bar itself
    object_id = re.findall(rb"obj_[0-9a-z]+", shown)[-1].decode()
    fetched = run_in_terminal(user, "get", object_id, "-o", "back.bin")
    assert b"12.0/12.0 MiB" in fetched
    assert (tmp_path / "back.bin").read_bytes() == (tmp_path / "big.bin").read_bytes()
    piped = user.run("put", "big.bin", "--name", unique(".bin"))
    assert b"MiB/s" not in piped.stderr and b"\x1b[" not in piped.stderr
    assert piped.stderr.decode().startswith("stored ")


def test_a_download_cut_short_leaves_no_file(user: User, tmp_path: Path) -> None:
    """A server that promises a megabyte and hangs up after ten bytes (a dropped link)."""
    listener = socket.create_server(("127.0.0.1", 0))

    def answer_once() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n0123456789")

    threading.Thread(target=answer_once, daemon=True).start()
    user.env["STOWAGE_URL"] = f"http://127.0.0.1:{listener.getsockname()[1]}"
    cut = user.run("get", "obj_anything", "-o", "out.bin", check=False)
    listener.close()
    assert cut.returncode == 1 and b"connection to the server failed" in cut.stderr, cut.stderr
    assert b"Traceback" not in cut.stderr
    assert not (tmp_path / "out.bin").exists() and not list(tmp_path.glob(".out.bin.*"))
