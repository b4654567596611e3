"""The core services wired as ``service.build`` wires them for a server, but on the
in-memory blob store and a SQLite file, with a ManualClock, and without HTTP, settings or
the reaper's task: the object lifecycle in milliseconds, on the real metadata store.

Migrating takes about 100 ms, so the session migrates one database with the project's
own ``upgrade`` and each test starts from a copy of it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from stowage.blobs.memory import MemoryBlobStore
from stowage.core.access import AccessService, Principal, parse_scopes
from stowage.core.clock import ManualClock
from stowage.core.namespaces import NamespaceService
from stowage.core.objects import Limits, ObjectService
from stowage.meta.migrate import locked_connection, upgrade
from stowage.meta.sql import SqlMetadataStore

from ..aio import run, stored_blob_keys

MAX_UPLOAD_BYTES = 1024 * 1024
DELETED_RETENTION_MS = 60_000
ALL_OBJECT_SCOPES = "object:read,write,delete"
SERVER_SECRET = b"core-tests-presign-secret"


def sqlite_url(database: Path) -> str:
    return f"sqlite:///{database}"


def migrate(database: Path) -> Path:
    with locked_connection(sqlite_url(database)) as connection:
        upgrade(connection)
    return database


@dataclass
class Core:
    clock: ManualClock
    meta: SqlMetadataStore
    blobs: MemoryBlobStore
    access: AccessService
    objects: ObjectService
    namespaces: NamespaceService

    async def user(self, name: str, scopes: str = ALL_OBJECT_SCOPES) -> Principal:
        """A new user, as the caller of a token of theirs with ``scopes``."""
        await self.access.create_user(name, None)
        return await self.token(name, scopes)

    async def stored_blobs(self) -> set[str]:
        return await stored_blob_keys(self.meta, self.blobs)

    async def token(self, name: str, scopes: str) -> Principal:
        """Another token of an existing user, as its caller (authenticated as a request is)."""
        issued = await self.access.issue_token(name, parse_scopes(scopes), "test")
        return await self.access.authenticate(issued.secret)


@contextlib.contextmanager
def open_core(database: Path) -> Iterator[Core]:
    """The services over ``database`` (migrated already), closed on leaving."""
    clock = ManualClock()
    meta = SqlMetadataStore(sqlite_url(database))
    blobs = MemoryBlobStore()
    limits = Limits(max_upload_bytes=MAX_UPLOAD_BYTES, deleted_retention_ms=DELETED_RETENTION_MS)
    namespaces = NamespaceService(meta, clock)
    objects = ObjectService(meta, blobs, namespaces, clock, limits)
    try:
        access = AccessService(meta, clock, SERVER_SECRET)
        yield Core(clock, meta, blobs, access, objects, namespaces)
    finally:
        run(meta.close())
        blobs.close()
