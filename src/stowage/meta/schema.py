"""Table definitions. The Alembic migrations create exactly these; keep the two in step."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets a BIGINT identity.
Id = BigInteger().with_variant(Integer(), "sqlite")

metadata = MetaData()

users = Table(
    "users",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("email", String(320)),
    Column("is_admin", Boolean, nullable=False, default=False),
    Column("created_at_ms", BigInteger, nullable=False),
    sqlite_autoincrement=True,
)

tokens = Table(
    "tokens",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("user_id", Id, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(128), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("prefix", String(16), nullable=False),
    Column("scopes", Text, nullable=False),
    Column("created_at_ms", BigInteger, nullable=False),
    Column("revoked_at_ms", BigInteger),
    sqlite_autoincrement=True,
)

objects = Table(
    "objects",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("public_id", String(40), nullable=False, unique=True),
    Column("owner_id", Id, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("author_id", Id, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("name", Text, nullable=False),
    Column("content_type", String(16), nullable=False),
    Column("state", String(16), nullable=False),
    Column("metadata_json", Text),
    Column("create_time_ms", BigInteger, nullable=False),
    Column("delete_after_time_ms", BigInteger),
    Column("deleted_time_ms", BigInteger),
    Column("size", BigInteger),
    Column("md5", String(32)),
    Column("sha256", String(64)),
    Column("blob_key", String(64)),
    Index("ix_objects_owner_public_id", "owner_id", "public_id"),
    Index("ix_objects_delete_after", "delete_after_time_ms"),
    Index("ix_objects_deleted_time", "deleted_time_ms"),
    sqlite_autoincrement=True,  # ids are shown to clients: never reuse one
)

object_metadata = Table(
    "object_metadata",
    metadata,
    Column("object_id", Id, ForeignKey("objects.id", ondelete="CASCADE"), primary_key=True),
    Column("key", String(256), primary_key=True),
    Column("value", Text, nullable=False),
    Index("ix_object_metadata_key", "key"),
)
