"""The two seams of the core: where metadata lives and where bytes live.

Backends implement these protocols; the core never imports a backend. Metadata is one
facade, ``MetadataStore``, made of a protocol per aggregate (accounts, objects, namespaces):
a service that needs one aggregate takes the narrow protocol, one that needs several takes
the facade.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Literal, Protocol, runtime_checkable

from .models import (
    AccessKey,
    BlobTotals,
    BlobWritten,
    Collaborator,
    Expired,
    Invite,
    KeptAnswer,
    KeyedRequest,
    MultipartUpload,
    Namespace,
    NewObject,
    ObjectQuery,
    Page,
    Quota,
    Reaped,
    Retention,
    StoredObject,
    Token,
    UploadedPart,
    Usage,
    User,
    Visibility,
)


class AccountStore(Protocol):
    """Users, their API tokens and their S3 access keys (token rows with an access key id).
    The token methods see bearer tokens only, the key methods access keys only."""

    async def create_user(
        self, name: str, email: str | None, is_admin: bool, now_ms: int
    ) -> User | None:
        """None when the name is taken."""
        ...

    async def get_user_by_name(self, name: str) -> User | None: ...
    async def get_user_by_handle(self, handle: str) -> User | None: ...
    async def get_users(self, ids: set[int]) -> dict[int, User]: ...
    async def count_users(self) -> int: ...
    async def create_token(
        self,
        user_id: int,
        name: str,
        token_hash: str,
        prefix: str,
        scopes: frozenset[str],
        now_ms: int,
    ) -> Token: ...
    async def find_token(self, token_hash: str) -> tuple[Token, User] | None: ...
    async def list_tokens(self, user_id: int | None) -> list[tuple[Token, User]]: ...
    async def revoke_token(self, token_id: int, now_ms: int) -> bool: ...
    async def create_access_key(
        self,
        user_id: int,
        name: str,
        access_key_id: str,
        token_hash: str,
        secret_salt: str,
        scopes: frozenset[str],
        now_ms: int,
    ) -> AccessKey: ...
    async def find_access_key(self, access_key_id: str) -> tuple[AccessKey, User] | None:
        """A live (unrevoked) key and its user."""
        ...

    async def list_access_keys(self, user_id: int | None) -> list[tuple[AccessKey, User]]: ...
    async def revoke_access_key(self, access_key_id: str, now_ms: int) -> int | None:
        """The revoked key's token id; None when there is no live key of that id."""
        ...

    async def set_secret_salt(self, access_key_id: str, secret_salt: str) -> AccessKey | None:
        """Give a live key a new salt (so a new secret); None when there is no such key."""
        ...


