"""Uploads in parts (S3's multipart uploads): start one for a name in a namespace, put its
parts in any order and any number of times (the last put of a number wins), then complete
it with the list of parts to keep, or abort it.

Each part is a blob of its own. Completing copies the listed parts, in order, into one new
blob through the blob store's usual write (so the object's size, md5 and sha256 are those
of its bytes, as every dialect shows them), then ends the upload and puts the object in
place of its name's in one transaction. The object also keeps S3's ETag for it: the md5 of
the parts' md5s, and ``-N``. An upload not completed by its deadline is reaped.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import AsyncIterator, Callable, Mapping, Sequence

from ..access import Principal
from ..checksums import of_parts
from ..errors import Invalid, NotFound, TooLarge
from ..ids import new_blob_key, new_object_id
from ..models import (
    Checksum,
    MultipartUpload,
    Namespace,
    NewObject,
    StoredObject,
    UploadedPart,
)
from ..naming import content_kind, validate_metadata, validate_object_name
from .base import ObjectsBase

MAX_PARTS = 10_000
MIN_PART_BYTES = 5 * 1024 * 1024  # every part but the last, as S3 requires


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


class Multipart(ObjectsBase):
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
    ) -> MultipartUpload:
        """``headers`` are the object's (``StoredObject``); with ``checksum_algorithm``,
        each part keeps its checksum and the object gets one derived from theirs
        (``MultipartUpload``)."""
        caller.require("object:write")
        validate_object_name(name, control_characters=True)  # an S3 key
        clean = validate_metadata(metadata)
        target = await self._namespaces.writable(caller, namespace)
        now = self._clock.now_ms()
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
            )
        )

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
    ) -> UploadedPart:
        """``checksum``, asked once the body has been read (as ``WholePut.put``'s), is
        kept when it is of the upload's algorithm."""
        caller.require("object:write")
        if not 1 <= part_number <= MAX_PARTS:
            raise Invalid(f"Part number must be an integer between 1 and {MAX_PARTS}, inclusive")
        self._refuse_declared(declared_size)
        key = new_blob_key()
        written = await self._blobs.put(key, chunks, self.limits.max_upload_bytes)
        found = checksum() if checksum else None
        kept = found.value if found and found.algorithm == upload.checksum_algorithm else None
        now = self._clock.now_ms()
        part = UploadedPart(part_number, key, written.size, written.md5, now, kept)
        try:
            recorded, replaced = await self._meta.put_part(upload, part)
        except BaseException:
            await self._blobs.delete(key)
            raise
        if not recorded:
            await self._blobs.delete(key)
            raise NoSuchUpload("The specified upload does not exist")
        if replaced:
            await self._blobs.delete(replaced)
        return part

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
        for key in keys:
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
        key = new_blob_key()
        written = await self._blobs.put(key, self._concatenated(kept), None)
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
        )
        try:
            done = await self._meta.complete_multipart(upload, new, key, written, mime, now)
        except BaseException:
            await self._blobs.delete(key)
            raise
        if done is None:
            await self._blobs.delete(key)
            raise NoSuchUpload("The specified upload does not exist")
        stored, replaced, part_keys = done
        for old in (*part_keys, *([replaced] if replaced else [])):
            await self._blobs.delete(old)
        return stored

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
                raise PartProblem(
                    "missing",
                    number,
                    "One or more of the specified parts could not be found. The part may not "
                    "have been uploaded, or the specified entity tag may not match the part's "
                    "entity tag.",
                )
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
            if part.size:
                async for chunk in await self._blobs.read(part.blob_key, 0, part.size):
                    yield chunk

    async def reap_multipart(self, batch: int = 100) -> int:
        """Remove uploads left unfinished past their deadline, and their parts' bytes."""
        expired = await self._meta.expired_multipart(self._clock.now_ms(), batch)
        for upload in expired:
            keys = await self._meta.end_multipart(upload)
            for key in keys or ():
                await self._blobs.delete(key)
        return len(expired)
