"""First-start work shared by ``stowage serve``, the CLI and test fixtures.

Creates the data directory, runs migrations, loads or generates the presigning secret and,
on an empty store, creates the admin user with a token that is shown exactly once.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from .config import Settings
from .core.access import ALL_SCOPES, AccessService
from .core.clock import SystemClock
from .meta.migrate import upgrade
from .meta.sql import SqlMetadataStore

SECRET_FILE = "presign-secret"
ADMIN_TOKEN_FILE = "admin-token"


@dataclass(frozen=True)
class Prepared:
    presign_secret: bytes
    new_admin_token: str | None  # set only on the start that created the admin


def write_private(path: Path, text: str) -> None:
    """Create ``path`` readable by its owner only, failing if it already exists."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text + "\n")
        f.flush()
        os.fsync(f.fileno())


def load_secret(settings: Settings) -> bytes:
    if settings.presign_secret:
        return settings.presign_secret.encode()
    path = settings.data_dir / SECRET_FILE
    if not path.exists():
        write_private(path, secrets.token_hex(32))
    return path.read_text().strip().encode()


async def _ensure_admin(settings: Settings) -> str | None:
    meta = SqlMetadataStore(settings.sqlalchemy_url)
    try:
        if await meta.count_users() > 0:
            return None
        access = AccessService(meta, SystemClock())
        await access.create_user("admin", None, is_admin=True)
        issued = await access.issue_token("admin", ALL_SCOPES, "admin (first start)")
    finally:
        await meta.close()
    token_path = settings.data_dir / ADMIN_TOKEN_FILE
    token_path.unlink(missing_ok=True)
    write_private(token_path, issued.secret)
    return issued.secret


def migrate(settings: Settings) -> None:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.sqlalchemy_url)


def prepare(settings: Settings) -> Prepared:
    migrate(settings)
    secret = load_secret(settings)
    return Prepared(presign_secret=secret, new_admin_token=asyncio.run(_ensure_admin(settings)))
