"""What happens around every request: the request id, the security headers, metrics.

A plain ASGI middleware rather than Starlette's BaseHTTPMiddleware, which would wrap every
streamed body in another task and queue.
"""

from __future__ import annotations

import re
import secrets
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .. import logs
from ..metrics import Metrics

SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
]
# The API serves no HTML of its own; the interactive docs load their script from a CDN.
API_CSP = (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'")
DOC_PATHS = ("/docs", "/redoc")
_CLEAN_ID = re.compile(rb"^[A-Za-z0-9._:-]{1,200}$")


class Observe:
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = _request_id(scope)
        scope.setdefault("state", {})["request_id"] = request_id.decode()
        logs.request_id.set(request_id.decode())
        extra = [(b"x-request-id", request_id), *SECURITY_HEADERS]
        if not scope["path"].startswith(DOC_PATHS):
            extra.append(API_CSP)
        status, sent, received = 500, 0, 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            return message

        async def observing_send(message: Message) -> None:
            nonlocal status, sent
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), *extra]
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, counting_receive, observing_send)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            seconds = time.perf_counter() - started
            self.metrics.observe(route, scope["method"], status, seconds, sent, received)
            logs.log_request(scope["method"], scope["path"], route, status, seconds, sent, received)


def _request_id(scope: dict[str, Any]) -> bytes:
    """The caller's X-Request-Id when it is a sane token (SDKs send one), else a new one."""
    for name, value in scope["headers"]:
        if name == b"x-request-id" and _CLEAN_ID.match(value):
            return value
    return secrets.token_hex(12).encode()
