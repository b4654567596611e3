"""The process-wide service graph: settings, clock, backends and core services."""

from __future__ import annotations

from dataclasses import dataclass

from .blobs.local import LocalBlobStore
from .blobs.s3 import S3BlobStore
from .config import Settings
from .core.access import AccessService
from .core.clock import Clock, SystemClock
from .core.limits import UploadSlots
from .core.namespaces import NamespaceService
from .core.objects import Limits, ObjectService
from .core.presign import Presigner
from .meta.sql import SqlMetadataStore
from .metrics import Metrics
from .reaper import Reaper


@dataclass
class Stowage:
    """Everything a request handler needs, built once per process."""

    settings: Settings
    clock: Clock
    meta: SqlMetadataStore
    blobs: LocalBlobStore | S3BlobStore
    access: AccessService
    namespaces: NamespaceService
    objects: ObjectService
    presigner: Presigner
    reaper: Reaper
    metrics: Metrics
    uploads: UploadSlots

    async def refresh_store_figures(self) -> None:
        figures = self.metrics.store
        figures.objects, figures.bytes = await self.meta.totals(self.clock.now_ms())

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


def make_blob_store(settings: Settings) -> LocalBlobStore | S3BlobStore:
    if settings.blob_store == "local":
        return LocalBlobStore(settings.blob_dir)
    if not settings.s3_bucket:
        raise ValueError("STOWAGE_BLOB_STORE=s3 needs STOWAGE_S3_BUCKET")
    return S3BlobStore(
        bucket=settings.s3_bucket,
        endpoint=settings.s3_endpoint,
        region=settings.s3_region,
        access_key_id=settings.s3_access_key_id,
        secret_access_key=settings.s3_secret_access_key,
        path_style=settings.s3_path_style,
        prefix=settings.s3_prefix,
    )


def build(settings: Settings, presign_secret: bytes, clock: Clock | None = None) -> Stowage:
    clock = clock or SystemClock()
    meta = SqlMetadataStore(settings.sqlalchemy_url)
    blob_store = make_blob_store(settings)
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
        reaper=Reaper(objects, settings.reaper_interval_seconds, metrics, settings.data_dir),
        metrics=metrics,
        uploads=UploadSlots(
            settings.max_concurrent_uploads, settings.max_concurrent_uploads_per_token
        ),
    )
