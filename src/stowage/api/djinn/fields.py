"""The named fields of a Djinn request body, JSON or form."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import Request

from ...core.errors import FieldErrors, Invalid, Problem


def body_is_form(request: Request) -> bool:
    """A multipart form (Djinn's uploads take one as well as a raw body)."""
    return request.headers.get("content-type", "").startswith("multipart/form-data")


async def read_fields(request: Request, *names: str) -> dict[str, str]:
    """The named fields of a JSON or form body, matched case-blind as Djinn does; other
    fields are ignored, whatever their type."""
    content_type = request.headers.get("content-type", "")
    multipart = body_is_form(request)
    raw = b"" if multipart else await request.body()
    # curl -d sends JSON labelled as a form; take it for what it is (Djinn lost such bodies).
    if multipart or (
        content_type.startswith("application/x-www-form-urlencoded")
        and not raw.lstrip().startswith(b"{")
    ):
        form = await request.form()
        data: Any = {k: v for k, v in form.items() if isinstance(v, str)}
    else:
        if not raw.strip():
            return {}
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise Invalid("request body is not valid JSON") from None
        if not isinstance(data, dict):
            raise Invalid("request body must be a JSON object")
    fields = {}
    for key, value in data.items():
        if not isinstance(key, str) or key.lower() not in names:
            continue
        if value is not None and not isinstance(value, str):
            raise FieldErrors(Problem(key.lower(), "not_string"))
        if value is not None and "\x00" in value:
            raise FieldErrors(Problem(key.lower(), "nul"))
        if value is not None:
            fields[key.lower()] = value
    return fields
