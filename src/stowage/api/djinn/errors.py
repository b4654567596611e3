"""How the Djinn dialect answers a failure.

Djinn answers every auth or permission failure with 404 ``{"message":"Not Found"}`` (so a
caller cannot probe for what exists) and validation with 400 ``{"field": ["Msg", ...]}``.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import orjson
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from starlette.responses import JSONResponse, Response

from ...core.errors import (
    BodyTimeout,
    FieldErrors,
    InsufficientStorage,
    Invalid,
    Problem,
    QuotaExceeded,
    StowageError,
    TooBusy,
    TooLarge,
    Unavailable,
)
from ..common.errors import describe_validation_error
from ..common.requests import StrictRoute


class DjinnJson(JSONResponse):
    media_type = "application/json; charset=utf-8"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content) + b"\n"


# Djinn's words for each problem, by (field, code), then by code for any field.
WORDS: dict[tuple[str, str] | str, str] = {
    ("handle", "required"): "Username Or Email field required",
    "required": "{Field} field required",
    "not_string": "{Field} must be a string",
    "nul": "{Field} must not contain NUL bytes",
    "pattern": "{Field} does not match {rule}",
    ("description", "too_long"): "Description cannot be longer than {max} characters in length",
    "too_long": "{Field} cannot be longer than {max} characters",
    "length": "{Field} must be between {min} and {max} characters in length",
    "charset": "{Field} can only have letters, and numbers",
    "taken": "{Field} already exists",
    "too_large": "{field} too large, cannot exceed {size}",
    ("namespace", "bad_path"): "{ref}: invalid namespace path",
    ("namespace", "bad_segment"): "{ref}: namespace: name can only contain letters and numbers",
    ("namespace", "too_deep"): "{ref}: namespace: deeper than {max} levels",
    ("parent", "too_deep"): "Namespaces cannot be nested deeper than {max}",
    ("namespace", "denied"): "Namespace permission denied",
    ("namespace", "missing"): "Namespace {ref} does not exist",
    ("parent", "missing"): "Parent namespace does not exist",
    "choice": "{Field} must be one of {choices}",
    ("handle", "self"): "Cannot invite self",
    ("handle", "member"): "Already a collaborator",
    ("handle", "invited"): "Invite already sent",
    "quota": "{Field} exceeds the {scope} quota of {quota}",
}


def human_size(n: int) -> str:
    """Whole 1024-based units as Djinn words its limit: 5242880 → "5 MB"."""
    for unit, size in (("GB", 1024**3), ("MB", 1024**2), ("KB", 1024)):
        if n >= size and n % size == 0:
            return f"{n // size} {unit}"
    return f"{n} B"


def worded(problem: Problem) -> str:
    template = WORDS.get((problem.field, problem.code)) or WORDS[problem.code]
    detail = dict(problem.detail)
    limit = detail.get("limit")
    if isinstance(limit, int):
        detail["size"] = human_size(limit)
        bytes_ = detail.get("dimension") != "objects"
        detail["quota"] = human_size(limit) if bytes_ else f"{limit} objects"
    return template.format(field=problem.field, Field=problem.field.capitalize(), **detail)


def field_errors(exc: FieldErrors) -> dict[str, list[str]]:
    """``{field: [messages]}``, Djinn's validation body."""
    fields: dict[str, list[str]] = {}
    for problem in exc.problems:
        fields.setdefault(problem.field, []).append(worded(problem))
    return fields


def not_found() -> DjinnJson:
    return DjinnJson({"message": "Not Found"}, status_code=404)


def djinn_error(exc: StowageError) -> DjinnJson:
    """A domain error as Djinn answers it: field errors as ``{field: [...]}``, bad input as
    400, the limits with their statuses, and auth, scope, access and absence alike as 404."""
    if isinstance(exc, FieldErrors):
        return DjinnJson(field_errors(exc), status_code=400)
    if isinstance(exc, QuotaExceeded):  # Djinn words it as a problem with the file field
        return DjinnJson(field_errors(FieldErrors(exc.problem)), status_code=400)
    if isinstance(exc, Invalid | TooLarge):
        return DjinnJson({"message": exc.message}, status_code=400)
    if isinstance(exc, BodyTimeout):
        return DjinnJson({"message": exc.message}, status_code=408)
    if isinstance(exc, InsufficientStorage):
        return DjinnJson({"message": exc.message}, status_code=507)
    if isinstance(exc, TooBusy | Unavailable):
        retry = {"Retry-After": str(exc.retry_after_s)}
        status = 429 if isinstance(exc, TooBusy) else 503
        return DjinnJson({"message": exc.message}, status_code=status, headers=retry)
    return not_found()


class DjinnRoute(StrictRoute):
    """Maps domain errors to Djinn's statuses for every route of the dialect."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def run(request: Request) -> Response:
            try:
                return await handler(request)
            except StowageError as exc:
                return djinn_error(exc)
            except RequestValidationError as exc:
                message = "; ".join(describe_validation_error(e) for e in exc.errors())
                return DjinnJson({"message": message}, status_code=400)

        return run
