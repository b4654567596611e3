"""Tags: labels on an object that its writers may change at any time, where its name,
bytes and metadata are fixed once it is stored (S3's object tags)."""

from __future__ import annotations

from collections.abc import Mapping

from ..access import Principal
from ..errors import NotFound
from ..models import StoredObject
from .base import ObjectsBase


class Tagging(ObjectsBase):
    async def tag(
        self, caller: Principal, obj: StoredObject, tags: Mapping[str, str] | None
    ) -> StoredObject:
        """Replace the object's tags (None or empty: remove them). Whoever may change
        the object (its owner, the collaborators of its namespace) may, with object:write."""
        found = await self.modifiable(caller, obj.public_id, "object:write")
        updated = await self._meta.set_tags(found.id, dict(tags) if tags else None)
        if updated is None:  # deleted meanwhile
            raise NotFound("Object not found")
        return updated
