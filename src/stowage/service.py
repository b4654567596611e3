"""The process-wide service graph: settings, clock, backends and core services."""

from __future__ import annotations

from dataclasses import dataclass

from .blobs.local import LocalBlobStore
from .config import Settings
from .core.access import AccessService
from .core.clock import Clock, SystemClock
from .core.namespaces import NamespaceService
from .core.objects import Limits, ObjectService
from .core.presign import Presigner
from .meta.sql import SqlMetadataStore
from .reaper import Reaper


@dataclass
class Stowage:
    """Everything a request handler needs, built once per process."""

    settings: Settings
    clock: Clock
    meta: SqlMetadataStore
    blobs: LocalBlobStore
    access: AccessService
    namespaces: NamespaceService
    objects: ObjectService
    presigner: Presigner
    reaper: Reaper


def build(settings: Settings, presign_secret: bytes, clock: Clock | None = None) -> Stowage:
    clock = clock or SystemClock()
    meta = SqlMetadataStore(settings.sqlalchemy_url)
    blob_store = LocalBlobStore(settings.blob_dir)
    namespaces = NamespaceService(meta, clock)
    objects = ObjectService(
        meta,
        blob_store,
        namespaces,
        clock,
        Limits(
            max_upload_bytes=settings.max_upload_bytes,
            deleted_retention_ms=settings.deleted_retention_seconds * 1000,
        ),
    )
    return Stowage(
        settings=settings,
        clock=clock,
        meta=meta,
        blobs=blob_store,
        access=AccessService(meta, clock),
        namespaces=namespaces,
        objects=objects,
        presigner=Presigner(presign_secret),
        reaper=Reaper(objects, settings.reaper_interval_seconds),
    )