class ObjectStore(Protocol):
    """Objects and their idempotency keys: writes, lists, reaping and what fsck checks."""

    async def create_object(
        self, new: NewObject, keyed: KeyedRequest | None = None
    ) -> StoredObject | None:
        """Insert an UPLOADING object and record ``keyed`` with it in the same transaction;
        None (nothing inserted) when that key is recorded already."""
        ...

    async def insert_stored_object(
        self, new: NewObject, blob_key: str, blob: BlobWritten, mime_type: str
    ) -> StoredObject:
        """Insert a READ_ONLY object; raise NameTaken if its name is to be unique
        (``new.unique_name``) and is in use, NamespaceGone if its namespace was deleted
        meanwhile. Every write that takes a blob (this, ``replace_stored_object``,
        ``attach_blob``, ``complete_multipart``) gets ``blob_key`` with the bytes just
        stored there (or, with ``blob.shared`` set, none: they were dropped), and the row
        holds the stored blob of that content, which may be another key; the caller then
        deletes its own. Unavailable when the shared blob was collected meanwhile."""
        ...

    async def set_tags(self, object_id: int, tags: dict[str, str] | None) -> StoredObject | None:
        """Replace a live object's tags; None when it is deleted."""
        ...

    async def replace_stored_object(
        self,
        new: NewObject,
        blob_key: str,
        blob: BlobWritten,
        mime_type: str,
        now_ms: int,
        if_match: str | None = None,
    ) -> StoredObject:
        """Insert a READ_ONLY object in place of the one holding its name in its namespace,
        atomically, releasing the replaced object's blob. ``if_match``: only in place of a
        live one whose etag (else md5) is this, or any live one (``*``)."""
        ...

    async def name_taken(self, owner_id: int, namespace_id: int | None, name: str) -> bool: ...
    async def get_named(self, namespace_id: int, name: str) -> StoredObject | None: ...
    async def list_named(
        self, namespace_id: int, prefix: str, after: str | None, limit: int, now_ms: int
    ) -> list[StoredObject]:
        """Live objects of a namespace by name, in byte order, from after ``after``."""
        ...

    async def get_object(self, ref: str | int) -> StoredObject | None: ...
    async def list_objects(self, query: ObjectQuery, now_ms: int) -> Page: ...
    async def attach_blob(
        self, public_id: str, blob_key: str, blob: BlobWritten, mime_type: str, now_ms: int
    ) -> str | None:
        """Point an UPLOADING object at a new blob, releasing the one it had; the blob key
        it now holds, or None (nothing changed) when it is no longer UPLOADING.
        QuotaExceeded when the new bytes do not fit a quota (nothing changes)."""
        ...

    async def complete_object(
        self, public_id: str, keyed: KeyedRequest | None = None
    ) -> StoredObject | None:
        """UPLOADING with a blob → READ_ONLY, recording ``keyed`` in the same transaction;
        None (nothing changed) when the object was not in that state or the key is known."""
        ...

    async def set_digests(self, object_id: int, blob_key: str, md5: str, sha256: str) -> bool:
        """Fill in a live object's digests while it holds ``blob_key`` and has none."""
        ...

    async def undigested(self, created_by_ms: int, limit: int) -> list[tuple[int, str]]:
        """Live objects with bytes but no digests, created by then: (id, blob key)."""
        ...

    async def kept_answer(self, keyed: KeyedRequest) -> KeptAnswer | None:
        """What the key of ``keyed`` was first used for, if it is recorded."""
        ...

    async def forget_keys(self, cutoff_ms: int, limit: int) -> int:
        """Remove up to ``limit`` idempotency keys recorded at or before ``cutoff_ms``."""
        ...

    async def mark_deleted(self, public_id: str, now_ms: int) -> StoredObject | None:
        """Turn the object into a tombstone, releasing its blob; return it."""
        ...

    async def metadata_keys(self, owner_id: int, now_ms: int) -> list[str]: ...
    async def metadata_values(self, owner_id: int, key: str, now_ms: int) -> list[str]: ...
    async def blob_references(self) -> dict[str, list[tuple[str, int, str | None]]]:
        """blob key → (public id, size, sha256) of every row that points at it."""
        ...

    async def inline_data(self, key: str) -> bytes | None:
        """The bytes kept in a blob's row (an inline blob), or None."""
        ...

    async def find_blob(self, size: int, sha256: str, fresh_after_ms: int) -> str | None:
        """The key of a stored blob with this content (not one released at or before
        ``fresh_after_ms``: it may be collected before it can be referenced)."""
        ...

    async def collect_blobs(self, released_before_ms: int, limit: int) -> list[str]:
        """Remove up to ``limit`` blob rows released at or before ``released_before_ms``
        that nothing references; their keys, whose bytes the caller deletes next."""
        ...

    async def blob_rows(self) -> dict[str, tuple[int, str | None, bool]]:
        """Every stored blob's row: key → (size, sha256, whether it is released)."""
        ...

    async def release_unreferenced(self, keys: list[str], now_ms: int) -> int:
        """Mark blob rows released that were not (the collector removes them later)."""
        ...

    async def blob_totals(self, now_ms: int) -> BlobTotals:
        """Logical bytes (completed live objects) beside the bytes stored once each."""
        ...

    async def staging_keys(self) -> set[str]:
        """Direct-upload keys rows still track (the reaper removes them; not orphans)."""
        ...

    async def reap(self, now_ms: int, deleted_before_ms: int, limit: int) -> Reaped:
        """Remove expired objects, unfinished uploads past their deadline and old tombstones
        (releasing their blobs), and release the staging keys of finished uploads past it;
        return the staging keys to delete."""
        ...


class MultipartStore(Protocol):
    """Uploads in parts: each part a blob of its own until the upload ends, or a part of
    the blob store's own upload that the upload's row names (``MultipartUpload``)."""

    async def create_multipart(self, upload: MultipartUpload) -> MultipartUpload: ...
    async def get_multipart(self, upload_id: str) -> MultipartUpload | None: ...
    async def put_part(
        self, upload: MultipartUpload, part: UploadedPart
    ) -> tuple[bool, str | None]:
        """(recorded, the blob key of the part it replaced); not recorded when the upload
        has ended."""
        ...

    async def parts(
        self, upload: MultipartUpload, after: int = 0, limit: int | None = None
    ) -> list[UploadedPart]: ...
    async def list_multipart(
        self, namespace_id: int, prefix: str, key_marker: str, id_marker: str, limit: int
    ) -> list[MultipartUpload]: ...
    async def end_multipart(self, upload: MultipartUpload) -> list[str] | None:
        """Remove the upload; its parts' blob keys (those that have one), or None if it had
        ended already."""
        ...

    async def complete_multipart(
        self,
        upload: MultipartUpload,
        new: NewObject,
        blob_key: str,
        blob: BlobWritten,
        mime_type: str,
        now_ms: int,
    ) -> tuple[StoredObject, list[str]] | None:
        """End the upload and put the object in place of its name's, in one transaction;
        the object and the parts' blob keys, or None when the upload had ended."""
        ...

    async def expired_multipart(self, now_ms: int, limit: int) -> list[MultipartUpload]: ...
    async def part_keys(self) -> set[str]:
        """The blob keys of uploads in progress: their parts', and those their backing
        uploads complete into."""
        ...

    async def backing_ids(self) -> set[str]:
        """The ids of the blob store's own uploads that uploads in progress hold."""
        ...


