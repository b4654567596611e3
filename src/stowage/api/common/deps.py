"""Request-scoped dependencies: the process-wide Stowage and the authenticated caller."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from starlette.requests import ClientDisconnect

from ...core.access import Principal
from ...core.errors import BodyTimeout
from ...numbers import parse_bounded_int
from ...service import Stowage


async def get_stowage(request: Request) -> Stowage:
    # async on purpose: FastAPI runs sync dependencies in a thread pool, a hop per request
    return request.app.state.stowage


def bearer_token(request: Request) -> str | None:
    return _bearer(request.headers.get("authorization"))


def _bearer(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


async def get_principal(request: Request) -> Principal:
    stowage: Stowage = request.app.state.stowage
    return await stowage.access.authenticate(bearer_token(request))


async def optional_principal(request: Request) -> Principal | None:
    """The caller, or None when no token was sent. A bad token is an error, not anonymity."""
    header = request.headers.get("authorization")
    if not header:
        return None
    stowage: Stowage = request.app.state.stowage
    return await stowage.access.authenticate(_bearer(header))


StowageDep = Annotated[Stowage, Depends(get_stowage)]
CallerDep = Annotated[Principal, Depends(get_principal)]
OptionalCaller = Annotated[Principal | None, Depends(optional_principal)]


def declared_length(request: Request) -> int | None:
    """The body size the client announced, when it did (not for chunked bodies)."""
    return parse_bounded_int(request.headers.get("content-length"))


async def request_body(request: Request) -> AsyncIterator[bytes]:
    """The request body as it arrives, abandoned when the client stalls or trickles: an
    upload must not hold a slot, a temporary file and a connection forever.

    Two limits: ``body_timeout_seconds`` of silence, and an average of ``upload_min_rate``
    bytes/s once the upload has run for ``body_timeout_seconds`` (one byte a minute would
    pass the first forever). Only the time spent waiting for the client counts: while the
    blob store is slow to take a batch, the client cannot send."""
    settings = request.app.state.stowage.settings
    idle, rate = settings.body_timeout_seconds, settings.upload_min_rate
    clock = asyncio.get_running_loop().time
    receive = request.receive  # not request.stream(): it waits once more past the last chunk
    received, waited = 0, 0.0
    while True:
        allowed = idle + received / rate - waited if rate else math.inf
        started = clock()
        try:
            async with asyncio.timeout(min(idle, allowed)):
                message = await receive()
        except TimeoutError:
            if allowed < idle:
                raise BodyTimeout(
                    f"the upload averaged under {rate} bytes/s; it was abandoned"
                ) from None
            raise BodyTimeout(f"no body data for {idle:g} s; the upload was abandoned") from None
        finally:
            waited += clock() - started
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunk = message.get("body", b"")
        received += len(chunk)
        if chunk:
            yield chunk
        if not message.get("more_body", False):
            return
