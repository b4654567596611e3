"""Request bodies read strictly: text that is not valid Unicode is refused where it is
decoded, once for every route, instead of field by field.

Starlette decodes JSON with the standard library, which accepts a lone surrogate
(``"\\ud800"``) and so hands routes a ``str`` that cannot be encoded again: the first
database write or ``.encode()`` fails with a 500. orjson refuses it (and numbers too big for
a double), and its error is a ``json.JSONDecodeError``, which FastAPI already answers with
400. Form bodies are percent-decoded with ``errors="replace"``, which silently turns bytes
that are not UTF-8 into U+FFFD; they are checked before parsing. (Multipart text fields are
still decoded leniently by Starlette, as UTF-8 or else Latin-1.)

URLs are checked in ``middleware.Front``; headers are Latin-1 and always decode.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import unquote_to_bytes

import orjson
from fastapi.routing import APIRoute
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response


def is_utf8_when_unquoted(raw: bytes) -> bool:
    """True when these URL-encoded bytes decode to valid UTF-8 (no lone surrogates)."""
    if raw.isascii() and b"%" not in raw:
        return True
    try:
        unquote_to_bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


class StrictRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = orjson.loads(await self.body())
        return self._json

    async def _get_form(self, **limits: Any) -> FormData:
        # Starlette's one form-parsing method; ``form()`` awaits it.
        content_type = self.headers.get("content-type", "")
        if (
            self._form is None
            and content_type.startswith("application/x-www-form-urlencoded")
            and not is_utf8_when_unquoted((await self.body()).replace(b"+", b" "))
        ):
            raise HTTPException(400, "the form is not valid UTF-8 once percent-decoded")
        return await super()._get_form(**limits)


class StrictRoute(APIRoute):
    """The route class of every router: its endpoint sees a ``StrictRequest``."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict(request: Request) -> Response:
            return await handler(StrictRequest(request.scope, request.receive, request._send))

        return strict
