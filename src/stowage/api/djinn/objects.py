"""The Djinn-CI-compatible Objects API: ``/objects``, ``/user`` and the API index.

Served at the root and again under ``/api``. The wire rules are in the modules beside this
one (``errors``, ``pages``, ``render``, ``fields``); the seed document and docs/api.md
describe each call.
"""

from __future__ import annotations

import mimetypes
from collections.abc import AsyncIterator
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from starlette.responses import Response

from ...core.access import Principal
from ...core.errors import FieldErrors, NotFound, Problem, TooLarge
from ...core.limits import token_caller
from ...core.models import ObjectQuery, ObjectState, StoredObject
from ...core.naming import MAX_NAME_BYTES
from ...core.objects import UNIQUE_NAME_RULE, UNIQUE_NAMES
from ...numbers import parse_bounded_int
from ...service import Stowage
from ..common.deps import CallerDep, OptionalCaller, StowageDep, declared_length, request_body
from ..common.form_upload import FORM_OVERHEAD, FormUpload
from ..common.responses import BLOB_RESPONSES, blob_response
from .errors import DjinnJson, DjinnRoute
from .fields import body_is_form
from .ids import MAX_ID, existing_id
from .models import DjinnCurrentUser, DjinnObject
from .pages import LISTED, object_page, page_number, paginated
from .render import api_base, render_objects, usage_json, user_json

router = APIRouter(route_class=DjinnRoute, tags=["djinn"])
FILE_SCHEMA = {"type": "string", "format": "binary", "minLength": 1}  # empty: "File required"
UPLOAD_REQUEST: dict[str, Any] = {
    "parameters": [
        {
            "name": "name",
            "in": "query",
            "required": True,
            "description": "Unique among the owner's objects (or the namespace's)",
            "schema": {"type": "string", "pattern": UNIQUE_NAME_RULE, "maxLength": MAX_NAME_BYTES},
        },
        {
            "name": "namespace",
            "in": "query",
            "description": "path[@owner]: one of yours, or one you collaborate on",
            "schema": {"type": "string"},
        },
    ],
    "requestBody": {
        "required": True,
        "description": "The file, raw (or a multipart form with a file part)",
        "content": {"application/octet-stream": {"schema": FILE_SCHEMA}},
    },
}
ObjectId = Annotated[str, Path(description="The numeric id, or the obj_… id (object_id)")]
READ: dict[str, Any] = {
    "response_model": DjinnObject,
    "responses": {
        **BLOB_RESPONSES,
        200: {
            "description": "JSON; the bytes when Accept is application/octet-stream or the type",
            "content": BLOB_RESPONSES[200]["content"],
        },
    },
}


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


@router.get("/user", response_model=DjinnCurrentUser)
async def current_user(caller: CallerDep, stowage: StowageDep) -> DjinnJson:
    """The token's user, with what they hold and their quota (``usage``, ``quota``)."""
    report = await stowage.quotas.usage(caller.user)
    return DjinnJson({**(user_json(caller.user) or {}), **usage_json(report)})


@router.get("/objects", response_model=list[DjinnObject], responses=LISTED)
async def list_objects(
    request: Request,
    caller: CallerDep,
    stowage: StowageDep,
    search: str | None = None,
    page: str | None = None,
) -> DjinnJson:
    """Objects the caller owns or shares through namespaces, newest first, 25 a page;
    ``search`` is a case-insensitive substring of the name."""
    query = ObjectQuery(viewer_id=caller.user.id, state=ObjectState.READ_ONLY, name=search or None)
    fetch = partial(stowage.objects.visible, caller)
    found, prev, next_ = await object_page(fetch, query, page_number(page))
    items = await render_objects(stowage, api_base(request), found, caller)
    return paginated(request, items, prev, next_)


async def _body_and_fields(
    request: Request,
) -> tuple[AsyncIterator[bytes], str | None, str | None, int | None]:
    """The file, the name/namespace fields and the least size the file can have: from a
    raw body plus query parameters, or from a multipart form with a ``file`` part (its
    fields first), streamed either way."""
    name = request.query_params.get("name")
    namespace = request.query_params.get("namespace")
    declared = declared_length(request)
    if not body_is_form(request):
        return request_body(request), name, namespace, declared
    form = FormUpload(request.headers["content-type"], request_body(request))
    await form.read_fields()
    name = form.fields.get("name", name)
    namespace = form.fields.get("namespace", namespace)
    least = declared - FORM_OVERHEAD if declared is not None else None
    return form.file(), name, namespace, least


@router.post(
    "/objects",
    status_code=201,
    response_model=DjinnObject,
    openapi_extra=UPLOAD_REQUEST,
)
async def create_object(request: Request, caller: CallerDep, stowage: StowageDep) -> DjinnJson:
    """Upload: the raw body is the file, ``?name=`` (required) and ``?namespace=path[@owner]``.
    A multipart form with a ``file`` part works too. The type is sniffed from the bytes."""
    async with stowage.uploads.hold(token_caller(caller.token_id)):
        body, name, namespace, declared = await _body_and_fields(request)
        try:
            obj = await stowage.objects.put(
                caller, name, namespace or None, body, declared, UNIQUE_NAMES
            )
        except TooLarge:  # Djinn words it as a problem with the file field
            limit = stowage.objects.limits.max_upload_bytes
            raise FieldErrors(Problem("file", "too_large", {"limit": limit})) from None
    rendered = await render_objects(stowage, api_base(request), [obj], caller)
    return DjinnJson(rendered[0], status_code=201)


def object_ref(raw: str) -> int | str:
    """Djinn's numeric id, or the ``obj_…`` id both dialects show (``object_id`` here)."""
    number = parse_bounded_int(raw, MAX_ID + 1)
    return raw if number is None else existing_id(number)


async def visible(stowage: Stowage, caller: Principal | None, object_id: str) -> StoredObject:
    obj = await stowage.objects.get(caller, object_ref(object_id))
    if obj.state is not ObjectState.READ_ONLY:  # Djinn has no half-uploaded objects
        raise NotFound("Not Found")
    return obj


def wants_bytes(request: Request, obj: StoredObject) -> bool:
    accept = request.headers.get("accept", "").strip()
    return accept == "application/octet-stream" or (bool(accept) and accept == obj.mime_type)


@router.get("/objects/{object_id}", **READ)
@router.head("/objects/{object_id}", **READ)
async def get_object(
    object_id: ObjectId, request: Request, caller: OptionalCaller, stowage: StowageDep
) -> Response:
    """The object as JSON, or its bytes when ``Accept`` is ``application/octet-stream`` or
    equals the object's ``type`` (with Range and conditional requests)."""
    obj = await visible(stowage, caller, object_id)
    if wants_bytes(request, obj):
        media = mimetypes.guess_type(obj.name)[0] or obj.mime_type or "application/octet-stream"
        return await blob_response(request, stowage.objects, obj, media)
    rendered: list[dict[str, Any]] = await render_objects(stowage, api_base(request), [obj], caller)
    return DjinnJson(rendered[0])


@router.delete("/objects/{object_id}", status_code=204)
async def delete_object(object_id: ObjectId, caller: CallerDep, stowage: StowageDep) -> Response:
    """Delete the object and its bytes (the owner, or the namespace's owner and
    collaborators)."""
    obj = await stowage.objects.modifiable(caller, object_ref(object_id), "object:delete")
    if obj.state is not ObjectState.READ_ONLY:
        raise NotFound("Not Found")
    await stowage.objects.delete(caller, obj.id)
    return Response(status_code=204)
