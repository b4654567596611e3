"""Alembic environment: online migrations only, on the URL stowage.meta.migrate passes in.

On PostgreSQL a session advisory lock serialises concurrent ``stowage migrate`` runs from
several replicas: the first migrates, the others wait and then find nothing to do.
"""

from alembic import context
from sqlalchemy import create_engine, text

from stowage.meta.schema import metadata

config = context.config
MIGRATION_LOCK = 0x5704A6E  # any constant shared by every stowage process


def run_migrations() -> None:
    engine = create_engine(config.get_main_option("sqlalchemy.url"))
    with engine.connect() as connection:
        if connection.dialect.name == "sqlite":
            connection.exec_driver_sql("PRAGMA journal_mode=WAL")
        else:
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK})
        connection.commit()  # end the autobegun transaction so Alembic's own one commits
        context.configure(
            connection=connection,
            target_metadata=metadata,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()  # closing the session releases the advisory lock


run_migrations()
