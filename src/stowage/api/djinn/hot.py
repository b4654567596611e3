"""Djinn uploads and downloads on the hot path (``common.hot``): ``POST /objects`` and
``GET|HEAD /objects/{id}``, at the root and under ``/api``."""

from __future__ import annotations

from starlette.responses import Response

from ...service import Stowage
from ..common.deps import get_principal, optional_principal
from ..common.dialect import HotRoute
from ..common.requests import StrictRequest
from . import objects
from .errors import djinn_error


async def djinn_download(request: StrictRequest, stowage: Stowage, object_id: str) -> Response:
    caller = await optional_principal(request)
    return await objects.get_object(object_id, request, caller, stowage)


async def djinn_upload(request: StrictRequest, stowage: Stowage, _: str) -> Response:
    return await objects.create_object(request, await get_principal(request), stowage)


DJINN_OBJECT = HotRoute("/objects/{object_id}", djinn_download, djinn_error)
DJINN_UPLOAD = HotRoute("/objects", djinn_upload, djinn_error)


def hot_route(method: str, path: str) -> tuple[HotRoute, str] | None:
    under_api = path.startswith("/api/")
    head, _, rest = path[len("/api/") if under_api else 1 :].partition("/")
    if head != "objects" or "/" in rest:
        return None
    if method == "POST" and not rest and path.endswith("/objects"):
        return DJINN_UPLOAD, ""
    if method in ("GET", "HEAD") and rest:
        return DJINN_OBJECT, rest
    return None
