"""The MetadataStore on SQLAlchemy Core, for SQLite and PostgreSQL alike: one part per
aggregate (``accounts``, ``objects`` with its ``listing`` and ``multipart``, ``namespaces``,
``retention``, ``quotas``), each a class over the shared ``database.Database``, combined
here into the facade the process opens."""

from __future__ import annotations

from .accounts import SqlAccounts
from .multipart import SqlMultipart
from .namespaces import SqlNamespaces
from .quotas import SqlQuotas
from .retention import SqlRetention


class SqlMetadataStore(SqlAccounts, SqlMultipart, SqlNamespaces, SqlRetention, SqlQuotas):
    """``core.ports.MetadataStore``: every part on one database handle."""
