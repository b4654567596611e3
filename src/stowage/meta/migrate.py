"""Run the Alembic migrations shipped inside the package, from code or the CLI."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, create_engine, text
from sqlalchemy.engine import make_url

FIRST_START_LOCK = 0x5704A6E  # any constant shared by every stowage process


def sync_url(url: str) -> str:
    """Alembic runs synchronously: use the blocking driver of the same database."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    elif parsed.get_backend_name() == "sqlite":
        parsed = parsed.set(drivername="sqlite")
    return parsed.render_as_string(hide_password=False)


@contextmanager
def locked_connection(url: str) -> Iterator[Connection]:
    """A connection to the database that, on PostgreSQL, holds a session advisory lock
    until the block ends: replicas starting at once (on any machine) take turns at
    migrating and creating the admin, and the later ones find both done. SQLite has no
    such lock; ``bootstrap`` serialises it with a lock file."""
    engine = create_engine(sync_url(url))
    try:
        with engine.connect() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": FIRST_START_LOCK})
            connection.commit()  # end the autobegun transaction; the session lock stays
            yield connection
    finally:
        engine.dispose()  # closing the session releases the advisory lock


def upgrade(connection: Connection) -> None:
    """Migrate to head on ``connection`` (from ``locked_connection``)."""
    cfg = Config()
    cfg.set_main_option("script_location", "stowage:migrations")
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, "head")
