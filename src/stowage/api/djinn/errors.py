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


def not_found() -> DjinnJson:
    return DjinnJson({"message": "Not Found"}, status_code=404)


def djinn_error(exc: StowageError) -> DjinnJson:
    """A domain error as Djinn answers it: field errors as ``{field: [...]}``, bad input as
    400, the limits with their statuses, and auth, scope, access and absence alike as 404."""
    if isinstance(exc, FieldErrors):
        return DjinnJson(exc.fields, status_code=400)
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
