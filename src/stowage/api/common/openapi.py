"""The OpenAPI document: FastAPI's, completed with what is true of whole groups of routes.

FastAPI documents each route's success and what its signature validates. The rest is said
here once instead of on every route, from each dialect's descriptor (``dialect.Dialect``):
its error bodies and the statuses any of its routes may answer (400 for bad input where
FastAPI would say 422, what its authenticated routes answer for a bad token, 503 while a
backend is down), the statuses of the upload routes, and which routes take a bearer
token. ``tests/test_fuzz.py`` holds the server to it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute, iter_route_contexts

from .deps import get_principal, optional_principal
from .dialect import Dialect

MESSAGE = {
    "type": "object",
    "properties": {"message": {"type": "string"}},
    "required": ["message"],
}
RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer"}}}

COMMON: dict[str, dict[int, str]] = {
    "input": {400: "Invalid parameters or body; the message says which and why"},
    "upload": {
        408: "The body stalled for longer than STOWAGE_BODY_TIMEOUT_SECONDS",
        429: "Too many uploads in flight for this token or this process",
        507: "The blob store is out of space; nothing was kept",
    },
    "body": {413: "The body is over STOWAGE_MAX_UPLOAD_BYTES (uploads) or 1 MiB (JSON, forms)"},
    "backend": {503: "The metadata database or the blob store is unreachable"},
}


def install(app: FastAPI, dialects: tuple[Dialect, ...]) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            complete(schema, _auth_by_operation(app), dialects)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def complete(
    schema: dict[str, Any], auth: dict[tuple[str, str], str], dialects: tuple[Dialect, ...]
) -> None:
    components = schema.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    schemas["Message"] = MESSAGE
    for dialect in dialects:
        schemas.update(dialect.components)
    components["securitySchemes"] = {
        "bearer": {"type": "http", "scheme": "bearer", "description": "An API token"}
    }
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            tags = set(operation.get("tags", ()))
            owner = next((d for d in dialects if d.tags & tags), None)
            _complete_operation(path, method, operation, auth.get((method, path)), owner)


def _complete_operation(
    path: str, method: str, operation: dict[str, Any], auth: str | None, dialect: Dialect | None
) -> None:
    responses: dict[str, Any] = operation["responses"]
    responses.pop("422", None)
    route = (method.upper(), path)
    statuses: dict[int, str] = {}
    if operation.get("parameters") or "requestBody" in operation:
        statuses |= COMMON["input"]
    if auth:
        statuses |= dialect.auth_statuses if dialect else {}
        required: list[dict[str, list[str]]] = [{"bearer": []}]
        operation["security"] = required if auth == "required" else [{}, *required]
    if dialect and route in dialect.uploads:
        statuses |= COMMON["upload"]
    if "requestBody" in operation and not (dialect and route in dialect.uploads_refuse_as_400):
        statuses |= COMMON["body"]
    if path != "/healthz":
        statuses |= COMMON["backend"]
    for code, description in statuses.items():
        responses.setdefault(str(code), {"description": description})
    for status, response in responses.items():
        if status in ("429", "503"):
            response.setdefault("headers", {}).update(RETRY_AFTER)
        if int(status) >= 400 and "content" not in response:
            schema = dialect.error_schemas.get(int(status)) if dialect else None
            schema = schema or {"$ref": "#/components/schemas/Message"}
            response["content"] = {"application/json": {"schema": schema}}


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
