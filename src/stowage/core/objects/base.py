"""What every part of the object service shares: its backends, its limits, and the one
way to find a live object and the namespace root that governs access to it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

from ..access import Principal, may_modify
from ..clock import Clock
from ..errors import DigestMismatch, NotFound, TooLarge
from ..ids import is_inline_key, new_blob_key, new_inline_key
from ..models import BlobWritten, Claimed, Namespace, StoredObject
from ..namespaces import NamespaceService
from ..ports import BlobStore, DirectBlobStore, MetadataStore
from .inline import inline_written, whole_if_small

Caller = Principal | None  # None: an anonymous request


@dataclass(frozen=True, slots=True)
class Limits:
    max_upload_bytes: int
    deleted_retention_ms: int
    upload_ttl_ms: int = 24 * 3600 * 1000  # an upload not completed by then is removed
    max_object_bytes: int = 5 * 1024**4  # an object assembled from parts (S3's 5 TiB)
    # An unreferenced blob is collected this long after its last reference went; an
    # upload shares only blobs released less than half of it ago, so it has the other
    # half to commit its row.
    blob_grace_ms: int = 3600 * 1000
    # A body this small is kept in the database, in its blob's row (``inline.py``).
    inline_max_bytes: int = 16 * 1024


class ObjectsBase:
    def __init__(
        self,
        meta: MetadataStore,
        blobs: BlobStore,
        namespaces: NamespaceService,
        clock: Clock,
        limits: Limits,
    ) -> None:
        self._meta = meta
        self._blobs = blobs
        self._namespaces = namespaces
        self._clock = clock
        self.limits = limits
        self._hashing: set[asyncio.Task[bool]] = set()  # digests.py, in the background

    @property
    def _direct(self) -> DirectBlobStore | None:
        return self._blobs if isinstance(self._blobs, DirectBlobStore) else None

    async def _store(
        self, chunks: AsyncIterator[bytes], max_bytes: int | None
    ) -> tuple[str, BlobWritten]:
        """Hash the stream and keep it under a new key, which it returns: a small body in
        the database with the row that will hold it (``inline.py``), a larger one in the
        blob store, unless a stored blob has the same content (``BlobWritten.shared``):
        identical bytes are stored once."""
        if self.limits.inline_max_bytes:
            whole, chunks = await whole_if_small(chunks, self.limits.inline_max_bytes)
            if whole is not None:
                if max_bytes is not None and len(whole) > max_bytes:
                    raise self._too_large()
                return new_inline_key(), inline_written(whole)
        key = new_blob_key()
        return key, await self._blobs.put(key, chunks, max_bytes, self._stored_twin)

    async def _delete_blob(self, key: str) -> None:
        """Delete a blob's bytes from the blob store; an inline blob's go with its row."""
        if not is_inline_key(key):
            await self._blobs.delete(key)

    async def _stored_twin(self, size: int, sha256: str) -> str | None:
        fresh_after = self._clock.now_ms() - self.limits.blob_grace_ms // 2
        return await self._meta.find_blob(size, sha256, fresh_after)

    async def _drop_unheld(self, key: str, written: BlobWritten, held: str | None) -> None:
        """Delete the bytes stored at ``key`` unless the row committed holds them
        (``held``): a twin with the same content was stored first, or nothing holds them."""
        if written.shared is None and held != key:
            await self._delete_blob(key)

    async def _keep_if_claimed(
        self, key: str, claimed: Claimed | None, written: BlobWritten
    ) -> None:
        """Remove the blob just written at ``key`` and raise DigestMismatch when it lacks a
        digest its client declared."""
        if claimed is None:
            return
        for digest, said, found in (
            ("sha256", claimed.sha256, written.sha256),
            ("md5", claimed.md5, written.md5),
        ):
            if said is not None and said != found:
                await self._delete_blob(key)
                raise DigestMismatch(digest, said, found or "")

    async def _live(self, ref: str | int) -> StoredObject:
        obj = await self._meta.get_object(ref)
        if obj is None or obj.expired(self._clock.now_ms()):
            raise NotFound("Object not found")
        return obj

    async def _root(self, obj: StoredObject, caller: Caller) -> tuple[Namespace | None, bool]:
        """The root of the object's namespace (None outside namespaces), and whether the
        caller collaborates on it."""
        if obj.namespace_id is None:
            return None, False
        access = await self._meta.namespace_access(
            obj.namespace_id, caller.user.id if caller else None
        )
        return access if access is not None else (None, False)

    def _refuse_declared(self, declared_size: int | None) -> None:
        """Refuse a body announced over the limit before reading any of it."""
        if declared_size is not None and declared_size > self.limits.max_upload_bytes:
            raise self._too_large()

    def _too_large(self) -> TooLarge:
        return TooLarge(f"the upload exceeds the limit of {self.limits.max_upload_bytes} bytes")

    async def modifiable(self, caller: Principal, ref: str | int, scope: str) -> StoredObject:
        """The object if the caller holds ``scope`` and may change it (no read scope needed)."""
        caller.require(scope)
        obj = await self._live(ref)
        root, collaborating = await self._root(obj, caller)
        if not may_modify(caller.user.id, obj.owner_id, root, collaborating):
            raise NotFound("Object not found")
        return obj
