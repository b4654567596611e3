"""The hottest routes without the framework around them: Djinn uploads and downloads
(``POST /objects``, ``GET|HEAD /objects/{id}``, also under ``/api``), the presigned
blob URLs (``PUT|GET|HEAD /blobs/{id}``), and Runloop's create, retrieve and complete.

FastAPI's routing over every route, its dependency solving and its route wrappers cost
more CPU than the work itself for a small object (py-spy: about half of a 4 KiB GET).
Here those requests are matched by their path (in ``middleware.Front``, ahead of
FastAPI) and handed to the very route functions of ``djinn.py`` and ``blobs.py``, with
their dependencies resolved by the same functions the routes use (the token, the
signature), and their errors answered by the same mappers as the routes'
(``djinn_error``, ``errors.domain_response``). Nothing is decided twice; only
the machinery is skipped. The OpenAPI document still describes these routes from
FastAPI's declarations, and every other request goes on to FastAPI.

A Runloop create whose JSON body does not validate is handed to FastAPI with its bytes,
so that its 400 is worded by FastAPI as before: only valid bodies take the short way.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import orjson
from pydantic import ValidationError
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..core.errors import StowageError
from ..service import Stowage
from . import blobs, djinn, errors, runloop
from .deps import get_principal
from .djinn_wire import djinn_error, optional_principal
from .requests import StrictRequest

Handler = Callable[[StrictRequest, Stowage, str], Awaitable[Response]]


@dataclass(frozen=True)
class HotRoute:
    path: str  # the route's template, which logs and metrics name it by (``route.path``)
    handle: Handler
    on_error: Callable[[StowageError], Response]


async def djinn_download(request: StrictRequest, stowage: Stowage, object_id: str) -> Response:
    caller = await optional_principal(request)
    return await djinn.get_object(object_id, request, caller, stowage)


async def djinn_upload(request: StrictRequest, stowage: Stowage, _: str) -> Response:
    return await djinn.create_object(request, await get_principal(request), stowage)


def _signed(request: StrictRequest, stowage: Stowage, method: str, object_id: str) -> str:
    query = request.query_params
    return blobs.check_signature(
        stowage, method, object_id, query.get("expires"), query.get("signature")
    )


async def blob_download(request: StrictRequest, stowage: Stowage, object_id: str) -> Response:
    return await blobs.get_blob(_signed(request, stowage, "GET", object_id), request, stowage)


async def blob_upload(request: StrictRequest, stowage: Stowage, object_id: str) -> Response:
    return await blobs.put_blob(_signed(request, stowage, "PUT", object_id), request, stowage)


class ToTheApp(Exception):
    """Let FastAPI answer this request, whose body (already read) was ``body``."""

    def __init__(self, body: bytes) -> None:
        self.body = body


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
    principal = await get_principal(request)  # FastAPI too checks it before the fields
    try:
        parsed = runloop.CreateObjectBody.model_validate(fields)
    except ValidationError:
        raise ToTheApp(body) from None
    return await runloop.create_object(parsed, request, principal, stowage, _key(request))


def _key(request: StrictRequest) -> str | None:
    """The idempotency key, read as the routes' ``IdempotencyKey`` dependency reads it."""
    headers = request.headers
    return runloop.idempotency_key(headers.get("idempotency-key"), headers.get("x-request-id"))


async def runloop_retrieve(request: StrictRequest, stowage: Stowage, object_id: str) -> Response:
    return await runloop.retrieve_object(object_id, await get_principal(request), stowage)


async def runloop_complete(request: StrictRequest, stowage: Stowage, object_id: str) -> Response:
    principal = await get_principal(request)
    return await runloop.complete_object(object_id, principal, stowage, _key(request))


RUNLOOP_CREATE = HotRoute("/v1/objects", runloop_create, errors.domain_response)
RUNLOOP_OBJECT = HotRoute("/v1/objects/{object_id}", runloop_retrieve, errors.domain_response)
RUNLOOP_COMPLETE = HotRoute(
    "/v1/objects/{object_id}/complete", runloop_complete, errors.domain_response
)
DJINN_OBJECT = HotRoute("/objects/{object_id}", djinn_download, djinn_error)
DJINN_UPLOAD = HotRoute("/objects", djinn_upload, djinn_error)
BLOB_READ = HotRoute("/blobs/{object_id}", blob_download, errors.domain_response)
BLOB_WRITE = HotRoute("/blobs/{object_id}", blob_upload, errors.domain_response)


def hot_route(method: str, path: str) -> tuple[HotRoute, str] | None:
    """The hot route for this request and its path parameter, or None. The Djinn routes
    are served at the root and under ``/api``; the presigned blob URLs at the root only."""
    if path.startswith("/v1/objects/"):
        return _runloop_route(method, path[len("/v1/objects/") :])
    if path == "/v1/objects":
        return (RUNLOOP_CREATE, "") if method == "POST" else None
    under_api = path.startswith("/api/")
    head, _, rest = path[len("/api/") if under_api else 1 :].partition("/")
    if "/" in rest:
        return None
    if head == "objects":
        if method == "POST" and not rest and path.endswith("/objects"):
            return DJINN_UPLOAD, ""
        if method in ("GET", "HEAD") and rest:
            return DJINN_OBJECT, rest
    elif head == "blobs" and rest and not under_api:
        if method in ("GET", "HEAD"):
            return BLOB_READ, rest
        if method == "PUT":
            return BLOB_WRITE, rest
    return None


def _runloop_route(method: str, rest: str) -> tuple[HotRoute, str] | None:
    object_id, _, action = rest.partition("/")
    if not object_id or "/" in action:
        return None
    if method == "GET" and not action and object_id != "list_public":
        return RUNLOOP_OBJECT, object_id
    if method == "POST" and action == "complete":
        return RUNLOOP_COMPLETE, object_id
    return None


async def serve_hot(
    found: tuple[HotRoute, str], app: ASGIApp, scope: Scope, receive: Receive, send: Send
) -> None:
    """Answer a request ``hot_route`` matched (``app`` takes the ones handed back)."""
    route, parameter = found
    request = StrictRequest(scope, receive)
    stowage: Stowage = request.app.state.stowage
    try:
        response = await route.handle(request, stowage, parameter)
    except StowageError as exc:
        response = route.on_error(exc)
    except ClientDisconnect:
        response = errors.disconnected()
    except HTTPException as exc:  # the body cap (middleware.Front) refused the body
        response = errors.http_response(request, exc)
    except ToTheApp as handover:
        await app(scope, _replay(handover.body, receive), send)
        return
    except Exception as exc:  # a bug: FastAPI's routes have the same last resort
        response = errors.unexpected(request, exc)
    scope["route"] = route
    await response(scope, receive, send)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives ``body`` again, then whatever the client does next."""
    given = False

    async def replayed() -> Message:
        nonlocal given
        if given:
            return await receive()
        given = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replayed
