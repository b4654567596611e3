"""Uploads in parts (S3's multipart uploads): start one for a name in a namespace, put its
parts in any order and any number of times (the last put of a number wins), then complete
it with the list of parts to keep, or abort it.

On a blob store with multipart uploads of its own (``ports.BlobParts``, S3's) the upload
starts one, each part goes into it, and completing completes it into the object's blob.
Elsewhere each part is a blob of its own, and completing joins the listed parts, in order,
into one new blob: without copying a byte where the store can (``ports.JoiningBlobStore``,
local disk), else by copying them through the store's usual write. Either way the upload
ends and the object takes its name's place in one transaction. The object also keeps S3's
ETag for it: the md5 of the parts' md5s, and ``-N``. Its own md5 and sha256 cannot be made
from the parts': unless the copy computed them, they follow in the background
(``digests.py``). An upload not completed by its deadline is reaped, its bytes with it.

Parts are not deduplicated, and neither is an object whose digests follow completion (a
joined blob, or one the store completed): only one copied through the store's usual write
drops its copy when a stored blob has the same content.

The blob an upload completes into is its own until that transaction: a completion that
fails leaves it to the upload (a retry completes it again; the reaper removes it), and
whoever ends the upload otherwise (abort, the reaper) removes it, after aborting the
store's upload so that no completion racing with them can make it appear later.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import AsyncIterator, Callable, Mapping, Sequence

from ..access import Principal
from ..checksums import of_parts
from ..errors import Invalid, NotFound, TooLarge, Unavailable
from ..ids import new_blob_key, new_object_id
from ..models import (
    BlobWritten,
    Checksum,
    Claimed,
    MultipartUpload,
    Namespace,
    NewObject,
    StoredObject,
    UploadedPart,
)
from ..naming import content_kind, validate_metadata, validate_object_name
from ..ports import BlobParts, JoiningBlobStore
from .digests import Digests

MAX_PARTS = 10_000
MIN_PART_BYTES = 5 * 1024 * 1024  # every part but the last, as S3 requires
# The store's own uploads with no row are orphans once older than any upload may live,
# and this much more (a completion may still be reading its blob back).
ORPHAN_MARGIN_MS = 3600 * 1000
MISSING_PARTS = (
    "One or more of the specified parts could not be found. The part may not have been "
    "uploaded, or the specified entity tag may not match the part's entity tag."
)


class NoSuchUpload(NotFound):
    """The upload id names no upload in progress (never started, completed or aborted)."""


class PartProblem(Invalid):
    """A completion's part list is wrong: ``code`` says how (``order``, ``missing``,
    ``too_small``), ``part_number`` which part."""

    def __init__(self, code: str, part_number: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.part_number = part_number


def multipart_etag(md5s: Sequence[str]) -> str:
    """S3's ETag of an object assembled from parts: the md5 of their binary md5s, ``-N``."""
    joined = b"".join(bytes.fromhex(m) for m in md5s)
    return f"{hashlib.md5(joined).hexdigest()}-{len(md5s)}"


def _checksum_of(upload: MultipartUpload, parts: Sequence[UploadedPart]) -> Checksum | None:
    """The object's checksum, from its parts' when the upload has an algorithm and every
    part has one (a part written some other way may not)."""
    sums = [(p.checksum, p.size) for p in parts if p.checksum is not None]
    if upload.checksum_algorithm is None or len(sums) < len(parts):
        return None
    return of_parts(upload.checksum_algorithm, sums, upload.composite)


