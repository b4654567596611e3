"""What happens around every request: the request id, the security headers, metrics, and
three refusals: too many requests at once from one address, URLs with NUL bytes or
non-UTF-8, and oversized bodies outside the upload routes.

Plain ASGI rather than Starlette's BaseHTTPMiddleware, which would wrap every streamed
body in another task and queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import time

from fastapi import FastAPI
from starlette.exceptions import HTTPException
from starlette.types import Message, Receive, Scope, Send

from ... import logs
from ...metrics import Metrics
from ...numbers import parse_bounded_int
from .admission import ClientCap, believe_proxy
from .dialect import Dialect, HotRoutes, UploadRoutes
from .errors import message_response
from .hot import serve_hot
from .requests import is_utf8_when_unquoted

SECURITY_HEADERS = [(b"x-content-type-options", b"nosniff"), (b"x-frame-options", b"DENY")]
NO_REFERRER = (b"referrer-policy", b"no-referrer")
# The API serves no HTML of its own; the interactive docs load their script from a CDN.
API_CSP = (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'")
DOC_PATHS = ("/docs", "/redoc")
# The console's pages load only their own script and stylesheet, and post only to stowage.
CONSOLE_CSP = (
    b"content-security-policy",
    b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    b"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
)
DRAIN_BYTES = 64 * 1024
DRAIN_SECONDS = 5
_CLEAN_ID = re.compile(rb"^[A-Za-z0-9._:-]{1,200}$")


class Front:
    """Every request passes here first, in one ASGI layer ahead of FastAPI: five stacked
    middlewares cost an ``await``, a closure and a header scan each, more CPU than serving
    a small object. In order:

    * behind a TLS proxy, the client's scheme and address from the proxy's
      ``X-Forwarded-Proto`` and ``X-Forwarded-For``, but only when the request comes from
      one of ``trusted`` addresses (anyone else could claim any address). The scheme makes
      presigned URLs ``https://`` and the console cookie ``Secure``; the address is what
      the per-client cap counts;
    * the request id and the security headers; metrics and the access line at the end;
    * 400 for a URL no name, id, search or namespace can come from (``_url_problem``);
    * 429 for an address that already has ``max_per_client`` requests in flight
      (``admission.ClientCap``);
    * 413 for a body over ``body_limit`` on every route but the uploads, which stream to
      the blob store under their own limit. JSON and form bodies are read whole before
      anything else, even the token check: without a cap any caller could make the server
      buffer gigabytes;
    * then the dialects' hot routes (``hot``) or FastAPI.
    """

    def __init__(
        self,
        app: FastAPI,
        metrics: Metrics,
        dialects: tuple[Dialect, ...],
        *,
        trusted: frozenset[str],
        max_per_client: int,
        body_limit: int,
    ) -> None:
        self.app = app
        self.state = app.state  # the app's, for whoever holds this layer as "the app"
        self.metrics = metrics
        self.trusted = trusted
        self.cap = ClientCap(max_per_client)
        self.body_limit = body_limit
        self.uploads = UploadRoutes(dialects)
        self.hot = HotRoutes(dialects)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        headers = dict(scope["headers"])
        believe_proxy(scope, headers, self.trusted)
        request_id = _request_id(scope)
        scope.setdefault("state", {})["request_id"] = request_id.decode()
        logs.request_id.set(request_id.decode())
        extra = _extra_headers(scope["path"], request_id)
        status, sent, received = 500, 0, 0
        declared = declared_body(headers)
        body_unread = scope.get("http_version") != "2" and declared != 0
        # A small body left unread by a refusal is read away after the answer, so the
        # connection can carry the client's next request; a bigger one closes it.
        drain = declared is not None and declared <= DRAIN_BYTES

        async def counting_receive() -> Message:
            nonlocal received, body_unread
            message = await receive()
            received += len(message.get("body", b""))
            body_unread = body_unread and message.get("more_body", False)
            return message

        async def observing_send(message: Message) -> None:
            nonlocal status, sent, drain
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), *extra]
                # A client too slow for the route (408) is not waited for again.
                drain = drain and status != 408
                if body_unread and not drain:
                    # Answered before the body was read (a refusal): the rest of it is
                    # still on the wire, so this connection cannot carry another request.
                    # Saying so keeps clients from reusing it and failing the next one.
                    message["headers"].append((b"connection", b"close"))
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            await send(message)

        try:
            await self._admit(scope, headers, counting_receive, observing_send)
            if body_unread and drain:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(DRAIN_SECONDS):
                        while body_unread:
                            if (await counting_receive())["type"] == "http.disconnect":
                                break
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            seconds = time.perf_counter() - started
            self.metrics.observe(route, scope["method"], status, seconds, sent, received)
            logs.log_request(scope, route, status, seconds, sent, received)

    async def _admit(
        self, scope: Scope, headers: dict[bytes, bytes], receive: Receive, send: Send
    ) -> None:
        problem = _url_problem(scope)
        if problem:
            await message_response(400, problem)(scope, receive, send)
            return
        address = self.cap.address(scope)
        if not self.cap.enter(address):
            await message_response(429, self.cap.refusal(address))(scope, receive, send)
            return
        try:
            await self._route(scope, headers, receive, send)
        finally:
            self.cap.leave(address)

    async def _route(
        self, scope: Scope, headers: dict[bytes, bytes], receive: Receive, send: Send
    ) -> None:
        if not self.uploads.match(scope["method"], scope["path"]):
            limit = self.body_limit
            too_large = f"the body is over the {limit} byte limit for JSON and form bodies"
            declared = parse_bounded_int(headers.get(b"content-length"))
            if declared is not None and declared > limit:
                await message_response(413, too_large)(scope, receive, send)
                return
            receive = _capped(receive, limit, too_large)
        found = self.hot.match(scope["method"], scope["path"])
        if found is None:
            await self.app(scope, receive, send)
        else:
            scope["app"] = self.app
            await serve_hot(found, self.app, scope, receive, send)


def _extra_headers(path: str, request_id: bytes) -> list[tuple[bytes, bytes]]:
    extra = [(b"x-request-id", request_id), *SECURITY_HEADERS]
    if path.startswith("/console"):
        # same-origin, not no-referrer: under no-referrer Chromium sends "Origin: null"
        # on the console's own form posts, and the console checks Origin against CSRF.
        extra += [(b"referrer-policy", b"same-origin"), CONSOLE_CSP]
    elif path.startswith(DOC_PATHS):
        extra.append(NO_REFERRER)
    else:
        extra += [NO_REFERRER, API_CSP]
    return extra


def _capped(receive: Receive, limit: int, too_large: str) -> Receive:
    """``receive``, refusing with 413 once more than ``limit`` body bytes arrived (a
    chunked body, or a lying Content-Length)."""
    received = 0

    async def capped_receive() -> Message:
        nonlocal received
        message = await receive()
        received += len(message.get("body", b""))
        if received > limit:
            raise HTTPException(413, too_large)
        return message

    return capped_receive


def _url_problem(scope: Scope) -> str | None:
    """Why no name, id, search or namespace can come from this URL, covering every
    parameter of every dialect at once, or None:

    * a NUL byte anywhere in the path or the query: PostgreSQL cannot even compare text
      with one;
    * percent-encoded bytes that are not UTF-8 (``%FF``, a lone surrogate ``%ED%A0%80``).
      The server would turn them silently into U+FFFD, and a name or search would then
      mean something other than what the client sent.
    """
    path, query = scope["path"], scope["query_string"]
    if "\x00" in path or b"%00" in query:
        return "the URL must not contain NUL bytes (%00)"
    raw_path = scope.get("raw_path") or path.encode("utf-8", "surrogateescape")
    if not (is_utf8_when_unquoted(raw_path) and is_utf8_when_unquoted(query)):
        return "the URL is not UTF-8 once percent-decoded"
    return None


def declared_body(headers: dict[bytes, bytes]) -> int | None:
    """The request body's length as declared: 0 for none, None when unknown (chunked)."""
    if b"transfer-encoding" in headers:
        return None
    return parse_bounded_int(headers.get(b"content-length", b"0"))


def _request_id(scope: Scope) -> bytes:
    """The caller's X-Request-Id when it is a sane token (SDKs send one), else a new one."""
    for name, value in scope["headers"]:
        if name == b"x-request-id" and _CLEAN_ID.match(value):
            return value
    return os.urandom(12).hex().encode()  # secrets.token_hex, without its two calls
