"""The OpenAPI document: FastAPI's, completed with what is true of whole groups of routes.

FastAPI documents each route's success and what its signature validates. The rest is said
here once instead of on every route: each dialect's error bodies and the statuses any route
may answer (400 for bad input where FastAPI would say 422, 401/403 in the Runloop dialect,
Djinn's catch-all 404, 503 while a backend is down), the statuses of the two upload routes,
and which routes take a bearer token. ``tests/test_fuzz.py`` holds the server to it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute, iter_route_contexts

from .deps import get_principal
from .djinn_wire import optional_principal

MESSAGE = {
    "type": "object",
    "properties": {"message": {"type": "string"}},
    "required": ["message"],
}
FIELD_ERRORS = {
    "type": "object",
    "description": 'Djinn validation errors by field: {"name": ["Name field required"]}',
    "additionalProperties": {"type": "array", "items": {"type": "string"}},
}
DJINN_TAGS = {"djinn", "djinn namespaces"}
UPLOADS = {("put", "/blobs/{object_id}"), ("post", "/objects")}
RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer"}}}

COMMON: dict[str, dict[int, str]] = {
    "input": {400: "Invalid parameters or body; the message says which and why"},
    "runloop-auth": {
        401: "Missing, unknown or revoked bearer token",
        403: "The token lacks the scope this call needs",
    },
    "djinn-auth": {404: "Absent, not visible to this token, or a bad token: always Not Found"},
    "upload": {
        408: "The body stalled for longer than STOWAGE_BODY_TIMEOUT_SECONDS",
        429: "Too many uploads in flight for this token or this process",
        507: "The blob store is out of space; nothing was kept",
    },
    "body": {413: "The body is over STOWAGE_MAX_UPLOAD_BYTES (uploads) or 1 MiB (JSON, forms)"},
    "backend": {503: "The metadata database or the blob store is unreachable"},
}


def install(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            complete(schema, _auth_by_operation(app))
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def complete(schema: dict[str, Any], auth: dict[tuple[str, str], str]) -> None:
    components = schema.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    schemas["Message"] = MESSAGE
    schemas["FieldErrors"] = FIELD_ERRORS
    components["securitySchemes"] = {
        "bearer": {"type": "http", "scheme": "bearer", "description": "An API token"}
    }
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            _complete_operation(path, method, operation, auth.get((method, path)))


def _complete_operation(
    path: str, method: str, operation: dict[str, Any], auth: str | None
) -> None:
    djinn = bool(DJINN_TAGS & set(operation.get("tags", ())))
    responses: dict[str, Any] = operation["responses"]
    responses.pop("422", None)
    groups = []
    if operation.get("parameters") or "requestBody" in operation:
        groups.append("input")
    if auth:
        groups.append("djinn-auth" if djinn else "runloop-auth")
        required: list[dict[str, list[str]]] = [{"bearer": []}]
        operation["security"] = required if auth == "required" else [{}, *required]
    if (method, path) in UPLOADS:
        groups.append("upload")
    if "requestBody" in operation and (method, path) != ("post", "/objects"):
        groups.append("body")  # Djinn words an oversized file as a field error: 400
    if path != "/healthz":
        groups.append("backend")
    for group in groups:
        for code, description in COMMON[group].items():
            responses.setdefault(str(code), {"description": description})
    for status, response in responses.items():
        if status in ("429", "503"):
            response.setdefault("headers", {}).update(RETRY_AFTER)
        if int(status) >= 400 and "content" not in response:
            response["content"] = {"application/json": {"schema": _error_schema(djinn, status)}}


def _error_schema(djinn: bool, code: str) -> dict[str, Any]:
    message = {"$ref": "#/components/schemas/Message"}
    if djinn and code == "400":
        return {"anyOf": [{"$ref": "#/components/schemas/FieldErrors"}, message]}
    return message


def _auth_by_operation(app: FastAPI) -> dict[tuple[str, str], str]:
    """``required`` or ``optional`` for each documented operation that reads a token."""
    found: dict[tuple[str, str], str] = {}
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if not isinstance(route, APIRoute) or not context.include_in_schema:
            continue
        calls = _calls(route.dependant)
        kind = (
            "required"
            if get_principal in calls
            else "optional"
            if optional_principal in calls
            else None
        )
        if kind and context.path_format:
            for method in context.methods or ():
                found[(method.lower(), context.path_format)] = kind
    return found


def _calls(dependant: Dependant) -> set[Callable[..., Any]]:
    calls = {dependant.call} if dependant.call else set()
    for sub in dependant.dependencies:
        calls |= _calls(sub)
    return calls
