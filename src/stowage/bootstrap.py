"""First-start work shared by ``stowage serve``, the CLI and test fixtures.

Creates the data directory, runs migrations, loads or generates the presigning secret and,
on an empty store, creates the admin user with a token that is shown exactly once.

Replicas of a deployment start together, so all of it runs under one lock: an ``flock`` on
a file in the data directory (the SQLite database, the secret and the token file live
there) and, on PostgreSQL, a session advisory lock (replicas on other machines). The first
process does the work; the others wait, then find it done.

The data directory is private to stowage's user: the database holds user names, emails
and token hashes, and the secret and the token file are credentials.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection

from .backends import open_metadata
from .config import Settings
from .core.access import ALL_SCOPES, AccessService
from .core.clock import SystemClock
from .meta.database import sqlite_file, writer_lock_file
from .meta.migrate import locked_connection, upgrade

SECRET_FILE = "presign-secret"
ADMIN_TOKEN_FILE = "admin-token"
LOCK_FILE = "first-start.lock"
PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Prepared:
    presign_secret: bytes
    new_admin_token: str | None  # set only on the start that created the admin


def write_private(path: Path, text: str) -> None:
    """Create ``path`` readable by its owner only, failing if it already exists."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
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


async def _ensure_admin(settings: Settings, secret: bytes) -> str | None:
    meta = open_metadata(settings)
    try:
        if await meta.count_users() > 0:
            return None
        access = AccessService(meta, SystemClock(), secret)
        await access.create_user("admin", None, is_admin=True)
        issued = await access.issue_token("admin", ALL_SCOPES, "admin (first start)")
    finally:
        await meta.close()
    token_path = settings.data_dir / ADMIN_TOKEN_FILE
    token_path.unlink(missing_ok=True)
    write_private(token_path, issued.secret)
    return issued.secret


def tighten(path: Path, private: int) -> None:
    """Take from ``path`` every permission bit outside ``private``, and say so: stores made
    before stowage kept its files private have a 0755 directory and a 0644 database."""
    try:
        mode = path.stat().st_mode & 0o777
    except FileNotFoundError:
        return
    if not mode & ~private:
        return
    try:
        path.chmod(mode & private)
    except OSError as exc:  # not ours to change; the operator has to
        log.warning("could not make %s private (mode %o): %s", path, mode, exc)
    else:
        log.warning("made %s private: mode %o is now %o", path, mode, mode & private)


def keep_private(settings: Settings) -> None:
    """Create the SQLite database 0600 before SQLite does (it would use 0644 less the
    umask; its -wal and -shm files copy the database's mode), and narrow what an older
    start left readable to others. Blob files are created 0600 by the blob store."""
    tighten(settings.data_dir, PRIVATE_DIR)
    files = [settings.data_dir / name for name in (LOCK_FILE, SECRET_FILE, ADMIN_TOKEN_FILE)]
    database = sqlite_file(settings.sqlalchemy_url)
    if database is not None:
        if database.parent.is_dir():
            os.close(os.open(database, os.O_WRONLY | os.O_CREAT, PRIVATE_FILE))
        files += [database, Path(f"{database}-wal"), Path(f"{database}-shm")]
        files.append(writer_lock_file(database))
    for path in files:
        tighten(path, PRIVATE_FILE)


@contextmanager
def first_start_lock(settings: Settings) -> Iterator[Connection]:
    """Hold the first-start lock (see the module docstring) and a database connection that,
    on PostgreSQL, carries its advisory half."""
    settings.data_dir.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
    fd = os.open(settings.data_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, PRIVATE_FILE)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # released when fd closes, or the process dies
        keep_private(settings)
        with locked_connection(settings.sqlalchemy_url) as connection:
            yield connection
    finally:
        os.close(fd)


def migrate(settings: Settings) -> None:
    with first_start_lock(settings) as connection:
        upgrade(connection)


def migrate_for_admin(settings: Settings) -> bytes:
    """Migrate, and load the presign secret, which the admin CLI derives S3 secret keys
    from; under the lock, so a CLI run on a fresh store and a first start make one secret."""
    with first_start_lock(settings) as connection:
        upgrade(connection)
        return load_secret(settings)


def prepare(settings: Settings) -> Prepared:
    with first_start_lock(settings) as connection:
        upgrade(connection)
        secret = load_secret(settings)
        new_admin_token = asyncio.run(_ensure_admin(settings, secret))
    return Prepared(presign_secret=secret, new_admin_token=new_admin_token)
