"""The hottest routes without the framework around them.

FastAPI's routing over every route, its dependency solving and its route wrappers cost
more CPU than the work itself for a small object (py-spy: about half of a 4 KiB GET).
Each dialect names its hot routes (``Dialect.hot``: Djinn uploads and downloads, the
presigned blob URLs, Runloop's create, retrieve and complete); ``middleware.Front``
matches a request against them ahead of FastAPI and ``serve_hot`` hands it to the very
route function, with its dependencies resolved by the same functions the routes use (the
token, the signature) and its errors answered by the dialect's own mapper. Nothing is
decided twice; only the machinery is skipped. The OpenAPI document still describes these
routes from FastAPI's declarations, and every other request goes on to FastAPI.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ...core.errors import StowageError
from ...service import Stowage
from . import errors
from .dialect import HotRoute
from .requests import StrictRequest


class ToTheApp(Exception):
    """Let FastAPI answer this request, whose body (already read) was ``body``."""

    def __init__(self, body: bytes) -> None:
        self.body = body


async def serve_hot(
    found: tuple[HotRoute, str], app: ASGIApp, scope: Scope, receive: Receive, send: Send
) -> None:
    """Answer a request a dialect's hot matcher found (``app`` takes the ones handed back)."""
    route, parameter = found
    request = StrictRequest(scope, receive)
    stowage: Stowage = request.app.state.stowage
    try:
        response = await route.handle(request, stowage, parameter)
    except StowageError as exc:
        response = route.on_error(exc)
    except ClientDisconnect:
        response = errors.disconnected()
    except HTTPException as exc:  # the body cap (middleware.Front) refused the body
        response = errors.http_response(request, exc)
    except ToTheApp as handover:
        await app(scope, _replay(handover.body, receive), send)
        return
    except Exception as exc:  # a bug: FastAPI's routes have the same last resort
        response = errors.unexpected(request, exc)
    scope["route"] = route
    await response(scope, receive, send)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives ``body`` again, then whatever the client does next."""
    given = False

    async def replayed() -> Message:
        nonlocal given
        if given:
            return await receive()
        given = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replayed
