"""Headers every response carries: the request id, and the security headers.

A plain ASGI middleware rather than Starlette's BaseHTTPMiddleware, which would wrap every
streamed body in another task and queue.
"""

from __future__ import annotations

import re
import secrets
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
]
# The API serves no HTML of its own; the interactive docs load their script from a CDN.
API_CSP = (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'")
DOC_PATHS = ("/docs", "/redoc")
_CLEAN_ID = re.compile(rb"^[A-Za-z0-9._:-]{1,200}$")


class ResponseHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope)
        scope.setdefault("state", {})["request_id"] = request_id.decode()
        extra = [(b"x-request-id", request_id), *SECURITY_HEADERS]
        if not scope["path"].startswith(DOC_PATHS):
            extra.append(API_CSP)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _request_id(scope: dict[str, Any]) -> bytes:
    """The caller's X-Request-Id when it is a sane token (SDKs send one), else a new one."""
    for name, value in scope["headers"]:
        if name == b"x-request-id" and _CLEAN_ID.match(value):
            return value
    return secrets.token_hex(12).encode()
