"""Settings from ``STOWAGE_*`` environment variables; the defaults give the embedded store."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

GIB = 1024**3


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity, as ``os.process_cpu_count`` of
    Python 3.13 counts them), not every CPU of the machine."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class Settings(BaseSettings):
    """Everything an operator can set. Each field maps to ``STOWAGE_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="STOWAGE_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = Field(
        default_factory=usable_cpus,
        ge=1,
        description="server worker processes; defaults to the CPUs stowage may use",
    )
    data_dir: Path = Path("data")
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL; defaults to SQLite at <data_dir>/stowage.db",
    )
    public_url: str | None = Field(
        default=None,
        description="Base of presigned URLs; defaults to the scheme and host of each request",
    )
    presign_secret: str | None = Field(
        default=None,
        description="HMAC key for presigned URLs; else <data_dir>/presign-secret is generated",
    )
    blob_store: Literal["local", "s3"] = "local"
    s3_endpoint: str | None = Field(default=None, description="e.g. http://127.0.0.1:8333")
    s3_bucket: str | None = None
    s3_region: str = "us-east-1"
    s3_access_key_id: str | None = None
    s3_secret_access_key: str | None = None
    s3_path_style: bool = Field(default=True, description="false for virtual-hosted buckets")
    s3_prefix: str = Field(default="", description="key prefix, to share a bucket")
    s3_api_port: int = Field(
        default=9000, ge=0, le=65535, description="the S3 API's own port (0: no S3 API)"
    )
    s3_api_domain: str | None = Field(
        default=None, description="e.g. s3.example.com: also serve {bucket}.s3.example.com"
    )
    max_upload_bytes: int = 5 * GIB
    max_object_bytes: int = Field(
        default=5 * 1024 * GIB, description="largest object assembled from S3 multipart parts"
    )
    upload_url_ttl_seconds: int = 3600
    reaper_interval_seconds: float = 30.0
    deleted_retention_seconds: int = 86400
    blob_grace_seconds: int = Field(
        default=3600,
        ge=60,
        description="a blob no object references any more is removed this long after "
        "its last reference went (covers uploads that found it and have yet to commit)",
    )
    inline_max_bytes: int = Field(
        default=16 * 1024,
        ge=0,
        le=1024 * 1024,
        description="an object this small is kept in the database, not as a blob file "
        "or S3 object (0: never)",
    )
    max_concurrent_uploads: int = Field(default=256, description="per process")
    max_concurrent_uploads_per_token: int = Field(default=64, description="per process")
    body_timeout_seconds: float = Field(
        default=60, description="an upload that sends nothing for this long is abandoned"
    )
    upload_min_rate: int = Field(
        default=16384,
        ge=0,
        description="bytes/s an upload must average once it has run for "
        "body_timeout_seconds (0: no minimum); a slower one is abandoned",
    )
    upload_ttl_seconds: int = Field(
        default=86400,
        gt=0,
        description="an object still UPLOADING this long after its creation is removed",
    )
    shutdown_timeout_seconds: float = Field(
        default=30, description="on SIGTERM, how long in-flight requests may take to finish"
    )
    log_level: str = "info"
    log_format: Literal["json", "text"] = "json"
    max_header_bytes: int = Field(
        default=64 * 1024,
        description="a request's line and headers together; more is answered 431",
    )
    forwarded_allow_ips: str = Field(
        default="127.0.0.1,::1",
        description="comma-separated addresses of proxies whose X-Forwarded-Proto and "
        "X-Forwarded-For are believed",
    )
    max_requests_per_client: int = Field(
        default=256,
        description="requests in flight from one client address; 0: no cap (behind a proxy)",
    )
    header_timeout_seconds: float = Field(
        default=10,
        description="a client must send a request's headers within this; else the "
        "connection is closed",
    )

    @property
    def blob_dir(self) -> Path:
        return self.data_dir / "blobs"

    @property
    def sqlalchemy_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'stowage.db').resolve()}"
