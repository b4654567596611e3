"""Where the CLI client finds its server: ``stowage login`` saves it, the environment wins.

The token is a credential, so the file is written 0600 from the start (never chmod'ed
after the fact, which would leave a moment where others can read it).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import typer

CONFIG_FILE = "client.json"


class NotLoggedIn(Exception):
    pass


@dataclass(frozen=True)
class Login:
    url: str
    token: str


def config_path() -> Path:
    """``$XDG_CONFIG_HOME/stowage/client.json`` (``~/.config/...``) on Linux."""
    return Path(typer.get_app_dir("stowage")) / CONFIG_FILE


def save(login: Login) -> Path:
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    staged = path.with_suffix(".tmp")
    staged.unlink(missing_ok=True)
    fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({"url": login.url, "token": login.token}, f)
    staged.replace(path)
    return path


def load() -> Login:
    """``STOWAGE_URL`` and ``STOWAGE_TOKEN`` override what ``stowage login`` saved."""
    saved: dict[str, str] = {}
    path = config_path()
    if path.exists():
        try:
            saved = json.loads(path.read_text())
        except (OSError, ValueError):
            saved = {}
    url = os.environ.get("STOWAGE_URL") or saved.get("url")
    token = os.environ.get("STOWAGE_TOKEN") or saved.get("token")
    if not url or not token:
        raise NotLoggedIn(
            "no server configured: run `stowage login URL --token TOKEN`, "
            "or set STOWAGE_URL and STOWAGE_TOKEN"
        )
    return Login(url.rstrip("/"), token)
