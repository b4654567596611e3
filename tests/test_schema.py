"""The Alembic migrations build exactly the tables of ``meta/schema.py``, on both databases."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from stowage.meta.database import driver_url
from stowage.meta.migrate import locked_connection, upgrade
from stowage.meta.schema import metadata

from .backends import database_url

# What SQLAlchemy cannot model: PostgreSQL's trigram indexes (migration 0003, expressions)
# and SQLite's FTS5 name index with its shadow tables (0006).
MIGRATION_ONLY = {
    "ix_objects_name_trgm",
    "ix_namespaces_path_trgm",
    "ix_objects_namespace_name_bytes",
    *(f"objects_fts{part}" for part in ("", "_data", "_idx", "_docsize", "_config")),
}
REMOVALS = ("remove_index", "remove_table")


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_migrations_match_the_schema(backend: str, tmp_path: Path, pg_base_url: str | None) -> None:
    with database_url(backend, pg_base_url) as url:
        url = url or f"sqlite:///{tmp_path / 'stowage.db'}"
        with locked_connection(url) as connection:
            upgrade(connection)
        engine = create_engine(driver_url(url))
        try:
            with engine.connect() as conn:
                context = MigrationContext.configure(conn, opts={"compare_type": True})
                differences = [
                    diff
                    for diff in compare_metadata(context, metadata)
                    if not (diff[0] in REMOVALS and diff[1].name in MIGRATION_ONLY)
                ]
        finally:
            engine.dispose()
    assert differences == []
