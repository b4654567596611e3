"""Absolute URLs handed to clients: the public base of this server, and presigned links
to an object's bytes (on the blob store itself in S3 mode, else on ``/blobs``)."""

from __future__ import annotations

from fastapi import Request

from ...core.models import StoredObject
from ...service import Stowage

BLOBS = "/blobs"  # where the presigned routes (``api.presigned``) serve the bytes
DEFAULT_PORTS = {"http": 80, "https": 443}


def public_base(request: Request) -> str:
    """The base of absolute URLs handed to clients (presigned upload and download URLs):
    ``STOWAGE_PUBLIC_URL``, else what Starlette's ``request.base_url`` gives, built here
    from the scope without the URL objects that cost a small upload a tenth of its CPU."""
    configured = request.app.state.stowage.settings.public_url
    if configured:
        return configured.rstrip("/")
    scope = request.scope
    scheme = scope.get("scheme", "http")
    root = scope.get("root_path", "")
    host = request.headers.get("host")
    if host:
        return f"{scheme}://{host}{root}".rstrip("/")
    server = scope.get("server")
    if server is None:
        return root.rstrip("/")
    name, port = server
    at = "" if port == DEFAULT_PORTS.get(scheme) else f":{port}"
    return f"{scheme}://{name}{at}{root}".rstrip("/")


def presigned_url(request: Request, stowage: Stowage, method: str, object_id: str, ttl: int) -> str:
    expires = stowage.clock.now_ms() // 1000 + ttl
    signature = stowage.presigner.sign(method, object_id, expires)
    return f"{public_base(request)}{BLOBS}/{object_id}?expires={expires}&signature={signature}"


def download_link(request: Request, stowage: Stowage, obj: StoredObject, seconds: int) -> str:
    """A presigned GET URL (the bucket's own in S3 mode) that never outlives the object."""
    if obj.delete_after_time_ms is not None:
        left_ms = obj.delete_after_time_ms - stowage.clock.now_ms()
        seconds = max(1, min(seconds, -(-left_ms // 1000)))
    return stowage.objects.direct_download_url(obj, seconds) or presigned_url(
        request, stowage, "GET", obj.public_id, seconds
    )
