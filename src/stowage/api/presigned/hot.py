"""The presigned blob URLs on the hot path (``common.hot``): ``PUT|GET|HEAD /blobs/{id}``."""

from __future__ import annotations

from starlette.responses import Response

from ...core.presign import Grant
from ...service import Stowage
from ..common.dialect import HotRoute
from ..common.errors import domain_response
from ..common.requests import StrictRequest
from . import routes


def _signed(request: StrictRequest, stowage: Stowage, method: str, object_id: str) -> Grant:
    query = request.query_params
    return routes.check_signature(
        stowage, method, object_id, query.get("expires"), query.get("signature")
    )


async def blob_download(request: StrictRequest, stowage: Stowage, object_id: str) -> Response:
    return await routes.get_blob(_signed(request, stowage, "GET", object_id), request, stowage)


async def blob_upload(request: StrictRequest, stowage: Stowage, object_id: str) -> Response:
    return await routes.put_blob(_signed(request, stowage, "PUT", object_id), request, stowage)


BLOB_READ = HotRoute("/blobs/{object_id}", blob_download, domain_response)
BLOB_WRITE = HotRoute("/blobs/{object_id}", blob_upload, domain_response)


def hot_route(method: str, path: str) -> tuple[HotRoute, str] | None:
    if not path.startswith("/blobs/"):
        return None
    object_id = path[len("/blobs/") :]
    if not object_id or "/" in object_id:
        return None
    if method in ("GET", "HEAD"):
        return BLOB_READ, object_id
    if method == "PUT":
        return BLOB_WRITE, object_id
    return None