class NamespaceStore(Protocol):
    """Namespaces, their collaborators and invites."""

    async def create_namespace(
        self,
        owner_id: int,
        parent: Namespace | None,
        name: str,
        description: str,
        visibility: Visibility,
        now_ms: int,
        *,
        alone: bool = False,
    ) -> Namespace | None: ...
    async def ensure_namespace_path(
        self, owner_id: int, segments: list[str], now_ms: int
    ) -> Namespace: ...
    async def get_namespace_by_path(self, owner_id: int, path: str) -> Namespace | None: ...
    async def get_namespaces(self, ids: set[int]) -> dict[int, Namespace]: ...
    async def list_namespaces(
        self, viewer_id: int, search: str | None, offset: int, limit: int
    ) -> tuple[list[Namespace], int]: ...
    async def list_children(
        self, parent: Namespace, search: str | None, offset: int, limit: int
    ) -> tuple[list[Namespace], int]: ...
    async def list_roots(self, owner_id: int) -> list[Namespace]: ...
    async def roots_named(self, name: str, limit: int) -> list[Namespace]: ...
    async def holds_anything(self, namespace: Namespace, now_ms: int) -> bool: ...
    async def update_namespace(
        self, namespace: Namespace, description: str | None, visibility: Visibility | None
    ) -> Namespace: ...
    async def delete_namespace(self, namespace: Namespace) -> None: ...
    async def namespace_access(
        self, namespace_id: int, user_id: int | None
    ) -> tuple[Namespace, bool] | None:
        """The namespace's root, and whether the user collaborates on it."""
        ...

    async def list_collaborators(self, root_id: int) -> list[Collaborator]: ...
    async def remove_collaborator(self, root_id: int, user_id: int) -> bool: ...
    async def create_invite(
        self, root_id: int, inviter_id: int, invitee_id: int, now_ms: int
    ) -> Invite | None: ...
    async def get_invite(self, invite_id: int) -> Invite | None: ...
    async def list_invites(
        self, *, invitee_id: int | None = None, namespace_id: int | None = None
    ) -> list[Invite]: ...
    async def accept_invite(self, invite: Invite, now_ms: int) -> None: ...
    async def delete_invite(self, invite_id: int) -> bool: ...


class RetentionStore(Protocol):
    """Root namespaces' retention rules, and the reaper's passes that enforce them by
    lowering objects' expiry (the reaper's ``reap`` then removes them as any expired one)."""

    async def set_retention(self, root: Namespace, rule: Retention | None) -> Namespace | None:
        """Give the root and its tree ``rule`` (None clears it); None if the root is gone."""
        ...

    async def retained_roots(self) -> list[Namespace]: ...
    async def expire_aged(self, horizon_ms: int, limit: int) -> Expired:
        """Expire, at their age, up to ``limit`` objects that reach their namespace's
        max_age by ``horizon_ms`` (an object's own earlier TTL stands)."""
        ...

    async def expire_surplus(self, now_ms: int, limit: int) -> Expired:
        """Expire now up to ``limit`` completed objects beyond their namespace's newest
        keep_newest."""
        ...


class QuotaStore(Protocol):
    """Quotas of users and root namespaces, and what each holds. Every write that adds
    objects or bytes (``create_object``, ``attach_blob``, ``insert_stored_object``,
    ``replace_stored_object``, ``complete_multipart``) checks the quotas over it in its own
    transaction, serialised per quota, and raises QuotaExceeded instead of committing."""

    async def set_quota(
        self,
        *,
        user_id: int | None = None,
        namespace_id: int | None = None,
        max_bytes: int | None = None,
        max_objects: int | None = None,
    ) -> Quota:
        """Set the limits given of a user's or a root namespace's quota (made if absent)."""
        ...

    async def clear_quota(
        self, *, user_id: int | None = None, namespace_id: int | None = None
    ) -> bool: ...
    async def list_quotas(self) -> list[Quota]: ...
    async def quota_of(
        self, *, user_id: int | None = None, namespace_id: int | None = None
    ) -> Quota | None: ...
    async def usage(
        self, *, user_id: int | None = None, namespace_id: int | None = None, now_ms: int
    ) -> Usage:
        """What a user owns, or what a root namespace and its children hold."""
        ...

    async def usages(self, *, now_ms: int) -> dict[int, Usage]:
        """``usage`` of every owner who ever stored an object, by user id."""
        ...


