"""The Djinn-CI-compatible Objects API: ``/objects``, ``/user`` and the API index.

Served at the root and again under ``/api``. Wire rules are in ``djinn_wire``; the seed
document and docs/api.md describe each call.
"""

from __future__ import annotations

import mimetypes
from collections.abc import AsyncIterator
from functools import partial
from typing import Any

from fastapi import APIRouter, Request
from starlette.datastructures import UploadFile
from starlette.responses import Response

from ..core.access import Principal
from ..core.errors import NotFound
from ..core.models import ObjectQuery, ObjectState, StoredObject
from ..service import Stowage
from .deps import PrincipalDep, StowageDep, request_body
from .djinn_wire import (
    NOT_FOUND,
    PAGE_SIZE,
    DjinnJson,
    DjinnRoute,
    OptionalPrincipal,
    api_base,
    object_page,
    page_number,
    paginated,
    render_objects,
    user_json,
)
from .responses import blob_response

router = APIRouter(route_class=DjinnRoute, tags=["djinn"])
MAX_ID = 2**63 - 1
FILE_CHUNK = 1024 * 1024


@router.get("/", include_in_schema=False)
async def index(request: Request) -> DjinnJson:
    base = api_base(request)
    resources = (
        "builds",
        "namespaces",
        "cron",
        "invites",
        "images",
        "objects",
        "variables",
        "keys",
    )
    return DjinnJson({f"{r}_url": f"{base}/{r}" for r in resources})


@router.get("/user", responses=NOT_FOUND)
async def current_user(principal: PrincipalDep) -> DjinnJson:
    """The token's user."""
    return DjinnJson(user_json(principal.user))


@router.get("/objects", responses=NOT_FOUND)
async def list_objects(
    request: Request,
    principal: PrincipalDep,
    stowage: StowageDep,
    search: str | None = None,
    page: str | None = None,
) -> DjinnJson:
    """Objects the caller owns or shares through namespaces, newest first, 25 a page;
    ``search`` is a case-insensitive substring of the name."""
    number = page_number(page)
    query = ObjectQuery(
        viewer_id=principal.user.id,
        state=ObjectState.READ_ONLY,
        name=search or None,
        limit=PAGE_SIZE,
        offset=(number - 1) * PAGE_SIZE,
    )
    found, last = await object_page(partial(stowage.objects.list, principal), query, number)
    items = await render_objects(stowage, api_base(request), found, principal)
    return paginated(request, items, number, last)


async def _body_and_fields(request: Request) -> tuple[AsyncIterator[bytes], str | None, str | None]:
    """The file and the name/namespace fields, from a raw body plus query parameters or
    from a multipart form with a ``file`` part."""
    name = request.query_params.get("name")
    namespace = request.query_params.get("namespace")
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        return request_body(request), name, namespace
    form = await request.form()
    upload = form.get("file")
    form_name, form_namespace = form.get("name"), form.get("namespace")
    name = form_name if isinstance(form_name, str) else name
    namespace = form_namespace if isinstance(form_namespace, str) else namespace

    async def file_chunks() -> AsyncIterator[bytes]:
        if isinstance(upload, UploadFile):
            while chunk := await upload.read(FILE_CHUNK):
                yield chunk

    return file_chunks(), name, namespace


@router.post(
    "/objects",
    status_code=201,
    responses={400: {"description": 'Validation: {"field": ["Msg", ...]}'}, **NOT_FOUND},
)
async def create_object(
    request: Request, principal: PrincipalDep, stowage: StowageDep
) -> DjinnJson:
    """Upload: the raw body is the file, ``?name=`` (required) and ``?namespace=path[@owner]``.
    A multipart form with a ``file`` part works too. The type is sniffed from the bytes."""
    async with stowage.uploads.hold(f"token:{principal.token_id}"):
        body, name, namespace = await _body_and_fields(request)
        obj = await stowage.objects.store(principal, name, namespace or None, body)
    rendered = await render_objects(stowage, api_base(request), [obj], principal)
    return DjinnJson(rendered[0], status_code=201)


async def _visible(stowage: Stowage, caller: Principal | None, object_id: int) -> StoredObject:
    if object_id > MAX_ID:
        raise NotFound("Not Found")
    obj = await stowage.objects.get(caller, object_id)
    if obj.state is not ObjectState.READ_ONLY:  # Djinn has no half-uploaded objects
        raise NotFound("Not Found")
    return obj


def _wants_bytes(request: Request, obj: StoredObject) -> bool:
    accept = request.headers.get("accept", "").strip()
    return accept == "application/octet-stream" or (bool(accept) and accept == obj.mime_type)


@router.api_route(
    "/objects/{object_id:int}",
    methods=["GET", "HEAD"],
    responses={200: {"description": "JSON, or the bytes when Accept asks for them"}, **NOT_FOUND},
)
async def get_object(
    object_id: int, request: Request, caller: OptionalPrincipal, stowage: StowageDep
) -> Response:
    """The object as JSON, or its bytes when ``Accept`` is ``application/octet-stream`` or
    equals the object's ``type`` (with Range and conditional requests)."""
    obj = await _visible(stowage, caller, object_id)
    if _wants_bytes(request, obj):
        media = mimetypes.guess_type(obj.name)[0] or obj.mime_type or "application/octet-stream"
        return await blob_response(request, stowage.objects, obj, media)
    rendered: list[dict[str, Any]] = await render_objects(stowage, api_base(request), [obj], caller)
    return DjinnJson(rendered[0])


@router.delete("/objects/{object_id:int}", status_code=204, responses=NOT_FOUND)
async def delete_object(object_id: int, principal: PrincipalDep, stowage: StowageDep) -> Response:
    """Delete the object and its bytes (the owner, or the namespace's owner and
    collaborators)."""
    if object_id > MAX_ID:
        raise NotFound("Not Found")
    obj = await stowage.objects.modifiable(principal, object_id, "object:delete")
    if obj.state is not ObjectState.READ_ONLY:
        raise NotFound("Not Found")
    await stowage.objects.delete(principal, obj.id)
    return Response(status_code=204)
