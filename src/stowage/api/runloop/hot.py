"""Runloop's create, retrieve and complete on the hot path (``common.hot``).

A create whose JSON body does not validate is handed to FastAPI with its bytes, so that
its 400 is worded by FastAPI as before: only valid bodies take the short way.
"""

from __future__ import annotations

import orjson
from pydantic import ValidationError
from starlette.responses import Response

from ...service import Stowage
from ..common.deps import get_principal
from ..common.dialect import HotRoute
from ..common.errors import domain_response
from ..common.hot import ToTheApp
from ..common.requests import StrictRequest
from . import routes


def _is_json(content_type: str | None) -> bool:
    """FastAPI reads a body as JSON with no Content-Type or a JSON one; others it refuses."""
    if not content_type:
        return True
    kind = content_type.split(";", 1)[0].strip().lower()
    return kind == "application/json" or (
        kind.startswith("application/") and kind.endswith("+json")
    )


async def runloop_create(request: StrictRequest, stowage: Stowage, _: str) -> Response:
    body = await request.body()
    if not _is_json(request.headers.get("content-type")):
        raise ToTheApp(body)
    try:
        fields = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise ToTheApp(body) from None
    caller = await get_principal(request)  # FastAPI too checks it before the fields
    try:
        parsed = routes.CreateObjectBody.model_validate(fields)
    except ValidationError:
        raise ToTheApp(body) from None
    return await routes.create_object(parsed, request, caller, stowage, _key(request))


def _key(request: StrictRequest) -> str | None:
    """The idempotency key, read as the routes' ``IdempotencyKey`` dependency reads it."""
    headers = request.headers
    return routes.idempotency_key(headers.get("idempotency-key"), headers.get("x-request-id"))


async def runloop_retrieve(request: StrictRequest, stowage: Stowage, object_id: str) -> Response:
    return await routes.retrieve_object(object_id, await get_principal(request), stowage)


async def runloop_complete(request: StrictRequest, stowage: Stowage, object_id: str) -> Response:
    caller = await get_principal(request)
    return await routes.complete_object(object_id, caller, stowage, _key(request))


RUNLOOP_CREATE = HotRoute("/v1/objects", runloop_create, domain_response)
RUNLOOP_OBJECT = HotRoute("/v1/objects/{object_id}", runloop_retrieve, domain_response)
RUNLOOP_COMPLETE = HotRoute("/v1/objects/{object_id}/complete", runloop_complete, domain_response)


def hot_route(method: str, path: str) -> tuple[HotRoute, str] | None:
    if path == "/v1/objects":
        return (RUNLOOP_CREATE, "") if method == "POST" else None
    if not path.startswith("/v1/objects/"):
        return None
    object_id, _, action = path[len("/v1/objects/") :].partition("/")
    if not object_id or "/" in action:
        return None
    if method == "GET" and not action and object_id != "list_public":
        return RUNLOOP_OBJECT, object_id
    if method == "POST" and action == "complete":
        return RUNLOOP_COMPLETE, object_id
    return None