class Multipart(Digests):
    @property
    def _own_parts(self) -> BlobParts | None:
        direct = self._direct
        return direct.parts if direct else None

    def _backing(self, upload: MultipartUpload) -> tuple[BlobParts, str, str] | None:
        """The store's own upload that holds this upload's parts: (its calls, the blob key
        it completes into, its id); None when each part is a blob of its own."""
        if upload.backing_id is None or upload.blob_key is None:
            return None
        parts = self._own_parts
        if parts is None:  # started while the store had its keys, which it has no more
            raise Unavailable("the blob store's own multipart uploads are not configured")
        return parts, upload.blob_key, upload.backing_id

    async def start_multipart(
        self,
        caller: Principal,
        namespace: Namespace,
        name: str,
        metadata: Mapping[str, object] | None,
        mime_type: str | None,
        *,
        headers: Mapping[str, str] | None = None,
        checksum_algorithm: str | None = None,
        composite: bool = True,
        tags: Mapping[str, str] | None = None,
    ) -> MultipartUpload:
        """``headers`` and ``tags`` are the object's (``StoredObject``); with
        ``checksum_algorithm``, each part keeps its checksum and the object gets one
        derived from theirs (``MultipartUpload``)."""
        caller.require("object:write")
        validate_object_name(name, control_characters=True)  # an S3 key
        clean = validate_metadata(metadata)
        target = await self._namespaces.writable(caller, namespace)
        own, key, backing_id = self._own_parts, None, None
        if own is not None:
            key = new_blob_key()
            backing_id = await own.start(key)
        now = self._clock.now_ms()
        try:
            return await self._meta.create_multipart(
                MultipartUpload(
                    id=0,
                    upload_id=secrets.token_urlsafe(24),
                    namespace_id=namespace.id,
                    name=name,
                    owner_id=target.owner_id,
                    author_id=caller.user.id,
                    creator_token_id=caller.token_id,
                    metadata=clean,
                    mime_type=mime_type,
                    created_ms=now,
                    deadline_ms=now + self.limits.upload_ttl_ms,
                    headers=dict(headers) if headers else None,
                    checksum_algorithm=checksum_algorithm,
                    composite=composite,
                    blob_key=key,
                    backing_id=backing_id,
                    tags=dict(tags) if tags else None,
                )
            )
        except BaseException:
            if own is not None and key is not None and backing_id is not None:
                await own.abort(key, backing_id)
            raise

    async def multipart(
        self, caller: Principal, namespace: Namespace, name: str, upload_id: str
    ) -> MultipartUpload:
        """The upload in progress under this id for this name, if the caller may write
        where it goes."""
        upload = await self._meta.get_multipart(upload_id)
        if (
            upload is None
            or upload.namespace_id != namespace.id
            or upload.name != name
            or upload.deadline_ms <= self._clock.now_ms()
        ):
            raise NoSuchUpload("The specified upload does not exist")
        await self._namespaces.writable(caller, namespace)
        return upload

    async def put_part(
        self,
        caller: Principal,
        upload: MultipartUpload,
        part_number: int,
        chunks: AsyncIterator[bytes],
        declared_size: int | None,
        checksum: Callable[[], Checksum | None] | None = None,
        claimed: Claimed | None = None,
    ) -> UploadedPart:
        """``checksum``, asked once the body has been read (as ``WholePut.put``'s), is
        kept when it is of the upload's algorithm. ``claimed`` digests are checked as
        ``WholePut.put`` checks them, on an upload whose ``parts_are_blobs`` only."""
        caller.require("object:write")
        if not 1 <= part_number <= MAX_PARTS:
            raise Invalid(f"Part number must be an integer between 1 and {MAX_PARTS}, inclusive")
        self._refuse_declared(declared_size)
        backing = self._backing(upload)
        key: str | None = None
        if backing is None:
            key = new_blob_key()
            written = await self._blobs.put(key, chunks, self.limits.max_upload_bytes)
            await self._keep_if_claimed(key, claimed, written)
            assert written.md5 is not None  # a put hashes what it writes
            size, md5 = written.size, written.md5
        elif claimed is not None:
            raise ValueError("the store's own upload computes no sha256 of a part")
        elif declared_size is None:  # the store's own upload takes a part's size first
            raise Invalid("A part's size must be declared (Content-Length)")
        else:
            parts, target, backing_id = backing
            try:
                md5 = await parts.put(target, backing_id, part_number, chunks, declared_size)
            except FileNotFoundError:  # aborted or reaped meanwhile
                raise NoSuchUpload("The specified upload does not exist") from None
            size = declared_size
        found = checksum() if checksum else None
        kept = found.value if found and found.algorithm == upload.checksum_algorithm else None
        part = UploadedPart(part_number, key, size, md5, self._clock.now_ms(), kept)
        try:
            recorded, replaced = await self._meta.put_part(upload, part)
        except BaseException:
            await self._forget(key)
            raise
        if not recorded:
            await self._forget(key)
            raise NoSuchUpload("The specified upload does not exist")
        await self._forget(replaced)
        return part

    async def _forget(self, key: str | None) -> None:
        """Delete a part's blob, if it has one."""
        if key is not None:
            await self._delete_blob(key)

    async def parts(
        self, caller: Principal, upload: MultipartUpload, after: int, limit: int
    ) -> list[UploadedPart]:
        caller.require("object:write")
        return await self._meta.parts(upload, after, limit)

    async def uploads_in(
        self,
        caller: Principal,
        namespace: Namespace,
        prefix: str,
        key_marker: str,
        id_marker: str,
        limit: int,
    ) -> list[MultipartUpload]:
        caller.require("object:write")
        await self._namespaces.writable(caller, namespace)
        return await self._meta.list_multipart(namespace.id, prefix, key_marker, id_marker, limit)

    async def abort_multipart(self, caller: Principal, upload: MultipartUpload) -> None:
        caller.require("object:write")
        keys = await self._meta.end_multipart(upload)
        if keys is None:
            raise NoSuchUpload("The specified upload does not exist")
        await self._release(upload, keys)

    async def _release(self, upload: MultipartUpload, part_keys: Sequence[str]) -> None:
        """The bytes of an upload just ended (not completed): the store's own upload, then
        the blob it may have completed into, or the parts' blobs."""
        backing = self._backing(upload)
        if backing is not None:
            parts, target, backing_id = backing
            await parts.abort(target, backing_id)
            await self._blobs.delete(target)
        for key in part_keys:
            await self._blobs.delete(key)

    async def complete_multipart(
        self, caller: Principal, upload: MultipartUpload, chosen: Sequence[tuple[int, str]]
    ) -> StoredObject:
        """Assemble the ``chosen`` parts (number and md5, ascending) into the object."""
        caller.require("object:write")
        parts = {p.part_number: p for p in await self._meta.parts(upload)}
        kept = self._check_parts(chosen, parts)
        total = sum(p.size for p in kept)
        if total > self.limits.max_object_bytes:
            limit = self.limits.max_object_bytes
            raise TooLarge(f"the object would exceed the limit of {limit} bytes")
        key, written, ours = await self._assemble(upload, kept)
        now = self._clock.now_ms()
        mime = upload.mime_type or "binary/octet-stream"
        new = NewObject(
            public_id=new_object_id(now),
            owner_id=upload.owner_id,
            author_id=upload.author_id,
            name=upload.name,
            content_type=content_kind(upload.name, mime),
            metadata=upload.metadata,
            create_time_ms=now,
            delete_after_time_ms=None,
            namespace_id=upload.namespace_id,
            creator_token_id=upload.creator_token_id,
            unique_name=True,
            etag=multipart_etag([p.md5 for p in kept]),
            headers=upload.headers,
            checksum=_checksum_of(upload, kept),
            tags=upload.tags,
        )
        try:
            done = await self._meta.complete_multipart(
                upload, new, written.shared or key, written, mime, now
            )
        except BaseException:
            await self._forget(ours)
            raise
        if done is None:
            await self._forget(ours)
            raise NoSuchUpload("The specified upload does not exist")
        stored, part_keys = done
        for old in part_keys:
            await self._blobs.delete(old)
        await self._drop_unheld(key, written, stored.blob_key)  # an identical one is stored
        if stored.sha256 is None:
            self._digest_soon(stored)
        return stored

    async def _assemble(
        self, upload: MultipartUpload, kept: Sequence[UploadedPart]
    ) -> tuple[str, BlobWritten, str | None]:
        """The object's blob made of the parts kept: its key, what it holds, and the key
        again if it is this completion's own to delete on failure (a blob the upload's
        backing upload completed into is the upload's, see the module's docstring)."""
        backing = self._backing(upload)
        if backing is None:
            if isinstance(self._blobs, JoiningBlobStore):
                key = new_blob_key()
                keys = [p.blob_key for p in kept if p.blob_key is not None]
                return key, BlobWritten.unhashed(await self._blobs.join(key, keys)), key
            key, written = await self._store(self._concatenated(kept), None)
            return key, written, key
        parts, target, backing_id = backing
        try:
            size = await parts.complete(target, backing_id, [(p.part_number, p.md5) for p in kept])
        except FileNotFoundError:  # aborted or reaped meanwhile
            raise NoSuchUpload("The specified upload does not exist") from None
        except Invalid:  # a part sent again meanwhile, and the store kept the other one
            raise PartProblem("missing", 0, MISSING_PARTS) from None
        if size != sum(p.size for p in kept):  # completed before with other parts
            raise PartProblem("missing", 0, MISSING_PARTS)
        return target, BlobWritten.unhashed(size), None

    @staticmethod
    def _check_parts(
        chosen: Sequence[tuple[int, str]], parts: dict[int, UploadedPart]
    ) -> list[UploadedPart]:
        if not chosen:
            raise PartProblem("missing", 0, "You must specify at least one part")
        kept: list[UploadedPart] = []
        for number, md5 in chosen:
            if kept and number <= kept[-1].part_number:
                raise PartProblem("order", number, "The list of parts was not in ascending order.")
            part = parts.get(number)
            if part is None or part.md5 != md5.strip('"').lower():
                raise PartProblem("missing", number, MISSING_PARTS)
            kept.append(part)
        for part in kept[:-1]:
            if part.size < MIN_PART_BYTES:
                raise PartProblem(
                    "too_small",
                    part.part_number,
                    "Your proposed upload is smaller than the minimum allowed size",
                )
        return kept

    async def _concatenated(self, parts: Sequence[UploadedPart]) -> AsyncIterator[bytes]:
        for part in parts:
            if part.size and part.blob_key is not None:
                async for chunk in await self._blobs.read(part.blob_key, 0, part.size):
                    yield chunk

    async def reap_multipart(self, batch: int = 100) -> int:
        """Remove uploads left unfinished past their deadline, and their bytes."""
        expired = await self._meta.expired_multipart(self._clock.now_ms(), batch)
        for upload in expired:
            keys = await self._meta.end_multipart(upload)
            if keys is not None:
                await self._release(upload, keys)
        return len(expired)

    async def reap_orphan_parts(self) -> int:
        """Abort the store's own uploads that no upload row holds (a crash between starting
        one and committing its row, a namespace deleted under its uploads) once older than
        any upload may live: they take space and appear in no inventory."""
        parts = self._own_parts
        if parts is None:
            return 0
        before_s = (self._clock.now_ms() - self.limits.upload_ttl_ms - ORPHAN_MARGIN_MS) / 1000
        held = await self._meta.backing_ids()
        stale = [
            (key, backing_id)
            for backing_id, (key, started_s) in (await parts.in_progress()).items()
            if started_s <= before_s and backing_id not in held
        ]
        for key, backing_id in stale:
            await parts.abort(key, backing_id)
        return len(stale)
