"""The hottest reads without the framework around them: a Djinn byte download
(``GET /objects/{id}`` with ``Accept`` the object's type) and a presigned blob GET.

FastAPI's routing over every route, its dependency solving and its route wrappers cost
more CPU than the read itself for a small object (py-spy: about half of a 4 KiB GET).
Here a request that plainly is one of these two reads is matched by its path, checked by
the same core calls and answered by the same ``blob_response`` as the routes in
``djinn.py`` and ``blobs.py``. Anything else, and anything that goes wrong on the way (no
such object, a bad token or signature, JSON wanted, a backend down), is handed to the app,
which answers it in its dialect as before: this module never words an error.
"""

from __future__ import annotations

import mimetypes
from dataclasses import dataclass

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from ..core.errors import StowageError
from ..core.models import StoredObject
from ..service import Stowage
from .djinn import visible, wants_bytes
from .djinn_wire import optional_principal
from .responses import MIME_TYPES, blob_response


@dataclass(frozen=True)
class RouteName:
    """What the access log and the metrics label a request with (``route.path``)."""

    path: str


DJINN_READ = RouteName("/objects/{object_id}")
BLOB_READ = RouteName("/blobs/{object_id}")


class FastReads:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in ("GET", "HEAD"):
            path: str = scope["path"]
            if path.startswith(("/objects/", "/api/objects/")):
                if await self._djinn_read(scope, receive, send, path.rsplit("/", 1)[1]):
                    return
            elif path.startswith("/blobs/") and await self._blob_read(
                scope, receive, send, path[len("/blobs/") :]
            ):
                return
        await self.app(scope, receive, send)

    async def _djinn_read(self, scope: Scope, receive: Receive, send: Send, ref: str) -> bool:
        if scope["path"].count("/") != (3 if scope["path"].startswith("/api/") else 2):
            return False
        request = Request(scope, receive)
        stowage: Stowage = request.app.state.stowage
        try:
            obj = await visible(stowage, await optional_principal(request), ref)
        except StowageError:
            return False
        if not wants_bytes(request, obj):
            return False
        media = mimetypes.guess_type(obj.name)[0] or obj.mime_type or "application/octet-stream"
        return await self._answer(request, stowage, obj, media, DJINN_READ, send)

    async def _blob_read(self, scope: Scope, receive: Receive, send: Send, ref: str) -> bool:
        if "/" in ref:
            return False
        request = Request(scope, receive)
        stowage: Stowage = request.app.state.stowage
        query = request.query_params
        try:
            stowage.presigner.verify(
                "GET", ref, query.get("expires"), query.get("signature"), stowage.clock.now_ms()
            )
            obj = await stowage.objects.downloadable(None, ref, presigned=True)
        except StowageError:
            return False
        return await self._answer(
            request, stowage, obj, MIME_TYPES[obj.content_type], BLOB_READ, send
        )

    @staticmethod
    async def _answer(
        request: Request,
        stowage: Stowage,
        obj: StoredObject,
        media: str,
        route: RouteName,
        send: Send,
    ) -> bool:
        try:
            response = await blob_response(request, stowage.objects, obj, media)
        except StowageError:  # the blob store failed before anything was sent
            return False
        request.scope["route"] = route
        await response(request.scope, request.receive, send)
        return True
