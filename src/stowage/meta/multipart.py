"""Uploads in parts: the upload's row, one row per part (a blob of its own, or a part of
the blob store's own upload that the upload's row names), and the completion that turns
them into an object in one transaction."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, delete, insert, select
from sqlalchemy.exc import IntegrityError

from ..core.models import BlobWritten, MultipartUpload, NewObject, StoredObject, UploadedPart
from . import records
from .objects import SqlObjects, stored_row
from .quotas import HeldQuotas
from .schema import multipart_parts, multipart_uploads

_UPLOADS = multipart_uploads.c
_PARTS = multipart_parts.c


class SqlMultipart(SqlObjects):
    async def create_multipart(self, upload: MultipartUpload) -> MultipartUpload:
        values = {
            "upload_id": upload.upload_id,
            "namespace_id": upload.namespace_id,
            "name": upload.name,
            "owner_id": upload.owner_id,
            "author_id": upload.author_id,
            "creator_token_id": upload.creator_token_id,
            "metadata_json": records.metadata_json(upload.metadata),
            "mime_type": upload.mime_type,
            "created_ms": upload.created_ms,
            "deadline_ms": upload.deadline_ms,
            "attributes_json": records.upload_attributes_json(upload),
            "blob_key": upload.blob_key,
            "backing_id": upload.backing_id,
        }
        stmt = insert(multipart_uploads).values(values).returning(*multipart_uploads.c)
        return await self._write(lambda conn: records.multipart_upload(conn.execute(stmt).one()))

    async def get_multipart(self, upload_id: str) -> MultipartUpload | None:
        stmt = select(multipart_uploads).where(_UPLOADS.upload_id == upload_id)
        return await self._first(stmt, records.multipart_upload)

    async def put_part(
        self, upload: MultipartUpload, part: UploadedPart
    ) -> tuple[bool, str | None]:
        """Record a part, in place of an earlier one of the same number: (recorded, the
        replaced part's blob key). Not recorded when the upload ended meanwhile, nor when
        it does not fit a quota (QuotaExceeded: parts count as the bytes they are)."""
        number = (_PARTS.upload_pk == upload.id, _PARTS.part_number == part.part_number)

        def work(conn: Connection) -> tuple[bool, str | None]:
            earlier = conn.execute(
                select(_PARTS.blob_key, _PARTS.size).where(*number).with_for_update()
            ).first()
            replaced = earlier.blob_key if earlier else None
            held = HeldQuotas.lock(conn, self._writer.dialect, upload.owner_id, upload.namespace_id)
            conn.execute(delete(multipart_parts).where(*number))
            conn.execute(
                insert(multipart_parts).values(
                    upload_pk=upload.id,
                    part_number=part.part_number,
                    blob_key=part.blob_key,
                    size=part.size,
                    md5=part.md5,
                    created_ms=part.created_ms,
                    checksum=part.checksum,
                )
            )
            freed = earlier.size if earlier else 0
            held.check(part.created_ms, added_bytes=part.size - freed, added_objects=0)
            return True, replaced

        try:
            return await self._write(work)
        except IntegrityError:  # the upload's row is gone: completed or aborted
            return False, None

    async def parts(
        self, upload: MultipartUpload, after: int = 0, limit: int | None = None
    ) -> list[UploadedPart]:
        stmt = (
            select(multipart_parts)
            .where(_PARTS.upload_pk == upload.id, _PARTS.part_number > after)
            .order_by(_PARTS.part_number)
            .limit(limit)
        )
        return await self._read(
            lambda conn: [records.record(UploadedPart, r) for r in conn.execute(stmt)]
        )

    async def list_multipart(
        self, namespace_id: int, prefix: str, key_marker: str, id_marker: str, limit: int
    ) -> list[MultipartUpload]:
        """Uploads in progress in a namespace, by name and then upload id."""
        conds: list[Any] = [_UPLOADS.namespace_id == namespace_id]
        name: Any = _UPLOADS.name if self._sqlite else _UPLOADS.name.collate("C")
        if prefix:
            conds.append(_UPLOADS.name.startswith(prefix, autoescape=True))
        if key_marker:
            after_id = (name == key_marker) & (_UPLOADS.upload_id > id_marker)
            conds.append((name > key_marker) | after_id if id_marker else name > key_marker)
        stmt = (
            select(multipart_uploads).where(*conds).order_by(name, _UPLOADS.upload_id).limit(limit)
        )
        return await self._read(
            lambda conn: [records.multipart_upload(r) for r in conn.execute(stmt)]
        )

    async def end_multipart(self, upload: MultipartUpload) -> list[str] | None:
        """Remove an upload and its parts' rows; the parts' blob keys, or None when it
        had ended already."""

        def work(conn: Connection) -> list[str] | None:
            return self._end(conn, upload)

        return await self._write(work)

    @staticmethod
    def _end(conn: Connection, upload: MultipartUpload) -> list[str] | None:
        of_upload = (_PARTS.upload_pk == upload.id, _PARTS.blob_key.is_not(None))
        keys = list(conn.execute(select(_PARTS.blob_key).where(*of_upload)).scalars())
        gone = conn.execute(delete(multipart_uploads).where(_UPLOADS.id == upload.id))
        if gone.rowcount == 0:
            return None
        conn.execute(delete(multipart_parts).where(_PARTS.upload_pk == upload.id))
        return keys

    async def complete_multipart(
        self,
        upload: MultipartUpload,
        new: NewObject,
        blob_key: str,
        blob: BlobWritten,
        mime_type: str,
        now_ms: int,
    ) -> tuple[StoredObject, list[str]] | None:
        """In one transaction: end the upload and put the object assembled from its parts
        in place of the one holding its name (whose blob is released). The new object
        (holding the stored blob of its content: maybe not ``blob_key``) and the parts'
        blob keys; None when the upload had ended already."""
        values = stored_row(new, blob_key, blob, mime_type)

        class Ended(Exception):
            pass

        def work(conn: Connection) -> tuple[StoredObject, list[str]]:
            part_keys = self._end(conn, upload)
            if part_keys is None:
                raise Ended
            return self._replace_named(conn, new, values, blob, now_ms, None), part_keys

        try:
            return await self._replacing(new, work)
        except Ended:
            return None

    async def expired_multipart(self, now_ms: int, limit: int) -> list[MultipartUpload]:
        stmt = (
            select(multipart_uploads)
            .where(_UPLOADS.deadline_ms <= now_ms)
            .order_by(_UPLOADS.deadline_ms)
            .limit(limit)
        )
        return await self._read(
            lambda conn: [records.multipart_upload(r) for r in conn.execute(stmt)]
        )

    async def part_keys(self) -> set[str]:
        """Every part's blob key, and every blob key an upload's backing upload completes
        into (fsck: bytes of uploads in progress, not orphans)."""
        parts = select(_PARTS.blob_key).where(_PARTS.blob_key.is_not(None))
        targets = select(_UPLOADS.blob_key).where(_UPLOADS.blob_key.is_not(None))
        stmt = parts.union(targets)
        return await self._read(lambda conn: set(conn.execute(stmt).scalars()))

    async def backing_ids(self) -> set[str]:
        """The ids of the blob store's own uploads that upload rows hold."""
        stmt = select(_UPLOADS.backing_id).where(_UPLOADS.backing_id.is_not(None))
        return await self._read(lambda conn: set(conn.execute(stmt).scalars()))