class MetadataStore(
    AccountStore,
    ObjectStore,
    MultipartStore,
    NamespaceStore,
    RetentionStore,
    QuotaStore,
    Protocol,
):
    """All the metadata, on one database: what the process opens and closes."""

    async def close(self) -> None: ...


# Asked by a blob write once the digest is known: the key of a stored blob with that size
# and sha256, if there is one (``ObjectStore.find_blob``).
KnownBlob = Callable[[int, str], Awaitable[str | None]]


class BlobStore(Protocol):
    async def put(
        self,
        key: str,
        chunks: AsyncIterator[bytes],
        max_bytes: int | None,
        known: KnownBlob | None = None,
    ) -> BlobWritten:
        """Store the stream durably under ``key``; raise TooLarge past ``max_bytes``.
        Every byte is hashed; when ``known`` then names a blob with the same content, the
        bytes are dropped before they are made durable, nothing is left under ``key`` and
        the result's ``shared`` is that key.

        On any failure nothing is left under ``key`` and no temporary file remains.
        """
        ...

    async def read(self, key: str, start: int, length: int) -> AsyncIterator[bytes]:
        """Open ``length`` bytes from ``start`` and return them as a stream."""
        ...

    async def read_bytes(self, key: str, start: int, length: int) -> bytes:
        """A small range in one call: for a small object, the stream's setup costs more
        than the bytes."""
        ...

    async def delete(self, key: str) -> None: ...
    async def digest(self, key: str) -> BlobWritten:
        """Read a stored blob once for its size, md5 and sha256 (FileNotFoundError when
        there is none)."""
        ...

    async def inventory(self) -> dict[str, float]:
        """Every stored blob key, with its modification time (seconds since the epoch)."""
        ...

    async def ping(self) -> None:
        """Raise Unavailable unless the store can be used (readiness)."""
        ...

    def close(self) -> None:
        """Finish the store's work in flight and stop its threads."""
        ...


@runtime_checkable
class JoiningBlobStore(BlobStore, Protocol):
    """A store that can make a blob of others without copying their bytes (local disk's
    hard links): an object assembled from multipart parts costs no second write."""

    async def join(self, key: str, parts: Sequence[str]) -> int:
        """Make ``key`` the blobs ``parts`` end to end, all of them or nothing; its size.
        The parts' own keys stay, and may be deleted without touching ``key``."""
        ...


class BlobParts(Protocol):
    """A blob store's own multipart uploads (S3's), so that an upload in parts lands in
    one and completing it makes the blob without the bytes passing through stowage again.
    Uploads are named by the blob key they complete into and the store's upload id."""

    async def start(self, key: str) -> str:
        """Start an upload that completes into ``key``; its id."""
        ...

    async def put(
        self, key: str, upload_id: str, number: int, chunks: AsyncIterator[bytes], size: int
    ) -> str:
        """Store part ``number`` (in place of an earlier one), exactly ``size`` bytes, else
        nothing; its md5."""
        ...

    async def complete(self, key: str, upload_id: str, parts: Sequence[tuple[int, str]]) -> int:
        """Make ``key`` of the parts (number and md5, ascending); its size. Completing a
        completed upload again is not an error."""
        ...

    async def abort(self, key: str, upload_id: str) -> None:
        """Drop the upload and its parts; one already gone is not an error."""
        ...

    async def in_progress(self) -> dict[str, tuple[str, float]]:
        """Every upload not completed or aborted: id → (key, start time in seconds)."""
        ...


@runtime_checkable
class DirectBlobStore(BlobStore, Protocol):
    """A store clients can reach themselves (S3): presigned URLs point at it, and uploads
    that bypass stowage are adopted at ``complete`` by copying and hashing them. ``parts``
    is its own multipart uploads, when it can drive them."""

    parts: BlobParts | None

    def presign(self, method: Literal["GET", "PUT"], key: str, expires_s: int) -> str: ...
    async def size(self, key: str) -> int | None: ...
    async def copy(self, source: str, target: str) -> None: ...
