"""Removing objects: a caller's delete (a tombstone kept for ``deleted_retention``, so
clients see why a download fails), and the reaper's sweep of what expired."""

from __future__ import annotations

from ..access import Principal
from ..errors import NotFound
from ..models import Expired, Namespace, ObjectState, Reaped, StoredObject
from .base import ObjectsBase


class Removal(ObjectsBase):
    async def delete(self, caller: Principal, ref: str | int) -> StoredObject:
        obj = await self.modifiable(caller, ref, "object:delete")
        tombstone = await self._meta.mark_deleted(obj.public_id, self._clock.now_ms())
        if tombstone is None:
            raise NotFound("Object not found")
        # Its blob is released, not deleted: other objects may hold the same bytes, and
        # the reaper collects it once nothing does (``collect_blobs``).
        if obj.staging_key and obj.state is ObjectState.UPLOADING:
            # A PUT to the upload URL may still land here; the reaper removes that later.
            await self._blobs.delete(obj.staging_key)
        return tombstone

    async def delete_named(self, caller: Principal, namespace: Namespace, name: str) -> None:
        """Delete the object holding ``name`` in the namespace, if there is one: deleting
        a name that holds nothing is done already."""
        caller.require("object:delete")
        found = await self._meta.get_named(namespace.id, name)
        if found is not None:
            try:
                await self.delete(caller, found.public_id)
            except NotFound:  # deleted meanwhile, or not the caller's to see
                if await self._meta.get_named(namespace.id, name) == found:
                    raise

    async def reap(self, batch: int = 500) -> Reaped:
        """Remove expired objects, uploads left unfinished past their deadline and old
        tombstones (their blobs released for ``collect_blobs``), and the bytes late PUTs
        left on staging keys; return what went. Rows
        removed (``object_ids``) and staging keys released (``swept``) are told apart, so
        only the first count as reaped objects."""
        now = self._clock.now_ms()
        reaped = await self._meta.reap(now, now - self.limits.deleted_retention_ms, batch)
        for key in reaped.staging_keys:
            await self._blobs.delete(key)
        return reaped

    async def enforce_retention(
        self, lookahead_ms: int, batch: int = 500
    ) -> tuple[Expired, Expired]:
        """One batch of each retention rule (``core/retention.py``): objects reaching their
        namespace's max_age within ``lookahead_ms`` get that moment as their expiry, and
        completed objects beyond its keep_newest expire now. What they expire, by max_age
        and by keep_newest, goes with the rows ``reap`` removes next, bytes and all."""
        now = self._clock.now_ms()
        aged = await self._meta.expire_aged(now + lookahead_ms, batch)
        surplus = await self._meta.expire_surplus(now, batch)
        return aged, surplus

    async def collect_blobs(self, batch: int = 500) -> int:
        """Delete up to ``batch`` blobs that no object has referenced for the grace
        (``Limits.blob_grace_ms``): their rows first, in a transaction that checks the
        references, then their bytes. How many went."""
        released_before = self._clock.now_ms() - self.limits.blob_grace_ms
        keys = await self._meta.collect_blobs(released_before, batch)
        for key in keys:
            await self._delete_blob(key)
        return len(keys)
