"""Reading objects: one by reference, lists, metadata keys and values, and the bytes.

Each entry point checks access itself: a caller (or none) with its token's scopes, or a
presigned ``Grant`` that proves a signed URL for this object and method.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from ..access import Principal, may_read
from ..errors import Gone, Invalid, NotFound
from ..ids import is_inline_key
from ..models import Namespace, ObjectQuery, ObjectState, Page, StoredObject, Visibility
from ..naming import validate_metadata_key
from ..presign import Grant
from .base import Caller, ObjectsBase
from .inline import inline_range, read_blob

MAX_PAGE = 5000


class Reads(ObjectsBase):
    async def get(self, caller: Caller, ref: str | int) -> StoredObject:
        """The object if the caller may read it. Objects in public namespaces need neither
        a token nor the object:read scope; everything else needs both. The scope is checked
        after access, so a token without it cannot tell others' objects from absent ones."""
        return await self._readable(caller, await self._live(ref))

    async def named(self, caller: Caller, namespace: Namespace, name: str) -> StoredObject:
        """The object holding ``name`` in the namespace, if the caller may read it."""
        found = await self._meta.get_named(namespace.id, name)
        if found is None or found.expired(self._clock.now_ms()):
            raise NotFound("Object not found")
        return await self._readable(caller, found)

    async def _readable(self, caller: Caller, obj: StoredObject) -> StoredObject:
        root, collaborating = await self._root(obj, caller)
        viewer = caller.user.id if caller else None
        if not may_read(viewer, obj.owner_id, root, collaborating):
            raise NotFound("Object not found")
        if root is None or root.visibility is not Visibility.PUBLIC:
            _require_read(caller)
        return obj

    async def visible(self, caller: Principal, query: ObjectQuery) -> Page:
        caller.require("object:read")
        if not 1 <= query.limit <= MAX_PAGE:
            raise Invalid(f"limit must be between 1 and {MAX_PAGE}")
        return await self._meta.list_objects(query, self._clock.now_ms())

    async def list_in(self, caller: Caller, namespace: Namespace, query: ObjectQuery) -> Page:
        """Objects of a namespace the caller may see (``NamespaceService.find`` found it
        for this caller); outside public namespaces that takes the object:read scope."""
        if namespace.visibility is not Visibility.PUBLIC:
            _require_read(caller)
        return await self._meta.list_objects(query, self._clock.now_ms())

    async def keys_in(
        self, caller: Caller, namespace: Namespace, prefix: str, after: str | None, limit: int
    ) -> list[StoredObject]:
        """Objects of a namespace the caller may see, by name in byte order (names as keys,
        one live object each): up to ``limit`` whose names start with ``prefix`` and sort
        after ``after``."""
        if namespace.visibility is not Visibility.PUBLIC:
            _require_read(caller)
        return await self._meta.list_named(namespace.id, prefix, after, limit, self._clock.now_ms())

    async def metadata_keys(self, caller: Principal) -> list[str]:
        caller.require("object:read")
        return await self._meta.metadata_keys(caller.user.id, self._clock.now_ms())

    async def metadata_values(self, caller: Principal, key: str) -> list[str]:
        caller.require("object:read")
        validate_metadata_key(key)
        return await self._meta.metadata_values(caller.user.id, key, self._clock.now_ms())

    async def downloadable(self, caller: Caller, ref: str | int) -> StoredObject:
        """The object if the caller may read it and its bytes may be handed out."""
        return _with_bytes(await self.get(caller, ref))

    async def signed_download(self, grant: Grant) -> StoredObject:
        """The object a presigned GET names: the signature proved access, so only
        existence and state are checked."""
        grant.require("GET")
        return _with_bytes(await self._live(grant.object_id))

    async def read(self, obj: StoredObject, start: int, length: int) -> AsyncIterator[bytes]:
        return await read_blob(self._meta, self._blobs, _blob_key(obj), start, length)

    async def read_bytes(self, obj: StoredObject, start: int, length: int) -> bytes:
        key = _blob_key(obj)
        if is_inline_key(key):
            return inline_range(await self._meta.inline_data(key), start, length)
        return await self._blobs.read_bytes(key, start, length)


def _require_read(caller: Caller) -> None:
    """The anonymous may read public objects only; everyone else needs the scope."""
    if caller is None:
        raise NotFound("Object not found")
    caller.require("object:read")


def _with_bytes(obj: StoredObject) -> StoredObject:
    if obj.state is ObjectState.DELETED:
        raise Gone("Object is deleted")
    if obj.state is not ObjectState.READ_ONLY or obj.blob_key is None:
        raise Invalid(f"Object is {obj.state.value}; only completed objects can be downloaded")
    return obj


def _blob_key(obj: StoredObject) -> str:
    if obj.blob_key is None:  # downloadable() and signed_download() let none through
        raise Invalid("the object has no bytes")
    return obj.blob_key
