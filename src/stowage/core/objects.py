"""The object lifecycle: create → upload → complete → read → delete or expire.

States: UPLOADING (bytes may be (re)uploaded) → READ_ONLY (immutable, downloadable) →
DELETED (a tombstone kept for ``deleted_retention`` so clients see why a download fails).
Expired objects disappear immediately and the reaper removes their rows and blobs.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass

from .access import Principal
from .clock import Clock
from .errors import Conflict, Gone, Invalid, NotFound
from .ids import new_blob_key, new_object_id
from .models import ContentType, NewObject, ObjectQuery, ObjectState, Page, StoredObject
from .naming import validate_metadata, validate_metadata_key, validate_object_name, validate_ttl_ms
from .ports import BlobStore, MetadataStore

log = logging.getLogger(__name__)

MAX_PAGE = 5000


@dataclass(frozen=True, slots=True)
class Limits:
    max_upload_bytes: int
    deleted_retention_ms: int


class ObjectService:
    def __init__(self, meta: MetadataStore, blobs: BlobStore, clock: Clock, limits: Limits) -> None:
        self._meta = meta
        self._blobs = blobs
        self._clock = clock
        self._limits = limits

    # --- reads -------------------------------------------------------------------------

    async def _live(self, public_id: str) -> StoredObject:
        obj = await self._meta.get_object(public_id)
        if obj is None or obj.expired(self._clock.now_ms()):
            raise NotFound("Object not found")
        return obj

    async def get(self, principal: Principal, public_id: str) -> StoredObject:
        principal.require("object:read")
        obj = await self._live(public_id)
        if obj.owner_id != principal.user.id:
            raise NotFound("Object not found")
        return obj

    async def list(self, principal: Principal | None, query: ObjectQuery) -> Page:
        if principal is not None:
            principal.require("object:read")
        if not 1 <= query.limit <= MAX_PAGE:
            raise Invalid(f"limit must be between 1 and {MAX_PAGE}")
        return await self._meta.list_objects(query, self._clock.now_ms())

    async def metadata_keys(self, principal: Principal) -> list[str]:
        principal.require("object:read")
        return await self._meta.metadata_keys(principal.user.id, self._clock.now_ms())

    async def metadata_values(self, principal: Principal, key: str) -> list[str]:
        principal.require("object:read")
        validate_metadata_key(key)
        return await self._meta.metadata_values(principal.user.id, key, self._clock.now_ms())

    async def downloadable(self, principal: Principal | None, public_id: str) -> StoredObject:
        """The object if its bytes may be handed out; ``principal`` None means presigned."""
        obj = (
            await self.get(principal, public_id)
            if principal is not None
            else await self._live(public_id)
        )
        if obj.state is ObjectState.DELETED:
            raise Gone("Object is deleted")
        if obj.state is not ObjectState.READ_ONLY or obj.blob_key is None:
            raise Invalid(f"Object is {obj.state.value}; only completed objects can be downloaded")
        return obj

    def read(self, obj: StoredObject, start: int, length: int) -> AsyncIterator[bytes]:
        assert obj.blob_key is not None
        return self._blobs.read(obj.blob_key, start, length)

    # --- writes ------------------------------------------------------------------------

    async def create(
        self,
        principal: Principal,
        name: str,
        content_type: ContentType,
        metadata: Mapping[str, object] | None,
        ttl_ms: int | None,
    ) -> StoredObject:
        principal.require("object:write")
        validate_object_name(name)
        clean_metadata = validate_metadata(metadata)
        ttl = validate_ttl_ms(ttl_ms)
        now = self._clock.now_ms()
        return await self._meta.create_object(
            NewObject(
                public_id=new_object_id(now),
                owner_id=principal.user.id,
                author_id=principal.user.id,
                name=name,
                content_type=content_type,
                metadata=clean_metadata,
                create_time_ms=now,
                delete_after_time_ms=now + ttl if ttl is not None else None,
            )
        )

    async def upload(self, public_id: str, chunks: AsyncIterator[bytes]) -> StoredObject:
        """Store the bytes of an UPLOADING object; the caller has already proved access."""
        obj = await self._live(public_id)
        if obj.state is not ObjectState.UPLOADING:
            raise Conflict(
                f"Object is {obj.state.value}; uploads are only accepted while UPLOADING"
            )
        key = new_blob_key()
        written = await self._blobs.put(key, chunks, self._limits.max_upload_bytes)
        attached, replaced = await self._meta.attach_blob(public_id, key, written)
        if not attached:
            await self._blobs.delete(key)
            raise Conflict("Object was completed or deleted while the upload was running")
        if replaced:
            await self._blobs.delete(replaced)
        return await self._live(public_id)

    async def complete(self, principal: Principal, public_id: str) -> StoredObject:
        principal.require("object:write")
        obj = await self.get(principal, public_id)
        if obj.state is not ObjectState.UPLOADING:
            raise Conflict(f"Object is {obj.state.value}, not UPLOADING")
        if obj.blob_key is None:
            raise Invalid("Nothing has been uploaded yet: PUT the bytes to upload_url first")
        done = await self._meta.complete_object(public_id)
        if done is None:
            raise Conflict("Object changed state while completing")
        return done

    async def delete(self, principal: Principal, public_id: str) -> StoredObject:
        principal.require("object:delete")
        await self.get(principal, public_id)
        result = await self._meta.mark_deleted(public_id, self._clock.now_ms())
        if result is None:
            raise NotFound("Object not found")
        tombstone, blob_key = result
        if blob_key:
            await self._blobs.delete(blob_key)
        return tombstone

    async def reap(self, batch: int = 500) -> int:
        """Remove expired objects and old tombstones; return how many rows went."""
        now = self._clock.now_ms()
        reaped = await self._meta.reap(now, now - self._limits.deleted_retention_ms, batch)
        for key in reaped.blob_keys:
            await self._blobs.delete(key)
        return len(reaped.object_ids)
