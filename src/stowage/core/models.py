"""Domain records shared by the core, the metadata backends and the API adapters."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class ContentType(StrEnum):
    """A coarse kind of content, not a MIME type: what lists filter objects by."""

    UNSPECIFIED = "unspecified"
    TEXT = "text"
    BINARY = "binary"
    GZIP = "gzip"
    TAR = "tar"
    TGZ = "tgz"


class Visibility(StrEnum):
    PRIVATE = "private"
    INTERNAL = "internal"
    PUBLIC = "public"


class ObjectState(StrEnum):
    UPLOADING = "UPLOADING"
    READ_ONLY = "READ_ONLY"
    DELETED = "DELETED"
    ERROR = "ERROR"


@dataclass(frozen=True, slots=True)
class User:
    id: int
    name: str
    email: str | None
    is_admin: bool
    created_at_ms: int


@dataclass(frozen=True, slots=True)
class Token:
    id: int
    user_id: int
    name: str
    prefix: str
    scopes: frozenset[str]
    created_at_ms: int
    revoked_at_ms: int | None


@dataclass(frozen=True, slots=True)
class AccessKey:
    """An S3 access key: a token row (``id`` is its token id) with an access key id and the
    salt its secret is derived from (``core.keys``); the secret itself is stored nowhere."""

    id: int
    user_id: int
    name: str
    access_key_id: str
    secret_salt: str
    scopes: frozenset[str]
    created_at_ms: int
    revoked_at_ms: int | None


@dataclass(frozen=True, slots=True)
class Retention:
    """A root namespace's retention rule (``core/retention.py``): objects older than
    ``max_age_ms`` expire, and of each namespace's completed objects only the newest
    ``keep_newest`` stay. Either may be None (no such limit), not both."""

    max_age_ms: int | None
    keep_newest: int | None


@dataclass(frozen=True, slots=True)
class Namespace:
    """A folder of objects owned by one user. Visibility, retention and collaborators live
    on the root (``root_id``); every descendant carries a copy of the root's visibility
    and retention."""

    id: int
    owner_id: int
    root_id: int
    parent_id: int | None
    name: str
    path: str
    level: int
    description: str
    visibility: Visibility
    created_at_ms: int
    retention: Retention | None = None


@dataclass(frozen=True, slots=True)
class Collaborator:
    user: User
    namespace_id: int
    created_at_ms: int


@dataclass(frozen=True, slots=True)
class Invite:
    id: int
    namespace_id: int
    inviter_id: int
    invitee_id: int
    created_at_ms: int


@dataclass(frozen=True, slots=True)
class Checksum:
    """A checksum of an object's bytes that its client declared (or asked for) and the
    dialect verified as they arrived, kept to be shown back (``core.checksums``).
    ``algorithm`` is a key of ``checksums.ALGORITHMS``, ``value`` base64 of the digest;
    a ``composite`` one, of an object assembled from parts, is the checksum of their
    checksums, not of the bytes, and its value ends with ``-N`` as S3 shows it."""

    algorithm: str
    value: str
    composite: bool = False


@dataclass(frozen=True, slots=True)
class NewObject:
    public_id: str
    owner_id: int
    author_id: int
    name: str
    content_type: ContentType
    metadata: dict[str, str] | None
    create_time_ms: int
    delete_after_time_ms: int | None
    namespace_id: int | None = None
    creator_token_id: int | None = None
    staging_key: str | None = None  # where a direct (presigned S3) upload lands
    upload_deadline_ms: int | None = None  # an unfinished upload expires then
    unique_name: bool = False  # no other live object may have this name in its place
    etag: str | None = None  # S3's ETag when it is not the md5 (assembled from parts)
    headers: dict[str, str] | None = None  # see StoredObject
    checksum: Checksum | None = None
    tags: dict[str, str] | None = None


@dataclass(frozen=True, slots=True)
class Claimed:
    """Digests a client declared of the body it sends (hex; S3's ``Content-MD5`` and
    ``x-amz-content-sha256``). They are checked against the digests every write computes
    anyway, so the body is hashed once: a body without them is kept by no one."""

    md5: str | None = None
    sha256: str | None = None


@dataclass(frozen=True, slots=True)
class StoredObject:
    id: int
    public_id: str
    owner_id: int
    author_id: int
    name: str
    content_type: ContentType
    state: ObjectState
    metadata: dict[str, str] | None
    create_time_ms: int
    delete_after_time_ms: int | None
    size: int | None
    md5: str | None
    sha256: str | None
    blob_key: str | None
    namespace_id: int | None
    mime_type: str | None
    creator_token_id: int | None = None
    staging_key: str | None = None
    upload_deadline_ms: int | None = None
    etag: str | None = None  # S3's ETag when it is not the md5 (assembled from parts)
    # Response headers its client asked to be sent with its bytes (S3's Cache-Control,
    # Content-Disposition…), by lowercase HTTP name: kept as given, not interpreted.
    headers: dict[str, str] | None = None
    checksum: Checksum | None = None
    # Labels its writers may change at any time, unlike its name, bytes and metadata
    # (S3's object tags).
    tags: dict[str, str] | None = None

    def expired(self, now_ms: int) -> bool:
        """Past its TTL, or an upload not completed by its deadline."""
        if self.delete_after_time_ms is not None and self.delete_after_time_ms <= now_ms:
            return True
        return (
            self.state is ObjectState.UPLOADING
            and self.upload_deadline_ms is not None
            and self.upload_deadline_ms <= now_ms
        )


@dataclass(frozen=True, slots=True)
class BlobWritten:
    """What a blob store reports after a durable write: the facts clients verify against.
    A blob made of others (multipart parts) has no digests until it is read once
    (``ObjectService.fill_digests``): None, as for ``unhashed``."""

    size: int
    md5: str | None
    sha256: str | None
    head: bytes  # the first bytes (up to 512), for content sniffing
    # The key of a blob with the same content found already stored: the bytes just
    # received were dropped instead of kept (whole-object deduplication).
    shared: str | None = None
    # The bytes themselves, for a blob small enough to be kept in its metadata row with
    # them (``objects/inline.py``): no blob store holds them.
    inline: bytes | None = None

    @classmethod
    def unhashed(cls, size: int) -> BlobWritten:
        return cls(size, None, None, b"")


@dataclass(frozen=True, slots=True)
class ObjectQuery:
    """What a list shows. ``viewer_id`` selects the viewer's own objects and those in
    namespaces they collaborate on; ``public_only`` objects in public namespaces."""

    viewer_id: int | None
    public_only: bool = False
    namespace_id: int | None = None
    limit: int = 20
    offset: int = 0
    starting_after: str | None = None
    name: str | None = None
    content_type: ContentType | None = None
    state: ObjectState | None = None
    search: str | None = None
    include_total_count: bool = True


@dataclass(frozen=True, slots=True)
class Page:
    objects: list[StoredObject]
    has_more: bool
    total_count: int | None = None


@dataclass(frozen=True, slots=True)
class Reaped:
    """Rows the reaper removed, and the staging keys whose bytes must go with them (their
    blobs were released, for the collector)."""

    object_ids: list[int] = field(default_factory=list)
    # Direct-upload keys to remove: of the rows removed, and of finished objects whose
    # upload URL can no longer be used (bytes PUT after complete or delete land there).
    staging_keys: list[str] = field(default_factory=list)
    swept: int = 0  # finished objects whose staging key was released


@dataclass(frozen=True, slots=True)
class Expired:
    """Objects a retention rule expired in one batch, and their bytes (freed once the
    reaper removes them)."""

    objects: int = 0
    bytes: int = 0


@dataclass(frozen=True, slots=True)
class KeyedRequest:
    """A request made under an idempotency key: the token that sent it, the key and what it
    asked for (both as SHA-256 digests, see core.idempotency), and when."""

    token_id: int
    key_hash: str
    request_hash: str
    created_at_ms: int


@dataclass(frozen=True, slots=True)
class KeptAnswer:
    """What a key was first used for (a request digest), and the object it was answered with."""

    request_hash: str
    public_id: str


@dataclass(frozen=True, slots=True)
class MultipartUpload:
    """An upload in parts to a name in a namespace, until it is completed or aborted.

    On a blob store with multipart uploads of its own (``ports.BlobParts``) the parts go
    into one of those, ``backing_id``, which completes into the blob ``blob_key``; else
    both are None and each part is a blob of its own."""

    id: int
    upload_id: str
    namespace_id: int
    name: str
    owner_id: int
    author_id: int
    creator_token_id: int | None
    metadata: dict[str, str] | None
    mime_type: str | None
    created_ms: int
    deadline_ms: int
    headers: dict[str, str] | None = None  # the object's, as StoredObject's
    # The algorithm of the parts' checksums, from which completing derives the object's
    # (``checksums.of_parts``): a checksum of theirs, or (``composite`` false) of the bytes.
    checksum_algorithm: str | None = None
    composite: bool = True
    blob_key: str | None = None
    backing_id: str | None = None
    tags: dict[str, str] | None = None  # the object's, as StoredObject's

    @property
    def parts_are_blobs(self) -> bool:
        """Each part a blob of its own, written with its md5 and sha256; else the parts
        go into the blob store's own upload, which gives each its md5 only."""
        return self.backing_id is None


@dataclass(frozen=True, slots=True)
class UploadedPart:
    part_number: int
    blob_key: str | None  # None: the part is in its upload's backing upload
    size: int
    md5: str
    created_ms: int
    checksum: str | None = None  # base64, of the upload's checksum_algorithm


@dataclass(frozen=True, slots=True)
class Usage:
    """What an owner, or a root namespace with everything below it, holds: its objects
    that are not deleted or expired (UPLOADING ones included) and their logical bytes (as
    uploaded), which is what quotas count."""

    objects: int
    bytes: int


@dataclass(frozen=True, slots=True)
class Quota:
    """The limits of one owner (``user_id``) or one root namespace (``namespace_id``);
    None is no limit."""

    id: int
    user_id: int | None
    namespace_id: int | None
    max_bytes: int | None
    max_objects: int | None


@dataclass(frozen=True, slots=True)
class BlobTotals:
    """Bytes as clients see them and as stored: ``logical_bytes`` counts every completed
    object's size, ``stored_bytes`` every distinct blob's once; the difference is what
    deduplication saves."""

    objects: int
    logical_bytes: int
    blobs: int
    stored_bytes: int

    @property
    def saved_bytes(self) -> int:
        return max(0, self.logical_bytes - self.stored_bytes)
