"""Djinn resources stowage does not hold: builds, images, variables, keys, cron jobs and
webhooks.

Djinn's JSON advertises their URLs (an object's ``builds_url``, a namespace's
``images_url``…, the API index) and Djinn's clients follow them, so each answers as Djinn
does when there are none: ``[]`` with the ``Link`` header of an empty list, behind the
scopes and access checks of Djinn's route, whose failures are its usual 404.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request

from ..common.deps import CallerDep, StowageDep
from .errors import DjinnJson, DjinnRoute
from .namespaces import NS, VisibleNamespace
from .objects import ObjectId, visible
from .pages import LISTED, paginated

router = APIRouter(route_class=DjinnRoute, tags=["djinn"])
NONE: dict[int | str, dict[str, Any]] = {
    200: {
        **LISTED[200],
        "description": "Always empty: stowage keeps none of these",
        "content": {"application/json": {"schema": {"type": "array", "maxItems": 0}}},
    }
}
# The API index's lists, and the scope each takes on Djinn.
TOP_LEVEL = {
    "builds": "build:read",
    "cron": "cron:read",
    "images": "image:read",
    "variables": "variable:read",
    "keys": "key:read",
}
# A namespace's lists, gated like the namespace itself (public ones need no token).
IN_NAMESPACE = ("builds", "images", "variables", "keys")


def none(request: Request) -> DjinnJson:
    """An empty Djinn list: no rows, so both links say page 0."""
    return paginated(request, [], 0, 0)


def _register(
    path: str, listing: Callable[..., Awaitable[DjinnJson]], summary: str, operation_id: str
) -> None:
    router.add_api_route(
        path,
        listing,
        methods=["GET"],
        response_model=None,
        responses=NONE,
        summary=summary,
        operation_id=operation_id,
    )


def _top_level(resource: str, scope: str) -> None:
    async def listing(request: Request, caller: CallerDep) -> DjinnJson:
        caller.require(scope)
        return none(request)

    summary = f"The caller's {resource} (needs {scope})"
    _register(f"/{resource}", listing, summary, f"list_{resource}")


def _in_namespace(resource: str) -> None:
    async def listing(request: Request, namespace: VisibleNamespace) -> DjinnJson:
        return none(request)

    _register(f"{NS}/-/{resource}", listing, f"The namespace's {resource}", f"namespace_{resource}")


for _resource, _scope in TOP_LEVEL.items():
    _top_level(_resource, _scope)
for _resource in IN_NAMESPACE:
    _in_namespace(_resource)


@router.get(NS + "/-/webhooks", response_model=None, responses=NONE)
async def namespace_webhooks(
    request: Request, username: str, path: str, caller: CallerDep, stowage: StowageDep
) -> DjinnJson:
    """The namespace's webhooks (its owner, with webhook:read)."""
    await stowage.namespaces.owned(caller, username, path, "webhook:read")
    return none(request)


@router.get("/objects/{object_id}/builds", response_model=None, responses=NONE)
async def object_builds(
    object_id: ObjectId, request: Request, caller: CallerDep, stowage: StowageDep
) -> DjinnJson:
    """Builds the object was placed in (needs build:read beside read access)."""
    caller.require("build:read")
    await visible(stowage, caller, object_id)
    return none(request)
