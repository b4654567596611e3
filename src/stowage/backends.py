"""From settings to backends: the metadata store and the blob store a process opens.

The server (``service.build``), the admin CLI and first-start work (``bootstrap``) all open
them here, so a new backend is wired in one place. Whoever opens a store closes it.
"""

from __future__ import annotations

from collections.abc import Callable

from .blobs.local import LocalBlobStore
from .blobs.s3 import S3BlobStore
from .config import Settings
from .core.ports import BlobStore, MetadataStore
from .meta.sql import SqlMetadataStore


def open_metadata(settings: Settings) -> MetadataStore:
    """SQLite or PostgreSQL, as ``settings.sqlalchemy_url`` says (``meta.database``)."""
    return SqlMetadataStore(settings.sqlalchemy_url)


def _s3_blobs(settings: Settings) -> S3BlobStore:
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


# STOWAGE_BLOB_STORE → the store it names (its values are ``Settings.blob_store``'s).
BLOB_STORES: dict[str, Callable[[Settings], BlobStore]] = {
    "local": lambda settings: LocalBlobStore(settings.blob_dir),
    "s3": _s3_blobs,
}


def open_blobs(settings: Settings) -> BlobStore:
    return BLOB_STORES[settings.blob_store](settings)


def open_backends(settings: Settings) -> tuple[MetadataStore, BlobStore]:
    """Both stores, for what needs objects' bytes too (the server, fsck)."""
    return open_metadata(settings), open_blobs(settings)
