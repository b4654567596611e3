"""Table definitions. The Alembic migrations create exactly these; keep the two in step.

Constraints that a write can break in normal use are named, because ``meta.constraints``
tells them apart by name: the unique indexes, and the foreign keys to a namespace, which may
be deleted while a write that names it is in flight. The migrations left most foreign keys
to PostgreSQL's default names (``<table>_<column>_fkey``); the names here are those.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    text,
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
    # S3 access keys (migration 0007) are token rows with these set; see core/keys.py.
    Column("access_key_id", String(20)),
    Column("secret_salt", String(32)),
    Index("uq_tokens_access_key_id", "access_key_id", unique=True),
    sqlite_autoincrement=True,
)

namespaces = Table(
    "namespaces",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("owner_id", Id, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    # A root's root_id is its own id, so it is set right after the insert.
    Column("root_id", Id),
    Column(
        "parent_id",
        Id,
        ForeignKey("namespaces.id", ondelete="CASCADE", name="namespaces_parent_id_fkey"),
    ),
    Column("name", String(63), nullable=False),  # 63: an S3 bucket name's longest
    Column("path", Text, nullable=False),
    Column("level", Integer, nullable=False),
    Column("description", String(255), nullable=False),
    Column("visibility", String(16), nullable=False),
    Column("created_at_ms", BigInteger, nullable=False),
    # The root's retention rule (migration 0014), copied down the tree like visibility.
    Column("retention_max_age_ms", BigInteger),
    Column("retention_keep_newest", Integer),
    UniqueConstraint("owner_id", "path", name="uq_namespaces_owner_path"),
    Index("ix_namespaces_root", "root_id"),
    Index("ix_namespaces_name", "name"),  # S3 finds a bucket by name across owners
    sqlite_autoincrement=True,
)

namespace_collaborators = Table(
    "namespace_collaborators",
    metadata,
    Column(
        "namespace_id",
        Id,
        ForeignKey(
            "namespaces.id", ondelete="CASCADE", name="namespace_collaborators_namespace_id_fkey"
        ),
        primary_key=True,
    ),
    Column("user_id", Id, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("created_at_ms", BigInteger, nullable=False),
    Index("ix_namespace_collaborators_user", "user_id"),
)

namespace_invites = Table(
    "namespace_invites",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column(
        "namespace_id",
        Id,
        ForeignKey("namespaces.id", ondelete="CASCADE", name="namespace_invites_namespace_id_fkey"),
        nullable=False,
    ),
    Column("inviter_id", Id, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("invitee_id", Id, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("created_at_ms", BigInteger, nullable=False),
    UniqueConstraint("namespace_id", "invitee_id", name="uq_namespace_invites_invitee"),
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
    Column(
        "namespace_id",
        Id,
        ForeignKey("namespaces.id", ondelete="SET NULL", name="fk_objects_namespace_id"),
    ),
    Column("mime_type", String(128)),  # sniffed from the bytes: the Djinn "type"
    # Djinn uploads must have unique names (per owner, or per namespace); Runloop names
    # may repeat. Only rows with unique_name set take part in the two indexes below.
    Column("unique_name", Boolean, nullable=False, server_default=false()),
    # Uploads (migration 0005): the token whose upload slots a presigned PUT takes, the
    # random key a direct (S3) upload lands on, and when an unfinished upload expires.
    Column("creator_token_id", Id),
    Column("staging_key", String(64)),
    Column("upload_deadline_ms", BigInteger),
    # S3's ETag when it is not the md5 (migration 0009): an object assembled from the parts
    # of a multipart upload has the md5 of their md5s, and "-N".
    Column("etag", String(64)),
    # What the client said of the bytes beyond their type and metadata (migration 0010):
    # response headers to send with them and their checksum, as JSON (meta.records).
    Column("attributes_json", Text),
    Index("ix_objects_owner_public_id", "owner_id", "public_id"),
    # Lists of one state (migration 0006), with the expiry they filter on: skipping rows
    # for a deep page reads this index alone.
    Index("ix_objects_owner_state", "owner_id", "state", "public_id", "delete_after_time_ms"),
    Index("ix_objects_owner_id", "owner_id", "id"),
    Index("ix_objects_namespace_id", "namespace_id", "id"),
    # A namespace's objects by age, for its max_age rule (migration 0014).
    Index("ix_objects_namespace_created", "namespace_id", "create_time_ms"),
    Index("ix_objects_delete_after", "delete_after_time_ms"),
    Index("ix_objects_deleted_time", "deleted_time_ms"),
    Index("ix_objects_upload_deadline", "upload_deadline_ms"),
    sqlite_autoincrement=True,  # ids are shown to clients: never reuse one
)

# Whole-object deduplication (migration 0015): each distinct content (sha256 and size) is
# stored once, as one blob, and every object row with those bytes names it in ``blob_key``.
# A row is written in the transaction of the first object that stores the bytes; later
# objects with the same content reference it (taking a share lock on PostgreSQL, so the
# collector cannot remove it under them). Dropping a reference (a delete, a replacement,
# reaping) sets ``released_ms``; the reaper later removes the rows so marked longer than
# the grace ago that nothing references any more, and only then their bytes
# (``SqlBlobs.collect_blobs``). Parts of uploads in progress and staging keys are not here.
blobs = Table(
    "blobs",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("size", BigInteger, nullable=False),
    # NULL: not known when stored (an object joined from multipart parts); never shared.
    Column("sha256", String(64)),
    Column("created_ms", BigInteger, nullable=False),
    Column("released_ms", BigInteger),
    # The bytes themselves, for a blob small enough to live in its row (migration 0017,
    # core/objects/inline.py): its key says so, and no blob store holds it.
    Column("data", LargeBinary),
    Index("uq_blobs_content", "sha256", "size", unique=True),
    Index("ix_blobs_released", "released_ms"),
)
# The collector's reference check: is any object row still naming this blob?
Index("ix_objects_blob_key", objects.c.blob_key)

# Written as SQL that means the same on SQLite (0/1) and PostgreSQL (boolean). Queries that
# want these indexes repeat the same predicate: SQLite uses a partial index only when the
# query's WHERE contains the index's terms as written ("unique_name = 1" does not match).
UNIQUE_TOP_LEVEL = text("unique_name AND namespace_id IS NULL")
UNIQUE_NAMESPACED = text("unique_name AND namespace_id IS NOT NULL")
Index(
    "uq_objects_owner_name",
    objects.c.owner_id,
    objects.c.name,
    unique=True,
    sqlite_where=UNIQUE_TOP_LEVEL,
    postgresql_where=UNIQUE_TOP_LEVEL,
)
Index(
    "uq_objects_namespace_name",
    objects.c.namespace_id,
    objects.c.name,
    unique=True,
    sqlite_where=UNIQUE_NAMESPACED,
    postgresql_where=UNIQUE_NAMESPACED,
)
# Objects whose digests are still to be computed (migration 0016; core/objects/digests.py).
UNDIGESTED = text("sha256 IS NULL AND blob_key IS NOT NULL")
Index(
    "ix_objects_undigested",
    objects.c.id,
    sqlite_where=UNDIGESTED,
    postgresql_where=UNDIGESTED,
)

# Uploads in parts (S3's multipart, migration 0009): each part is a blob of its own until
# the upload is completed (its parts are joined into one new blob, in order) or aborted, or
# it passes its deadline and the reaper removes it. On a blob store with multipart uploads
# of its own (migration 0012) the parts go into one of those instead, ``backing_id``, which
# completes into the blob ``blob_key``, and parts have no blob key.
multipart_uploads = Table(
    "multipart_uploads",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("upload_id", String(64), nullable=False, unique=True),
    Column(
        "namespace_id",
        Id,
        ForeignKey("namespaces.id", ondelete="CASCADE", name="fk_multipart_uploads_namespace_id"),
        nullable=False,
    ),
    Column("name", Text, nullable=False),
    Column("owner_id", Id, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("author_id", Id, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("creator_token_id", Id),
    Column("metadata_json", Text),
    Column("mime_type", String(128)),
    Column("created_ms", BigInteger, nullable=False),
    Column("deadline_ms", BigInteger, nullable=False),
    # The object's headers and its checksum's algorithm (migration 0010), as JSON.
    Column("attributes_json", Text),
    Column("blob_key", String(64)),
    Column("backing_id", Text),
    Index("ix_multipart_uploads_namespace_name", "namespace_id", "name"),
    Index("ix_multipart_uploads_deadline", "deadline_ms"),
    sqlite_autoincrement=True,
)

multipart_parts = Table(
    "multipart_parts",
    metadata,
    Column(
        "upload_pk",
        Id,
        ForeignKey("multipart_uploads.id", ondelete="CASCADE"),
        primary_key=True,
        autoincrement=False,
    ),
    Column("part_number", Integer, primary_key=True, autoincrement=False),
    Column("blob_key", String(64)),  # None: in the upload's backing upload
    Column("size", BigInteger, nullable=False),
    Column("md5", String(32), nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("checksum", Text),  # base64, of the upload's algorithm (migration 0010)
)

# How many rows ``objects`` has per owner, namespace (0: none), state and content type, and
# their bytes (``size``; migration 0013, for quotas), so a list's total_count and a quota's
# usage need no scan. Triggers of migration 0006 (0013 for bytes) keep it in the transaction
# of every write to ``objects`` (and keep SQLite's FTS5 name index ``objects_fts``), so no
# code path can forget it; a table rebuilt by a later migration must recreate them. Each
# counter is spread over 16 rows (``slot = id % 16``): one owner's concurrent writers
# then rarely wait for one another's commit on PostgreSQL's row lock.
object_counts = Table(
    "object_counts",
    metadata,
    Column("owner_id", Id, primary_key=True, autoincrement=False),
    Column("namespace_id", Id, primary_key=True, autoincrement=False),
    Column("state", String(16), primary_key=True),
    Column("content_type", String(16), primary_key=True),
    Column("slot", Integer, primary_key=True, autoincrement=False),
    Column("n", BigInteger, nullable=False),
    Column("bytes", BigInteger, nullable=False, server_default=text("0")),
    Index("ix_object_counts_namespace", "namespace_id"),
)

# Limits on what an owner, or a root namespace with everything below it, may hold (one of
# the two columns set): bytes and objects, each optional. An upload to a limited scope locks
# its row, so the uploads under one quota are checked one after another (``meta/quotas.py``).
quotas = Table(
    "quotas",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("user_id", Id, ForeignKey("users.id", ondelete="CASCADE"), unique=True),
    Column(
        "namespace_id",
        Id,
        ForeignKey("namespaces.id", ondelete="CASCADE", name="quotas_namespace_id_fkey"),
        unique=True,
    ),
    Column("max_bytes", BigInteger),
    Column("max_objects", BigInteger),
    CheckConstraint("(user_id IS NULL) <> (namespace_id IS NULL)", name="ck_quotas_one_scope"),
    sqlite_autoincrement=True,
)

object_metadata = Table(
    "object_metadata",
    metadata,
    Column("object_id", Id, ForeignKey("objects.id", ondelete="CASCADE"), primary_key=True),
    Column("key", String(256), primary_key=True),
    Column("value", Text, nullable=False),
    Index("ix_object_metadata_key", "key"),
)

# A request made under an idempotency key, per token: the key and the request are stored as
# SHA-256 digests, so any header value fits; ``public_id`` is the object it was answered with.
# The primary key is what makes concurrent twins create one object. Rows are kept a day
# (core.idempotency) and then purged by the reaper, oldest first.
idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("token_id", Id, ForeignKey("tokens.id", ondelete="CASCADE"), primary_key=True),
    Column("key_hash", String(64), primary_key=True),
    Column("request_hash", String(64), nullable=False),
    Column("public_id", String(40), nullable=False),
    Column("created_at_ms", BigInteger, nullable=False),
    Index("ix_idempotency_keys_created", "created_at_ms"),
)
