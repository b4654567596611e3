"""The MetadataStore on SQLAlchemy Core, for SQLite and PostgreSQL alike: one part per
aggregate (``accounts``, ``objects`` with its ``listing``, ``namespaces``), each a class
over the shared ``database.Database``, combined here into the facade the process opens."""

from __future__ import annotations

from .accounts import SqlAccounts
from .namespaces import SqlNamespaces
from .objects import SqlObjects


class SqlMetadataStore(SqlAccounts, SqlObjects, SqlNamespaces):
    """``core.ports.MetadataStore``: every part on one database handle."""
