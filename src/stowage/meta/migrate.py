"""Run the Alembic migrations shipped inside the package, from code or the CLI."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import make_url


def sync_url(url: str) -> str:
    """Alembic runs synchronously: use the blocking driver of the same database."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    elif parsed.get_backend_name() == "sqlite":
        parsed = parsed.set(drivername="sqlite")
    return parsed.render_as_string(hide_password=False)


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", "stowage:migrations")
    cfg.set_main_option("sqlalchemy.url", sync_url(url).replace("%", "%%"))
    return cfg


def upgrade(url: str) -> None:
    command.upgrade(alembic_config(url), "head")
