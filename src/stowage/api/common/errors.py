"""Turn every failure into a JSON error the caller can act on; never a stack trace.

The Runloop dialect and the presigned blob endpoints answer ``{"message": ...}``.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import iter_route_contexts
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.routing import Match

from ...core import errors as e
from .responses import JsonResponse

log = logging.getLogger(__name__)

STATUS: dict[type[e.StowageError], int] = {
    e.Invalid: 400,
    e.Gone: 400,
    e.Unauthenticated: 401,
    e.Forbidden: 403,
    e.BadSignature: 403,
    e.NotFound: 404,
    e.Conflict: 409,
    e.TooLarge: 413,
    e.BodyTimeout: 408,
    e.Unavailable: 503,
    e.InsufficientStorage: 507,
    e.TooBusy: 429,
    e.QuotaExceeded: 403,  # understood and refused; the message says which quota
}


def message_response(status: int, message: str) -> Response:
    headers = {}
    if status == 409:
        # The Runloop SDKs retry 409 unless told not to; our conflicts are final.
        headers["x-should-retry"] = "false"
    if status == 503:
        headers["Retry-After"] = str(e.Unavailable.retry_after_s)
    if status == 429:
        headers["Retry-After"] = str(e.TooBusy.retry_after_s)
    return JsonResponse({"message": message}, status_code=status, headers=headers)


def describe_validation_error(error: dict) -> str:
    where = ".".join(str(p) for p in error.get("loc", ()) if p != "body")
    if error.get("type") == "json_invalid":
        reason = error.get("ctx", {}).get("error")
        return "request body is not valid JSON" + (f": {reason}" if reason else "")
    if error.get("type") == "extra_forbidden":
        return f"unknown field {where!r}"
    if error.get("type") == "missing":
        return f"{where} is required"
    return f"{where}: {error.get('msg', 'invalid value')}" if where else error.get("msg", "invalid")


def domain_response(exc: e.StowageError) -> Response:
    """A domain error as the Runloop dialect and the presigned endpoints answer it."""
    return message_response(STATUS.get(type(exc), 400), exc.message)


def disconnected() -> Response:
    """Nobody will read it; it is what the access log and the metrics record."""
    return message_response(400, "the client disconnected before the body was complete")


async def _domain(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, e.StowageError)
    return domain_response(exc)


async def _validation(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return message_response(400, "; ".join(describe_validation_error(err) for err in exc.errors()))


async def _http(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return http_response(request, exc)


def http_response(request: Request, exc: HTTPException) -> Response:
    """A refusal raised as an HTTPException (by a middleware's body cap, or routing)."""
    response = message_response(exc.status_code, str(exc.detail))
    if exc.headers:
        response.headers.update(exc.headers)
    if exc.status_code == 405:
        response.headers["Allow"] = allowed_methods(request)
    return response


def allowed_methods(request: Request) -> str:
    """Every method the path takes. Starlette names only those of the first route whose path
    matches, and ``/blobs/{id}`` is two routes (PUT; GET and HEAD)."""
    methods: set[str] = set()
    for route in iter_route_contexts(request.app.routes):
        if route.methods and route.matches(request.scope)[0] is not Match.NONE:
            methods |= route.methods
    return ", ".join(sorted(methods))


async def _disconnect(_request: Request, _exc: Exception) -> Response:
    return disconnected()


async def _unexpected(request: Request, exc: Exception) -> Response:
    return unexpected(request, exc)


def unexpected(request: Request, exc: Exception) -> Response:
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return message_response(500, "internal error; the server log has the details")


def install(app: FastAPI) -> None:
    app.add_exception_handler(e.StowageError, _domain)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(HTTPException, _http)
    app.add_exception_handler(ClientDisconnect, _disconnect)
    app.add_exception_handler(Exception, _unexpected)
