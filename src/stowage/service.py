"""The process-wide service graph: settings, clock, backends and core services."""

from __future__ import annotations

from dataclasses import dataclass

from .backends import open_backends
from .config import Settings
from .core.access import AccessService
from .core.clock import Clock, SystemClock
from .core.limits import UploadSlots
from .core.namespaces import NamespaceService
from .core.objects import Limits, ObjectService
from .core.ports import BlobStore, MetadataStore
from .core.presign import Presigner
from .core.quotas import QuotaService
from .metrics import Metrics
from .reaper import Reaper


@dataclass
class Stowage:
    """Everything a request handler needs, built once per process."""

    settings: Settings
    clock: Clock
    meta: MetadataStore
    blobs: BlobStore
    access: AccessService
    namespaces: NamespaceService
    objects: ObjectService
    quotas: QuotaService
    presigner: Presigner
    reaper: Reaper
    metrics: Metrics
    uploads: UploadSlots

    async def refresh_store_figures(self) -> None:
        figures = self.metrics.store
        totals = await self.meta.blob_totals(self.clock.now_ms())
        figures.objects, figures.bytes = totals.objects, totals.logical_bytes
        figures.blobs, figures.blob_bytes = totals.blobs, totals.stored_bytes

    async def readiness(self) -> dict[str, str]:
        """Each dependency's state: "ok", or why it is not."""
        checks = {}
        for name, probe in (("database", self.meta.count_users), ("blobs", self.blobs.ping)):
            try:
                await probe()
                checks[name] = "ok"
            except Exception as exc:  # any failure means not ready; say which
                checks[name] = getattr(exc, "message", type(exc).__name__)
        return checks


def build(settings: Settings, presign_secret: bytes, clock: Clock | None = None) -> Stowage:
    clock = clock or SystemClock()
    meta, blob_store = open_backends(settings)
    namespaces = NamespaceService(meta, clock)
    metrics = Metrics()
    objects = ObjectService(
        meta,
        blob_store,
        namespaces,
        clock,
        Limits(
            max_upload_bytes=settings.max_upload_bytes,
            deleted_retention_ms=settings.deleted_retention_seconds * 1000,
            upload_ttl_ms=settings.upload_ttl_seconds * 1000,
            max_object_bytes=settings.max_object_bytes,
            blob_grace_ms=settings.blob_grace_seconds * 1000,
            inline_max_bytes=settings.inline_max_bytes,
        ),
    )
    return Stowage(
        settings=settings,
        clock=clock,
        meta=meta,
        blobs=blob_store,
        access=AccessService(meta, clock, presign_secret),
        namespaces=namespaces,
        objects=objects,
        quotas=QuotaService(meta, clock),
        presigner=Presigner(presign_secret),
        reaper=Reaper(objects, settings.reaper_interval_seconds, metrics, settings.data_dir),
        metrics=metrics,
        uploads=UploadSlots(
            settings.max_concurrent_uploads, settings.max_concurrent_uploads_per_token
        ),
    )
