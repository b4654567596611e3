"""The object lifecycle: create → upload → complete → read → delete or expire.

States: UPLOADING (bytes may be (re)uploaded) → READ_ONLY (immutable, downloadable) →
DELETED (a tombstone kept for ``deleted_retention`` so clients see why a download fails).
Expired objects disappear immediately and the reaper removes their rows and blobs.

Two ways in: the Runloop three steps (``create``, ``upload``, ``complete``) and the Djinn
single request (``store``), which validates every field at once and gives the name a
uniqueness guarantee. Reads and deletes follow one access policy (``access.may_read`` and
``access.may_modify``) whichever dialect asks.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass

from .access import Principal, may_modify, may_read
from .clock import Clock
from .errors import Conflict, FieldErrors, Gone, Invalid, NameTaken, NotFound, TooLarge
from .ids import new_blob_key, new_object_id
from .models import (
    ContentType,
    Namespace,
    NewObject,
    ObjectQuery,
    ObjectState,
    Page,
    StoredObject,
    Visibility,
)
from .namespaces import NamespaceService
from .naming import (
    MAX_NAME_BYTES,
    validate_metadata,
    validate_metadata_key,
    validate_object_name,
    validate_ttl_ms,
)
from .ports import BlobStore, DirectBlobStore, MetadataStore
from .sniff import detect_content_type

log = logging.getLogger(__name__)

MAX_PAGE = 5000
UNIQUE_NAME = re.compile(r"^[a-zA-Z0-9._-]+$")
UNIQUE_NAME_RULE = r"^[a-zA-Z0-9\._\-]+$"
Caller = Principal | None  # None: an anonymous request (or a presigned URL)


@dataclass(frozen=True, slots=True)
class Limits:
    max_upload_bytes: int
    deleted_retention_ms: int


def human_size(n: int) -> str:
    """Whole 1024-based units as Djinn words its limit: 5242880 → "5 MB"."""
    for unit, size in (("GB", 1024**3), ("MB", 1024**2), ("KB", 1024)):
        if n >= size and n % size == 0:
            return f"{n // size} {unit}"
    return f"{n} B"


def content_kind(name: str, mime_type: str) -> ContentType:
    """The Runloop content kind of an object uploaded without one (by name, then bytes)."""
    lower = name.lower()
    if lower.endswith((".tgz", ".tar.gz")):
        return ContentType.TGZ
    if lower.endswith(".tar"):
        return ContentType.TAR
    if lower.endswith(".gz") or mime_type == "application/x-gzip":
        return ContentType.GZIP
    if mime_type.startswith("text/"):
        return ContentType.TEXT
    return ContentType.UNSPECIFIED


def staging_key(public_id: str) -> str:
    """Where a client's direct (presigned S3) upload lands before ``complete`` adopts it.
    The final blob gets a key of its own, so a still-valid upload URL cannot change it."""
    return f"upload-{public_id}"


async def _peek(chunks: AsyncIterator[bytes]) -> tuple[bytes, AsyncIterator[bytes]]:
    """The first non-empty chunk (b"" for an empty body) and the whole stream again."""
    first = b""
    async for chunk in chunks:
        if chunk:
            first = chunk
            break

    async def again() -> AsyncIterator[bytes]:
        if first:
            yield first
            async for chunk in chunks:
                yield chunk

    return first, again()


class ObjectService:
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

    @property
    def _direct(self) -> DirectBlobStore | None:
        return self._blobs if isinstance(self._blobs, DirectBlobStore) else None

    def direct_upload_url(self, obj: StoredObject, expires_s: int) -> str | None:
        """A presigned URL on the blob store itself, or None when stowage takes the bytes."""
        direct = self._direct
        return direct.presign("PUT", staging_key(obj.public_id), expires_s) if direct else None

    def direct_download_url(self, obj: StoredObject, expires_s: int) -> str | None:
        direct = self._direct
        if direct is None or obj.blob_key is None:
            return None
        return direct.presign("GET", obj.blob_key, expires_s)

    # --- reads -------------------------------------------------------------------------

    async def _live(self, ref: str | int) -> StoredObject:
        obj = await self._meta.get_object(ref)
        if obj is None or obj.expired(self._clock.now_ms()):
            raise NotFound("Object not found")
        return obj

    async def _root(self, obj: StoredObject, caller: Caller) -> tuple[Namespace | None, bool]:
        if obj.namespace_id is None:
            return None, False
        access = await self._meta.namespace_access(
            obj.namespace_id, caller.user.id if caller else None
        )
        return access if access is not None else (None, False)

    async def get(self, caller: Caller, ref: str | int) -> StoredObject:
        """The object if the caller may read it. Objects in public namespaces need neither
        a token nor the object:read scope; everything else needs both. The scope is checked
        after access, so a token without it cannot tell others' objects from absent ones."""
        obj = await self._live(ref)
        root, collaborating = await self._root(obj, caller)
        viewer = caller.user.id if caller else None
        if not may_read(viewer, obj.owner_id, root, collaborating):
            raise NotFound("Object not found")
        if root is None or root.visibility is not Visibility.PUBLIC:
            assert caller is not None  # may_read lets the anonymous see public ones only
            caller.require("object:read")
        return obj

    async def list(self, caller: Principal, query: ObjectQuery) -> Page:
        caller.require("object:read")
        if not 1 <= query.limit <= MAX_PAGE:
            raise Invalid(f"limit must be between 1 and {MAX_PAGE}")
        return await self._meta.list_objects(query, self._clock.now_ms())

    async def list_in(self, caller: Caller, namespace: Namespace, query: ObjectQuery) -> Page:
        """Objects of a namespace the caller may already see (``NamespaceService.find``)."""
        if namespace.visibility is not Visibility.PUBLIC:
            assert caller is not None
            caller.require("object:read")
        return await self._meta.list_objects(query, self._clock.now_ms())

    async def metadata_keys(self, principal: Principal) -> list[str]:
        principal.require("object:read")
        return await self._meta.metadata_keys(principal.user.id, self._clock.now_ms())

    async def metadata_values(self, principal: Principal, key: str) -> list[str]:
        principal.require("object:read")
        validate_metadata_key(key)
        return await self._meta.metadata_values(principal.user.id, key, self._clock.now_ms())

    async def downloadable(self, caller: Caller, ref: str | int, presigned: bool) -> StoredObject:
        """The object if its bytes may be handed out. ``presigned``: the URL's signature
        already proved access, so only existence and state are checked."""
        obj = await self._live(ref) if presigned else await self.get(caller, ref)
        if obj.state is ObjectState.DELETED:
            raise Gone("Object is deleted")
        if obj.state is not ObjectState.READ_ONLY or obj.blob_key is None:
            raise Invalid(f"Object is {obj.state.value}; only completed objects can be downloaded")
        return obj

    async def read(self, obj: StoredObject, start: int, length: int) -> AsyncIterator[bytes]:
        assert obj.blob_key is not None
        return await self._blobs.read(obj.blob_key, start, length)

    # --- writes: the Runloop three steps -------------------------------------------------

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

    def _over_limit(self, declared_size: int | None) -> bool:
        """True when the client announced more than the limit: refuse before reading."""
        return declared_size is not None and declared_size > self.limits.max_upload_bytes

    def _too_large(self) -> TooLarge:
        return TooLarge(f"the upload exceeds the limit of {self.limits.max_upload_bytes} bytes")

    def _file_too_large(self) -> FieldErrors:
        limit = human_size(self.limits.max_upload_bytes)
        return FieldErrors({"file": [f"file too large, cannot exceed {limit}"]})

    async def upload(
        self, public_id: str, chunks: AsyncIterator[bytes], declared_size: int | None = None
    ) -> StoredObject:
        """Store the bytes of an UPLOADING object; the caller has already proved access."""
        if self._over_limit(declared_size):
            raise self._too_large()
        obj = await self._live(public_id)
        if obj.state is not ObjectState.UPLOADING:
            raise Conflict(
                f"Object is {obj.state.value}; uploads are only accepted while UPLOADING"
            )
        key = new_blob_key()
        written = await self._blobs.put(key, chunks, self.limits.max_upload_bytes)
        mime = detect_content_type(written.head)
        attached, replaced = await self._meta.attach_blob(public_id, key, written, mime)
        if not attached:
            await self._blobs.delete(key)
            raise Conflict("Object was completed or deleted while the upload was running")
        if replaced:
            await self._blobs.delete(replaced)
        return await self._live(public_id)

    async def modifiable(self, caller: Principal, ref: str | int, scope: str) -> StoredObject:
        """The object if the caller holds ``scope`` and may change it (no read scope needed)."""
        caller.require(scope)
        obj = await self._live(ref)
        root, collaborating = await self._root(obj, caller)
        if not may_modify(caller.user.id, obj.owner_id, root, collaborating):
            raise NotFound("Object not found")
        return obj

    async def complete(self, principal: Principal, public_id: str) -> StoredObject:
        obj = await self.modifiable(principal, public_id, "object:write")
        if obj.state is not ObjectState.UPLOADING:
            raise Conflict(f"Object is {obj.state.value}, not UPLOADING")
        if obj.blob_key is None:
            if self._direct is None:
                raise Invalid("Nothing has been uploaded yet: PUT the bytes to upload_url first")
            await self._adopt(self._direct, obj)
        done = await self._meta.complete_object(public_id)
        if done is None:
            raise Conflict("Object changed state while completing")
        return done

    async def _adopt(self, direct: DirectBlobStore, obj: StoredObject) -> None:
        """Make a direct upload the object's blob: copy it to a key of its own (the upload
        URL may still be valid) and hash it, which costs one read of the object."""
        staged = staging_key(obj.public_id)
        size = await direct.size(staged)
        if size is None:
            raise Invalid("Nothing has been uploaded yet: PUT the bytes to upload_url first")
        if size > self.limits.max_upload_bytes:
            await direct.delete(staged)
            raise self._too_large()
        key = new_blob_key()
        await direct.copy(staged, key)
        written = await direct.digest(key)
        mime = detect_content_type(written.head)
        attached, replaced = await self._meta.attach_blob(obj.public_id, key, written, mime)
        if not attached:
            await direct.delete(key)
            raise Conflict("Object was completed or deleted while completing")
        if replaced:
            await direct.delete(replaced)
        await direct.delete(staged)

    # --- writes: the Djinn single request ------------------------------------------------

    async def store(
        self,
        caller: Principal,
        name: str | None,
        namespace_ref: str | None,
        chunks: AsyncIterator[bytes],
        declared_size: int | None = None,
    ) -> StoredObject:
        """Validate everything, then stream the body into a READ_ONLY object at once."""
        caller.require("object:write")
        if self._over_limit(declared_size):
            raise self._file_too_large()
        target = (
            await self._namespaces.upload_target(caller, namespace_ref) if namespace_ref else None
        )
        errors: dict[str, list[str]] = {}
        if not name:
            errors["name"] = ["Name field required"]
        if not name or not UNIQUE_NAME.match(name):
            errors.setdefault("name", []).append(f"Name does not match {UNIQUE_NAME_RULE}")
        elif len(name) > MAX_NAME_BYTES:  # the rule admits ASCII only: characters are bytes
            errors["name"] = [f"Name cannot be longer than {MAX_NAME_BYTES} characters"]
        elif target is None or target.namespace is not None:
            namespace_id = target.namespace.id if target and target.namespace else None
            if await self._meta.name_taken(caller.user.id, namespace_id, name):
                errors["name"] = ["Name already exists"]
        first, body = await _peek(chunks)
        if not first:
            errors["file"] = ["File field required"]
        if errors:
            raise FieldErrors(errors)
        assert name is not None
        namespace = await self._namespaces.materialise(target) if target else None

        key = new_blob_key()
        try:
            written = await self._blobs.put(key, body, self.limits.max_upload_bytes)
        except TooLarge:
            raise self._file_too_large() from None
        mime = detect_content_type(written.head)
        now = self._clock.now_ms()
        new = NewObject(
            public_id=new_object_id(now),
            owner_id=namespace.owner_id if namespace else caller.user.id,
            author_id=caller.user.id,
            name=name,
            content_type=content_kind(name, mime),
            metadata=None,
            create_time_ms=now,
            delete_after_time_ms=None,
            namespace_id=namespace.id if namespace else None,
        )
        try:
            return await self._meta.insert_stored_object(new, key, written, mime)
        except NameTaken:  # lost a race for the name: the database constraint decided
            await self._blobs.delete(key)
            raise FieldErrors({"name": ["Name already exists"]}) from None
        except BaseException:
            await self._blobs.delete(key)
            raise

    # --- removal -------------------------------------------------------------------------

    async def delete(self, caller: Principal, ref: str | int) -> StoredObject:
        obj = await self.modifiable(caller, ref, "object:delete")
        result = await self._meta.mark_deleted(obj.public_id, self._clock.now_ms())
        if result is None:
            raise NotFound("Object not found")
        tombstone, blob_key = result
        if blob_key:
            await self._blobs.delete(blob_key)
        if self._direct and obj.state is ObjectState.UPLOADING:
            await self._direct.delete(staging_key(obj.public_id))
        return tombstone

    async def reap(self, batch: int = 500) -> int:
        """Remove expired objects and old tombstones; return how many rows went."""
        now = self._clock.now_ms()
        reaped = await self._meta.reap(now, now - self.limits.deleted_retention_ms, batch)
        for key in reaped.blob_keys:
            await self._blobs.delete(key)
        if self._direct:
            for public_id in reaped.unfinished:
                await self._direct.delete(staging_key(public_id))
        return len(reaped.object_ids)
