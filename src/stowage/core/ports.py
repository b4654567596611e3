"""The two seams of the core: where metadata lives and where bytes live.

Backends implement these protocols; the core never imports a backend.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

from .models import (
    BlobWritten,
    NewObject,
    ObjectQuery,
    Page,
    Reaped,
    StoredObject,
    Token,
    User,
)


class MetadataStore(Protocol):
    async def close(self) -> None: ...

    # users and tokens
    async def create_user(
        self, name: str, email: str | None, is_admin: bool, now_ms: int
    ) -> User: ...
    async def get_user(self, user_id: int) -> User | None: ...
    async def get_user_by_name(self, name: str) -> User | None: ...
    async def count_users(self) -> int: ...
    async def create_token(
        self,
        user_id: int,
        name: str,
        token_hash: str,
        prefix: str,
        scopes: frozenset[str],
        now_ms: int,
    ) -> Token: ...
    async def find_token(self, token_hash: str) -> tuple[Token, User] | None: ...
    async def list_tokens(self, user_id: int | None) -> list[tuple[Token, User]]: ...
    async def revoke_token(self, token_id: int, now_ms: int) -> bool: ...

    # objects
    async def create_object(self, new: NewObject) -> StoredObject: ...
    async def get_object(self, public_id: str) -> StoredObject | None: ...
    async def list_objects(self, query: ObjectQuery, now_ms: int) -> Page: ...
    async def attach_blob(
        self, public_id: str, blob_key: str, blob: BlobWritten
    ) -> tuple[bool, str | None]:
        """Point an UPLOADING object at a new blob; return (attached, replaced blob key)."""
        ...

    async def complete_object(self, public_id: str) -> StoredObject | None:
        """UPLOADING with a blob → READ_ONLY; None when the object was not in that state."""
        ...

    async def mark_deleted(
        self, public_id: str, now_ms: int
    ) -> tuple[StoredObject, str | None] | None:
        """Turn the object into a tombstone; return it and the blob key to remove."""
        ...

    async def metadata_keys(self, owner_id: int, now_ms: int) -> list[str]: ...
    async def metadata_values(self, owner_id: int, key: str, now_ms: int) -> list[str]: ...
    async def reap(self, now_ms: int, deleted_before_ms: int, limit: int) -> Reaped:
        """Remove expired objects and old tombstones, returning their blob keys."""
        ...


class BlobStore(Protocol):
    async def put(
        self, key: str, chunks: AsyncIterator[bytes], max_bytes: int | None
    ) -> BlobWritten:
        """Store the stream durably under ``key``; raise TooLarge past ``max_bytes``.

        On any failure nothing is left under ``key`` and no temporary file remains.
        """
        ...

    def read(self, key: str, start: int, length: int) -> AsyncIterator[bytes]: ...
    async def delete(self, key: str) -> None: ...
    async def exists(self, key: str) -> bool: ...
