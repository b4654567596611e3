"""Objects and their idempotency keys: creation, uploads, deletion, reaping and the
references fsck checks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from sqlalchemy import (
    Connection,
    and_,
    bindparam,
    case,
    delete,
    func,
    insert,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.exc import IntegrityError

from ..core.errors import ConditionFailed, NameTaken, NotFound
from ..core.models import (
    BlobWritten,
    KeptAnswer,
    KeyedRequest,
    NewObject,
    ObjectState,
    Reaped,
    StoredObject,
)
from . import records
from .blobs import SqlBlobs
from .constraints import raise_if_namespace_gone, violated
from .database import T
from .listing import SqlListing, not_expired
from .prepared import Prepared
from .quotas import HeldQuotas
from .schema import (
    UNDIGESTED,
    UNIQUE_NAMESPACED,
    UNIQUE_TOP_LEVEL,
    idempotency_keys,
    object_metadata,
    objects,
)

REPLACE_ATTEMPTS = 3


def stored_row(new: NewObject, blob_key: str, blob: BlobWritten, mime_type: str) -> dict[str, Any]:
    """Column values of an object inserted with its bytes already stored."""
    return {
        **_new_row(new, ObjectState.READ_ONLY),
        "size": blob.size,
        "md5": blob.md5,
        "sha256": blob.sha256,
        "blob_key": blob_key,
        "mime_type": mime_type,
    }


def _new_row(new: NewObject, state: ObjectState) -> dict[str, Any]:
    """Column values of a new object row, whichever way it is created."""
    return {
        "public_id": new.public_id,
        "owner_id": new.owner_id,
        "author_id": new.author_id,
        "name": new.name,
        "content_type": new.content_type.value,
        "state": state.value,
        "metadata_json": records.metadata_json(new.metadata),
        "create_time_ms": new.create_time_ms,
        "delete_after_time_ms": new.delete_after_time_ms,
        "namespace_id": new.namespace_id,
        "creator_token_id": new.creator_token_id,
        "staging_key": new.staging_key,
        "upload_deadline_ms": new.upload_deadline_ms,
        "unique_name": new.unique_name,
        "etag": new.etag,
        "attributes_json": records.object_attributes_json(new.headers, new.checksum, new.tags),
    }


class SqlObjects(SqlListing, SqlBlobs):
    """``core.ports.ObjectStore``: the object rows and the idempotency keys recorded with them."""

    # Built once: these run on every request, and building a statement costs more than
    # running it on SQLite.
    _GET_OBJECT = Prepared(select(objects).where(objects.c.public_id == bindparam("public_id")))
    _GET_OBJECT_BY_ID = Prepared(select(objects).where(objects.c.id == bindparam("id")))
    # Built once: values come as parameters, so each insert reuses the compiled statement.
    _INSERT_OBJECT = Prepared(insert(objects).returning(*objects.c), values_from_params=True)
    _INSERT_KEY = insert(idempotency_keys)
    _GET_KEY = select(idempotency_keys.c.request_hash, idempotency_keys.c.public_id).where(
        idempotency_keys.c.token_id == bindparam("token_id"),
        idempotency_keys.c.key_hash == bindparam("key_hash"),
    )

    async def create_object(
        self, new: NewObject, keyed: KeyedRequest | None = None
    ) -> StoredObject | None:
        values = _new_row(new, ObjectState.UPLOADING)

        def work(conn: Connection) -> StoredObject:
            held = HeldQuotas.lock(conn, self._writer.dialect, new.owner_id, new.namespace_id)
            row = self._INSERT_OBJECT.one(conn, self._writer.dialect, values)
            held.check(new.create_time_ms, added_bytes=0, added_objects=1)
            if new.metadata:
                conn.execute(
                    insert(object_metadata),
                    [{"object_id": row.id, "key": k, "value": v} for k, v in new.metadata.items()],
                )
            return records.stored_object(row)

        return await self._keyed_write(keyed, work)

    async def _keyed_write(
        self, keyed: KeyedRequest | None, work: Callable[[Connection], StoredObject | None]
    ) -> StoredObject | None:
        """Run ``work`` and record ``keyed`` with the object it returns, in one transaction.
        The key's primary key decides between concurrent twins: the loser's transaction
        rolls back whole and it gets None, as does a request whose key is known already."""

        def work_and_record(conn: Connection) -> StoredObject | None:
            done = work(conn)
            if done is not None and keyed is not None:
                conn.execute(self._INSERT_KEY, {"public_id": done.public_id, **asdict(keyed)})
            return done

        try:
            return await self._write(work_and_record)
        except IntegrityError:
            if keyed is None or await self.kept_answer(keyed) is None:
                raise
            return None

    async def kept_answer(self, keyed: KeyedRequest) -> KeptAnswer | None:
        params = {"token_id": keyed.token_id, "key_hash": keyed.key_hash}
        return await self._first(self._GET_KEY, lambda r: records.record(KeptAnswer, r), params)

    async def forget_keys(self, cutoff_ms: int, limit: int) -> int:
        key = tuple_(idempotency_keys.c.token_id, idempotency_keys.c.key_hash)
        due = (
            select(idempotency_keys.c.token_id, idempotency_keys.c.key_hash)
            .where(idempotency_keys.c.created_at_ms <= cutoff_ms)
            .order_by(idempotency_keys.c.created_at_ms)
            .limit(limit)
        )
        if not self._sqlite:  # replicas purging at once take different rows
            due = due.with_for_update(skip_locked=True)
        stmt = delete(idempotency_keys).where(key.in_(due))
        return await self._write(lambda conn: conn.execute(stmt).rowcount)

    async def insert_stored_object(
        self, new: NewObject, blob_key: str, blob: BlobWritten, mime_type: str
    ) -> StoredObject:
        """Insert an object whose bytes are already stored (whole-object puts), holding
        the stored blob of that content (``_claim``: maybe not ``blob_key``); raise
        NameTaken when its name is to be unique and is in use in its scope, QuotaExceeded
        when it does not fit a quota."""
        values = stored_row(new, blob_key, blob, mime_type)

        def work(conn: Connection) -> StoredObject:
            held = HeldQuotas.lock(conn, self._writer.dialect, new.owner_id, new.namespace_id)
            claimed = self._claim(conn, blob_key, blob, new.create_time_ms)
            stored = self._insert(conn, {**values, "blob_key": claimed})
            held.check(new.create_time_ms, added_bytes=blob.size, added_objects=1)
            return stored

        return await self._inserting(new, work)

    async def replace_stored_object(
        self,
        new: NewObject,
        blob_key: str,
        blob: BlobWritten,
        mime_type: str,
        now_ms: int,
        if_match: str | None = None,
    ) -> StoredObject:
        """Insert an object in a namespace in place of the live one of the same name, in
        one transaction: readers see the old object or the new one, never neither. The old
        one becomes a tombstone and its blob is released. A concurrent put of
        the same name that committed first is replaced in turn (the last one wins).
        ``if_match``: replace only a live object whose etag (else md5) is this, or any
        live one for ``*`` (NotFound when there is none, ConditionFailed when it differs)."""
        values = stored_row(new, blob_key, blob, mime_type)
        return await self._replacing(
            new, lambda conn: self._replace_named(conn, new, values, blob, now_ms, if_match)
        )

    async def _replacing(self, new: NewObject, work: Callable[[Connection], T]) -> T:
        """``work`` (which replaces ``new``'s name) in a write transaction; again when a
        concurrent put of the name committed in between (the last one wins)."""
        for _ in range(REPLACE_ATTEMPTS - 1):
            try:
                return await self._inserting(new, work)
            except NameTaken:
                continue
        return await self._inserting(new, work)

    def _replace_named(
        self,
        conn: Connection,
        new: NewObject,
        values: dict[str, Any],
        blob: BlobWritten,
        now_ms: int,
        if_match: str | None,
    ) -> StoredObject:
        """Insert ``values`` (holding the stored blob of ``blob``'s content) in place of
        the object holding ``new``'s name in its namespace, which becomes a tombstone whose
        blob is released."""
        holds_name = (  # the partial unique index's own predicate, so that it is used
            objects.c.namespace_id == new.namespace_id,
            objects.c.name == new.name,
            UNIQUE_NAMESPACED,
        )
        holder = conn.execute(
            select(
                objects.c.blob_key,
                objects.c.etag,
                objects.c.md5,
                objects.c.size,
                not_expired(now_ms).label("live"),
            )
            .where(*holds_name)
            .with_for_update()
        ).first()
        if if_match is not None:
            if holder is None or not holder.live:
                raise NotFound("no object holds the name")
            if if_match != "*" and if_match != (holder.etag or holder.md5):
                raise ConditionFailed("the object holding the name has another etag")
        held = HeldQuotas.lock(conn, self._writer.dialect, new.owner_id, new.namespace_id)
        claimed = self._claim(conn, values["blob_key"], blob, now_ms)
        conn.execute(
            update(objects)
            .where(*holds_name)
            .values(
                state=ObjectState.DELETED.value,
                deleted_time_ms=now_ms,
                blob_key=None,
                unique_name=False,
            )
        )
        inserted = self._insert(conn, {**values, "blob_key": claimed})
        # What the old object held is released in the same transaction.
        live = holder is not None and bool(holder.live)
        freed = (holder.size or 0) if holder is not None and live else 0
        held.check(now_ms, added_bytes=values["size"] - freed, added_objects=0 if live else 1)
        if holder is not None and holder.blob_key != claimed:
            self._release(conn, holder.blob_key, now_ms)
        return inserted

    def _insert(self, conn: Connection, values: dict[str, Any]) -> StoredObject:
        return records.stored_object(self._INSERT_OBJECT.one(conn, self._writer.dialect, values))

    async def _inserting(self, new: NewObject, work: Callable[[Connection], T]) -> T:
        """``work`` (which inserts ``new``) in a write transaction, its constraint
        failures as the core's errors."""
        try:
            return await self._write(work)
        except IntegrityError as exc:
            constraint = violated(exc)
            if constraint in ("uq_objects_owner_name", "uq_objects_namespace_name"):
                raise NameTaken(new.name) from None
            await raise_if_namespace_gone(
                self, constraint, "fk_objects_namespace_id", new.namespace_id
            )
            raise

    # Built once: on every Djinn upload, building and caching the statement cost more than
    # running it.
    @staticmethod
    def _name_check(scope: Any, partial_index: Any) -> Any:
        """Whether a name is taken in a scope, repeating the partial index's predicate."""
        where = (scope == bindparam("scope_id"), partial_index, objects.c.name == bindparam("name"))
        return Prepared(select(objects.c.id).where(*where).limit(1))

    _NAME_IN_NAMESPACE = _name_check(objects.c.namespace_id, UNIQUE_NAMESPACED)
    _NAME_AT_TOP = _name_check(objects.c.owner_id, UNIQUE_TOP_LEVEL)

    async def name_taken(self, owner_id: int, namespace_id: int | None, name: str) -> bool:
        if namespace_id is not None:
            stmt, scope_id = self._NAME_IN_NAMESPACE, namespace_id
        else:
            stmt, scope_id = self._NAME_AT_TOP, owner_id
        params = {"scope_id": scope_id, "name": name}
        return await self._first(stmt, lambda _row: True, params) is not None

    async def list_named(
        self, namespace_id: int, prefix: str, after: str | None, limit: int, now_ms: int
    ) -> list[StoredObject]:
        """Up to ``limit`` live objects of the namespace whose names start with ``prefix``
        and sort after ``after``, in byte order of their names (as S3 lists keys)."""
        name = objects.c.name
        # In byte order: SQLite compares text as bytes already (BINARY collation).
        ordered: Any = name if self._sqlite else name.collate("C")
        conds = [
            objects.c.namespace_id == namespace_id,
            UNIQUE_NAMESPACED,
            objects.c.state == ObjectState.READ_ONLY.value,
            not_expired(now_ms),
        ]
        if prefix:
            # As a range of the index: the names from the prefix up to the first that
            # sorts after every name starting with it (byte order is code point order).
            conds.append(ordered >= prefix)
            following = ord(prefix[-1]) + 1
            following = 0xE000 if 0xD800 <= following <= 0xDFFF else following  # no surrogates
            if following <= 0x10FFFF:
                conds.append(ordered < prefix[:-1] + chr(following))
            else:
                conds.append(func.substr(name, 1, len(prefix)) == prefix)
        if after is not None:
            conds.append(ordered > after)
        stmt = select(objects).where(*conds).order_by(ordered).limit(limit)
        return await self._read(lambda conn: [records.stored_object(r) for r in conn.execute(stmt)])

    # The partial unique index's own predicate, so that SQLite uses it (``unique_name IS
    # 1`` does not imply it, and the namespace's every object would be read instead).
    _GET_NAMED = Prepared(
        select(objects).where(
            objects.c.namespace_id == bindparam("namespace_id"),
            objects.c.name == bindparam("name"),
            UNIQUE_NAMESPACED,
        )
    )

    async def get_named(self, namespace_id: int, name: str) -> StoredObject | None:
        """The object that holds ``name`` in the namespace (a uniquely named one)."""
        params = {"namespace_id": namespace_id, "name": name}
        return await self._first(self._GET_NAMED, records.stored_object, params)

    async def get_object(self, ref: str | int) -> StoredObject | None:
        """By public id (``obj_…``) or by integer id."""
        if isinstance(ref, str):
            return await self._first(self._GET_OBJECT, records.stored_object, {"public_id": ref})
        return await self._first(self._GET_OBJECT_BY_ID, records.stored_object, {"id": ref})

    # The upload path's statements, built once (building one costs more than running it).
    _UPLOAD_STATE = Prepared(
        select(
            objects.c.state,
            objects.c.blob_key,
            objects.c.size,
            objects.c.owner_id,
            objects.c.namespace_id,
        )
        .where(objects.c.public_id == bindparam("public_id"))
        .with_for_update()
    )
    _ATTACH = Prepared(
        update(objects)
        .where(objects.c.public_id == bindparam("b_public_id"))
        .values(
            blob_key=bindparam("b_blob_key"),
            size=bindparam("b_size"),
            md5=bindparam("b_md5"),
            sha256=bindparam("b_sha256"),
            mime_type=bindparam("b_mime_type"),
        )
    )
    _COMPLETE = Prepared(
        update(objects)
        .where(
            objects.c.public_id == bindparam("b_public_id"),
            objects.c.state == ObjectState.UPLOADING.value,
            objects.c.blob_key.is_not(None),
        )
        .values(
            state=ObjectState.READ_ONLY.value,
            # Kept while a direct upload URL may still deliver bytes: the reaper then
            # removes what lands on the staging key (and clears both).
            upload_deadline_ms=case(
                (objects.c.staging_key.is_(None), None), else_=objects.c.upload_deadline_ms
            ),
        )
        .returning(*objects.c)
    )

    async def attach_blob(
        self, public_id: str, blob_key: str, blob: BlobWritten, mime_type: str, now_ms: int
    ) -> str | None:
        values = {
            "b_public_id": public_id,
            "b_blob_key": blob_key,
            "b_size": blob.size,
            "b_md5": blob.md5,
            "b_sha256": blob.sha256,
            "b_mime_type": mime_type,
        }

        def work(conn: Connection) -> str | None:
            dialect = self._writer.dialect
            row = self._UPLOAD_STATE.first(conn, dialect, {"public_id": public_id})
            if row is None or row.state != ObjectState.UPLOADING.value:
                return None
            held = HeldQuotas.lock(conn, dialect, row.owner_id, row.namespace_id)
            claimed = self._claim(conn, blob_key, blob, now_ms)
            self._ATTACH.rows(conn, dialect, {**values, "b_blob_key": claimed})
            held.check(now_ms, added_bytes=blob.size - (row.size or 0), added_objects=0)
            if row.blob_key != claimed:
                self._release(conn, row.blob_key, now_ms)
            return claimed

        return await self._write(work)

    async def complete_object(
        self, public_id: str, keyed: KeyedRequest | None = None
    ) -> StoredObject | None:
        def work(conn: Connection) -> StoredObject | None:
            row = self._COMPLETE.first(conn, self._writer.dialect, {"b_public_id": public_id})
            return records.stored_object(row) if row else None

        return await self._keyed_write(keyed, work)

    async def mark_deleted(self, public_id: str, now_ms: int) -> StoredObject | None:
        current = select(objects).where(objects.c.public_id == public_id).with_for_update()

        def work(conn: Connection) -> StoredObject | None:
            row = conn.execute(current).first()
            if row is None:
                return None
            if row.state == ObjectState.DELETED.value:
                return records.stored_object(row)
            updated = conn.execute(
                update(objects)
                .where(objects.c.id == row.id)
                .values(
                    state=ObjectState.DELETED.value,
                    deleted_time_ms=now_ms,
                    blob_key=None,
                    unique_name=False,  # the name is free again at once
                )
                .returning(*objects.c)
            ).one()
            self._release(conn, row.blob_key, now_ms)
            return records.stored_object(updated)

        return await self._write(work)

    async def set_tags(self, object_id: int, tags: dict[str, str] | None) -> StoredObject | None:
        """Replace a live object's tags (None: remove them), leaving the rest of its
        attributes as they are; None when the object is deleted."""
        current = (
            select(objects)
            .where(objects.c.id == object_id, objects.c.state != ObjectState.DELETED.value)
            .with_for_update()
        )

        def work(conn: Connection) -> StoredObject | None:
            row = conn.execute(current).first()
            if row is None:
                return None
            was = records.stored_object(row)
            attributes = records.object_attributes_json(was.headers, was.checksum, tags)
            updated = conn.execute(
                update(objects)
                .where(objects.c.id == object_id)
                .values(attributes_json=attributes)
                .returning(*objects.c)
            ).one()
            return records.stored_object(updated)

        return await self._write(work)

    async def set_digests(self, object_id: int, blob_key: str, md5: str, sha256: str) -> bool:
        stmt = (
            update(objects)
            .where(
                objects.c.id == object_id,
                objects.c.blob_key == blob_key,
                objects.c.sha256.is_(None),
            )
            .values(md5=md5, sha256=sha256)
        )
        return await self._write(lambda conn: conn.execute(stmt).rowcount == 1)

    async def undigested(self, created_by_ms: int, limit: int) -> list[tuple[int, str]]:
        # The partial index's predicate as written (migration 0016), so that it is used.
        stmt = (
            select(objects.c.id, objects.c.blob_key)
            .where(
                UNDIGESTED,
                objects.c.state == ObjectState.READ_ONLY.value,
                objects.c.create_time_ms <= created_by_ms,
            )
            .order_by(objects.c.id)
            .limit(limit)
        )
        return await self._read(lambda conn: [(r.id, r.blob_key) for r in conn.execute(stmt)])

    def _metadata_column(self, column: Any, owner_id: int, now_ms: int, *where: Any) -> Any:
        return (
            select(column)
            .join(objects, objects.c.id == object_metadata.c.object_id)
            .where(
                objects.c.owner_id == owner_id,
                objects.c.state != ObjectState.DELETED.value,
                not_expired(now_ms),
                *where,
            )
            .distinct()
            .order_by(column)
        )

    async def metadata_keys(self, owner_id: int, now_ms: int) -> list[str]:
        stmt = self._metadata_column(object_metadata.c.key, owner_id, now_ms)
        return await self._read(lambda conn: list(conn.execute(stmt).scalars()))

    async def metadata_values(self, owner_id: int, key: str, now_ms: int) -> list[str]:
        stmt = self._metadata_column(
            object_metadata.c.value, owner_id, now_ms, object_metadata.c.key == key
        )
        return await self._read(lambda conn: list(conn.execute(stmt).scalars()))

    async def blob_references(self) -> dict[str, list[tuple[str, int, str | None]]]:
        stmt = select(
            objects.c.blob_key, objects.c.public_id, objects.c.size, objects.c.sha256
        ).where(objects.c.blob_key.is_not(None))

        def work(conn: Connection) -> dict[str, list[tuple[str, int, str | None]]]:
            found: dict[str, list[tuple[str, int, str | None]]] = {}
            for r in conn.execute(stmt):
                found.setdefault(r.blob_key, []).append((r.public_id, r.size, r.sha256))
            return found

        return await self._read(work)

    async def staging_keys(self) -> set[str]:
        stmt = select(objects.c.staging_key).where(objects.c.staging_key.is_not(None))
        return await self._read(lambda conn: set(conn.execute(stmt).scalars()))

    async def reap(self, now_ms: int, deleted_before_ms: int, limit: int) -> Reaped:
        uploading = objects.c.state == ObjectState.UPLOADING.value
        upload_over = objects.c.upload_deadline_ms <= now_ms
        due = or_(
            objects.c.delete_after_time_ms <= now_ms,
            and_(uploading, upload_over),
            and_(
                objects.c.state == ObjectState.DELETED.value,
                objects.c.deleted_time_ms <= deleted_before_ms,
            ),
        )
        pick = (
            select(objects.c.id, objects.c.blob_key, objects.c.staging_key).where(due).limit(limit)
        )
        # Finished objects whose upload URL can no longer be used: release the staging key.
        settled = (
            select(objects.c.id, objects.c.staging_key).where(upload_over, ~uploading).limit(limit)
        )
        if not self._sqlite:
            pick = pick.with_for_update(skip_locked=True)
            settled = settled.with_for_update(skip_locked=True)

        def work(conn: Connection) -> Reaped:
            rows = conn.execute(pick).all()
            ids = [r.id for r in rows]
            if ids:
                conn.execute(delete(object_metadata).where(object_metadata.c.object_id.in_(ids)))
                conn.execute(delete(objects).where(objects.c.id.in_(ids)))
            done = conn.execute(settled).all()
            if done:
                conn.execute(
                    update(objects)
                    .where(objects.c.id.in_([r.id for r in done]))
                    .values(staging_key=None, upload_deadline_ms=None)
                )
            self._release_all(conn, sorted({r.blob_key for r in rows if r.blob_key}), now_ms)
            return Reaped(
                object_ids=ids,
                staging_keys=[r.staging_key for r in (*rows, *done) if r.staging_key],
                swept=len(done),
            )

        return await self._write(work)
