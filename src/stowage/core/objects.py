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
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass

from .access import Principal, may_modify, may_read
from .clock import Clock
from .errors import (
    Conflict,
    FieldErrors,
    Gone,
    Invalid,
    NamespaceGone,
    NameTaken,
    NotFound,
    TooLarge,
)
from .idempotency import KEY_LIFETIME_MS, KEY_REUSED, keyed_request
from .ids import new_blob_key, new_object_id
from .models import (
    ContentType,
    KeptAnswer,
    KeyedRequest,
    Namespace,
    NewObject,
    ObjectQuery,
    ObjectState,
    Page,
    Reaped,
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
NOTHING_UPLOADED = "Nothing has been uploaded yet: PUT the bytes to upload_url first"
UNIQUE_NAME = re.compile(r"^[a-zA-Z0-9._-]+$")
UNIQUE_NAME_RULE = r"^[a-zA-Z0-9\._\-]+$"
Caller = Principal | None  # None: an anonymous request (or a presigned URL)


@dataclass(frozen=True, slots=True)
class Limits:
    max_upload_bytes: int
    deleted_retention_ms: int
    upload_ttl_ms: int = 24 * 3600 * 1000  # an upload not completed by then is removed


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


def new_staging_key() -> str:
    """Where a client's direct (presigned S3) upload lands before ``complete`` adopts it:
    random per object and recorded in its row. ``complete`` copies it to a key of its own
    and deletes it, so a still-valid upload URL can never change the object's bytes."""
    return f"upload-{new_blob_key()}"


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
        if direct is None or obj.staging_key is None:
            return None
        return direct.presign("PUT", obj.staging_key, expires_s)

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

    async def visible(self, caller: Principal, query: ObjectQuery) -> Page:
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

    async def read_bytes(self, obj: StoredObject, start: int, length: int) -> bytes:
        assert obj.blob_key is not None
        return await self._blobs.read_bytes(obj.blob_key, start, length)

    # --- writes: the Runloop three steps -------------------------------------------------

    async def create(
        self,
        principal: Principal,
        name: str,
        content_type: ContentType,
        metadata: Mapping[str, object] | None,
        ttl_ms: int | None,
        key: str | None = None,
    ) -> StoredObject:
        """A new UPLOADING object; under an idempotency ``key`` already used for the same
        request, the object that request made, as it is now."""
        principal.require("object:write")
        validate_object_name(name)
        clean_metadata = validate_metadata(metadata)
        ttl = validate_ttl_ms(ttl_ms)
        now = self._clock.now_ms()
        keyed = keyed_request(
            principal.token_id, key, now, "create", name, content_type, clean_metadata, ttl
        )
        new = NewObject(
            public_id=new_object_id(now),
            owner_id=principal.user.id,
            author_id=principal.user.id,
            name=name,
            content_type=content_type,
            metadata=clean_metadata,
            create_time_ms=now,
            delete_after_time_ms=now + ttl if ttl is not None else None,
            creator_token_id=principal.token_id,
            staging_key=new_staging_key() if self._direct else None,
            upload_deadline_ms=now + self.limits.upload_ttl_ms,
        )

        async def insert() -> StoredObject:
            made = await self._meta.create_object(new, keyed)
            if made is None:  # a twin under the same key was first; _once answers with it
                raise Conflict(KEY_REUSED)
            return made

        return await self._once(keyed, insert)

    async def _once(
        self, keyed: KeyedRequest | None, action: Callable[[], Awaitable[StoredObject]]
    ) -> StoredObject:
        """Do ``action`` (which records ``keyed`` with its result) unless the key is known.
        A Conflict it raises is checked against the key: when the same request was done
        before, or by a twin that won the race, its object is the answer."""
        try:
            return await action()
        except Conflict:
            kept = await self._meta.kept_answer(keyed) if keyed else None
            if keyed is None or kept is None:
                raise
            return await self._kept(keyed, kept)

    async def _kept(self, keyed: KeyedRequest, kept: KeptAnswer) -> StoredObject:
        """The answer to a request repeated under its key: the object as it is now."""
        if kept.request_hash != keyed.request_hash:
            raise Conflict(KEY_REUSED)
        obj = await self._meta.get_object(kept.public_id)
        if obj is None or obj.expired(self._clock.now_ms()):
            raise Conflict(f"{kept.public_id}, made under this idempotency key, has expired")
        return obj

    async def forget_keys(self, batch: int = 500) -> int:
        """Purge up to ``batch`` idempotency keys older than KEY_LIFETIME_MS; return how many."""
        return await self._meta.forget_keys(self._clock.now_ms() - KEY_LIFETIME_MS, batch)

    def _over_limit(self, declared_size: int | None) -> bool:
        """True when the client announced more than the limit: refuse before reading."""
        return declared_size is not None and declared_size > self.limits.max_upload_bytes

    def _too_large(self) -> TooLarge:
        return TooLarge(f"the upload exceeds the limit of {self.limits.max_upload_bytes} bytes")

    def _file_too_large(self) -> FieldErrors:
        limit = human_size(self.limits.max_upload_bytes)
        return FieldErrors({"file": [f"file too large, cannot exceed {limit}"]})

    async def upload_target(self, public_id: str) -> StoredObject:
        """The object a presigned PUT names, if it still takes uploads (the signature has
        proved access); its creator's upload slots are the ones the PUT takes."""
        obj = await self._live(public_id)
        if obj.state is not ObjectState.UPLOADING:
            raise Conflict(
                f"Object is {obj.state.value}; uploads are only accepted while UPLOADING"
            )
        return obj

    async def upload(
        self, obj: StoredObject, chunks: AsyncIterator[bytes], declared_size: int | None = None
    ) -> StoredObject:
        """Store the bytes of an UPLOADING object (from ``upload_target`` or ``create``)."""
        if self._over_limit(declared_size):
            raise self._too_large()
        key = new_blob_key()
        written = await self._blobs.put(key, chunks, self.limits.max_upload_bytes)
        mime = detect_content_type(written.head)
        public_id = obj.public_id
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

    async def complete(
        self, principal: Principal, public_id: str, key: str | None = None
    ) -> StoredObject:
        """Seal the uploaded bytes. Under an idempotency ``key`` that already completed this
        object (a retry whose first answer was lost), the object is the answer, not a 409."""
        obj = await self.modifiable(principal, public_id, "object:write")
        keyed = keyed_request(
            principal.token_id, key, self._clock.now_ms(), "complete", obj.public_id
        )
        return await self._once(keyed, lambda: self._complete(obj, keyed))

    async def _complete(self, obj: StoredObject, keyed: KeyedRequest | None) -> StoredObject:
        if obj.state is not ObjectState.UPLOADING:
            raise Conflict(f"Object is {obj.state.value}, not UPLOADING")
        if obj.blob_key is None:
            if self._direct is None:
                raise Conflict(NOTHING_UPLOADED)
            await self._adopt(self._direct, obj)
        done = await self._meta.complete_object(obj.public_id, keyed)
        if done is None:
            raise Conflict("Object changed state while completing")
        return done

    async def _adopt(self, direct: DirectBlobStore, obj: StoredObject) -> None:
        """Make a direct upload the object's blob: copy it to a key of its own, which no
        URL can reach, then check and hash the copy (one read). A PUT racing with this
        changes the staging key, never the copy, so size and hashes describe what is
        attached. The staging key is deleted: complete consumes the upload."""
        staged = obj.staging_key
        if staged is None:
            raise Conflict(NOTHING_UPLOADED)
        key = new_blob_key()
        try:
            await direct.copy(staged, key)
        except FileNotFoundError:
            raise Conflict(NOTHING_UPLOADED) from None
        try:
            size = await direct.size(key)
            if size is None or size > self.limits.max_upload_bytes:
                raise self._too_large()
            written = await direct.digest(key)
            mime = detect_content_type(written.head)
            attached, replaced = await self._meta.attach_blob(obj.public_id, key, written, mime)
        except BaseException:
            await direct.delete(key)
            raise
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
        except NamespaceGone:  # deleted while the body was arriving
            await self._blobs.delete(key)
            raise FieldErrors(
                {"namespace": [f"Namespace {namespace_ref} does not exist"]}
            ) from None
        except BaseException:
            await self._blobs.delete(key)
            raise

    # --- removal -------------------------------------------------------------------------

    async def delete(self, caller: Principal, ref: str | int) -> StoredObject:
        return await self._remove(await self.modifiable(caller, ref, "object:delete"))

    async def discard_upload(self, caller: Principal, obj: StoredObject) -> None:
        """Remove an upload this token created and could not finish: cleaning up one's own
        failed write needs only the object:write scope that made it, not object:delete."""
        caller.require("object:write")
        if obj.state is ObjectState.UPLOADING and obj.creator_token_id == caller.token_id:
            await self._remove(obj)

    async def _remove(self, obj: StoredObject) -> StoredObject:
        result = await self._meta.mark_deleted(obj.public_id, self._clock.now_ms())
        if result is None:
            raise NotFound("Object not found")
        tombstone, blob_key = result
        if blob_key:
            await self._blobs.delete(blob_key)
        if obj.staging_key and obj.state is ObjectState.UPLOADING:
            # A PUT to the upload URL may still land here; the reaper removes that later.
            await self._blobs.delete(obj.staging_key)
        return tombstone

    async def reap(self, batch: int = 500) -> Reaped:
        """Remove expired objects, uploads left unfinished past their deadline and old
        tombstones, and the bytes late PUTs left on staging keys; return what went. Rows
        removed (``object_ids``) and staging keys released (``swept``) are told apart, so
        only the first count as reaped objects."""
        now = self._clock.now_ms()
        reaped = await self._meta.reap(now, now - self.limits.deleted_retention_ms, batch)
        for key in (*reaped.blob_keys, *reaped.staging_keys):
            await self._blobs.delete(key)
        return reaped
