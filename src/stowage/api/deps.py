"""Request-scoped dependencies: the process-wide Stowage and the authenticated caller."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request

from ..core.access import Principal
from ..core.errors import BodyTimeout
from ..numbers import parse_bounded_int
from ..service import Stowage


async def get_stowage(request: Request) -> Stowage:
    # async on purpose: FastAPI runs sync dependencies in a thread pool, a hop per request
    return request.app.state.stowage


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


async def get_principal(request: Request) -> Principal:
    stowage: Stowage = request.app.state.stowage
    return await stowage.access.authenticate(bearer_token(request))


def public_base(request: Request) -> str:
    """The base of absolute URLs handed to clients (presigned upload and download URLs)."""
    configured = request.app.state.stowage.settings.public_url
    return (configured or str(request.base_url)).rstrip("/")


StowageDep = Annotated[Stowage, Depends(get_stowage)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]


def declared_length(request: Request) -> int | None:
    """The body size the client announced, when it did (not for chunked bodies)."""
    return parse_bounded_int(request.headers.get("content-length"))


async def request_body(request: Request) -> AsyncIterator[bytes]:
    """The request body as it arrives, abandoned when the client stalls: a stalled upload
    must not hold a temporary file and a connection forever."""
    idle = request.app.state.stowage.settings.body_timeout_seconds
    chunks = request.stream().__aiter__()
    while True:
        try:
            async with asyncio.timeout(idle):
                chunk = await chunks.__anext__()
        except StopAsyncIteration:
            return
        except TimeoutError:
            raise BodyTimeout(f"no body data for {idle:g} s; the upload was abandoned") from None
        yield chunk
