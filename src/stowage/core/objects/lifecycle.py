"""Uploads in three steps: create an UPLOADING object, put its bytes (any number of
times; the last wins), complete it (READ_ONLY).

The bytes come through a presigned URL, to stowage (``upload``, with the ``Grant`` that
the URL's signature proves) or straight to an S3 blob store (``direct_upload_url``),
whose upload ``complete`` adopts. ``create`` and ``complete`` take an idempotency key.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass

from ..access import Principal
from ..errors import Conflict
from ..idempotency import KEY_LIFETIME_MS, KEY_REUSED, keyed_request
from ..ids import is_inline_key, new_blob_key, new_object_id
from ..models import ContentType, KeptAnswer, KeyedRequest, NewObject, ObjectState, StoredObject
from ..naming import validate_metadata, validate_object_name, validate_ttl_ms
from ..ports import DirectBlobStore
from ..presign import Grant
from ..sniff import detect_content_type
from .base import ObjectsBase

NOTHING_UPLOADED = "Nothing has been uploaded yet: PUT the bytes to upload_url first"


def new_staging_key() -> str:
    """Where a client's direct (presigned S3) upload lands before ``complete`` adopts it:
    random per object and recorded in its row. ``complete`` copies it to a key of its own
    and deletes it, so a still-valid upload URL can never change the object's bytes."""
    return f"upload-{new_blob_key()}"


@dataclass(frozen=True, slots=True)
class UploadTicket:
    """An UPLOADING object a presigned PUT may write (``Lifecycle.upload_target``)."""

    obj: StoredObject


class Lifecycle(ObjectsBase):
    def direct_upload_url(self, obj: StoredObject, expires_s: int) -> str | None:
        """A presigned URL on the blob store itself, or None when stowage takes the bytes."""
        direct = self._direct
        if direct is None or obj.staging_key is None:
            return None
        return direct.presign("PUT", obj.staging_key, expires_s)

    def direct_download_url(self, obj: StoredObject, expires_s: int) -> str | None:
        """A presigned URL on the blob store itself, or None when stowage serves the bytes
        (always those of an inline blob: the store has none)."""
        direct = self._direct
        if direct is None or obj.blob_key is None or is_inline_key(obj.blob_key):
            return None
        return direct.presign("GET", obj.blob_key, expires_s)

    async def create(
        self,
        caller: Principal,
        name: str,
        content_type: ContentType,
        metadata: Mapping[str, object] | None,
        ttl_ms: int | None,
        key: str | None = None,
    ) -> StoredObject:
        """A new UPLOADING object; under an idempotency ``key`` already used for the same
        request, the object that request made, as it is now."""
        caller.require("object:write")
        validate_object_name(name)
        clean_metadata = validate_metadata(metadata)
        ttl = validate_ttl_ms(ttl_ms)
        now = self._clock.now_ms()
        keyed = keyed_request(
            caller.token_id, key, now, "create", name, content_type, clean_metadata, ttl
        )
        new = NewObject(
            public_id=new_object_id(now),
            owner_id=caller.user.id,
            author_id=caller.user.id,
            name=name,
            content_type=content_type,
            metadata=clean_metadata,
            create_time_ms=now,
            delete_after_time_ms=now + ttl if ttl is not None else None,
            creator_token_id=caller.token_id,
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

    async def upload_target(self, grant: Grant) -> UploadTicket:
        """The object a presigned PUT names, if it still takes uploads; its creator's
        upload slots are the ones the PUT takes."""
        grant.require("PUT")
        obj = await self._live(grant.object_id)
        if obj.state is not ObjectState.UPLOADING:
            raise Conflict(
                f"Object is {obj.state.value}; uploads are only accepted while UPLOADING"
            )
        return UploadTicket(obj)

    async def upload(
        self, ticket: UploadTicket, chunks: AsyncIterator[bytes], declared_size: int | None = None
    ) -> StoredObject:
        """Store the bytes of the UPLOADING object ``upload_target`` gave a ticket for."""
        self._refuse_declared(declared_size)
        key, written = await self._store(chunks, self.limits.max_upload_bytes)
        mime = detect_content_type(written.head)
        public_id = ticket.obj.public_id
        held: str | None = None
        try:
            held = await self._meta.attach_blob(
                public_id, written.shared or key, written, mime, self._clock.now_ms()
            )
        finally:
            await self._drop_unheld(key, written, held)
        if held is None:
            raise Conflict("Object was completed or deleted while the upload was running")
        return await self._live(public_id)

    async def complete(
        self, caller: Principal, public_id: str, key: str | None = None
    ) -> StoredObject:
        """Seal the uploaded bytes. Under an idempotency ``key`` that already completed this
        object (a retry whose first answer was lost), the object is the answer, not a 409."""
        obj = await self.modifiable(caller, public_id, "object:write")
        keyed = keyed_request(caller.token_id, key, self._clock.now_ms(), "complete", obj.public_id)
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
        attached. The staging key is deleted: complete consumes the upload. The copy is
        deleted too when a stored blob has the same content (the object shares that one):
        a direct upload is deduplicated only after it was copied."""
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
            now = self._clock.now_ms()
            held = await self._meta.attach_blob(obj.public_id, key, written, mime, now)
        except BaseException:
            await direct.delete(key)
            raise
        await self._drop_unheld(key, written, held)
        if held is None:
            raise Conflict("Object was completed or deleted while completing")
        await direct.delete(staged)
