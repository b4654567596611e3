"""Alembic environment: online migrations only, on the connection ``stowage.meta.migrate``
passes in (which, on PostgreSQL, holds the first-start advisory lock)."""

from alembic import context
from sqlalchemy import Connection

from stowage.meta.schema import metadata


def run_migrations(connection: Connection) -> None:
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql("PRAGMA journal_mode=WAL")
        connection.commit()  # end the autobegun transaction so Alembic's own one commits
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations(context.config.attributes["connection"])
