"""The Runloop-compatible Objects API under ``/v1/objects``.

Wire details follow the official SDKs (see docs/api.md): success is always 200 with JSON,
errors are ``{"message": ...}``, delete is ``POST …/delete``, and the create response carries
an absolute presigned ``upload_url``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from pydantic.config import JsonDict

from ...core.errors import Invalid
from ...core.models import ContentType, ObjectQuery, ObjectState, Page, StoredObject
from ...core.naming import MAX_METADATA_BYTES, MAX_METADATA_KEY_CHARS, MAX_NAME_BYTES, MAX_TTL_MS
from ...core.objects import MAX_PAGE
from ...core.presign import MAX_URL_LIFETIME_S
from ..common.deps import CallerDep, StowageDep
from ..common.links import download_link, presigned_url
from ..common.requests import StrictRoute
from ..common.responses import JsonResponse

router = APIRouter(prefix="/v1/objects", tags=["runloop"], route_class=StrictRoute)

NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such object visible to this token"}
}
KEY_REUSED: dict[int | str, dict[str, Any]] = {
    409: {"description": "The idempotency key was used for a different request"}
}


def idempotency_key(
    standard: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            description="Sent again with the same request, the first answer is given again "
            "and nothing is done twice (kept 24 h, per token)",
        ),
    ] = None,
    sdk: Annotated[
        str | None,
        Header(
            alias="x-request-id",
            description="The key the Runloop SDKs send on every POST and keep across their "
            "retries (also where they put idempotency_key=); used when Idempotency-Key is absent",
        ),
    ] = None,
) -> str | None:
    """The request's idempotency key: Idempotency-Key, else x-request-id, else none."""
    return standard or sdk or None


IdempotencyKey = Annotated[str | None, Depends(idempotency_key)]


# Rules the core enforces (core.naming), stated for the document only, so bad input keeps
# the core's own messages. JSON Schema counts characters; the name limit is in bytes.
NO_CONTROL = "^[^\\x00-\\x1f\\x7f]+$"
NAME_RULES: JsonDict = {"minLength": 1, "maxLength": MAX_NAME_BYTES, "pattern": NO_CONTROL}
METADATA_RULES: JsonDict = {
    "propertyNames": {"minLength": 1, "maxLength": MAX_METADATA_KEY_CHARS, "pattern": NO_CONTROL},
    "additionalProperties": {"type": "string", "pattern": "^[^\\x00]*$"},
}


class CreateObjectBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        description=f"Up to {MAX_NAME_BYTES} bytes of UTF-8, no control characters; names "
        "may repeat",
        json_schema_extra=NAME_RULES,
    )
    content_type: ContentType
    metadata: dict[str, str] | None = Field(
        default=None,
        description=f"At most {MAX_METADATA_BYTES} bytes of keys and values in all",
        json_schema_extra=METADATA_RULES,
    )
    ttl_ms: int | None = Field(
        default=None,
        strict=True,  # not true/false, "5" or 5.0
        description="Lifetime in ms from creation",
        json_schema_extra={"minimum": 1, "maximum": MAX_TTL_MS},
    )


Limit = Annotated[
    int,
    Query(
        description=f"Page size, 1 to {MAX_PAGE}",
        json_schema_extra={"minimum": 1, "maximum": MAX_PAGE},
    ),
]


class ObjectView(BaseModel):
    id: str
    name: str
    content_type: ContentType
    state: ObjectState
    create_time_ms: int
    delete_after_time_ms: int | None = None
    metadata: dict[str, str] | None = None
    size_bytes: int | None = None
    upload_url: str | None = None


class ObjectListView(BaseModel):
    objects: list[ObjectView]
    has_more: bool
    total_count: int | None = None


class ObjectDownloadURLView(BaseModel):
    download_url: str


class MetadataKeysView(BaseModel):
    keys: list[str]


class MetadataValuesView(BaseModel):
    key: str
    values: list[str]


def object_view(obj: StoredObject, upload_url: str | None = None) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": obj.public_id,
        "name": obj.name,
        "content_type": obj.content_type.value,
        "state": obj.state.value,
        "create_time_ms": obj.create_time_ms,
        "delete_after_time_ms": obj.delete_after_time_ms,
        "metadata": obj.metadata or {},
        "size_bytes": obj.size if obj.state is not ObjectState.UPLOADING else None,
    }
    if upload_url is not None:
        view["upload_url"] = upload_url
    return view


def page_view(page: Page) -> JsonResponse:
    return JsonResponse(
        {
            "objects": [object_view(o) for o in page.objects],
            "has_more": page.has_more,
            "total_count": page.total_count,
        }
    )


@router.post("", response_model=ObjectView, responses=KEY_REUSED)
async def create_object(
    body: CreateObjectBody,
    request: Request,
    caller: CallerDep,
    stowage: StowageDep,
    key: IdempotencyKey,
) -> JsonResponse:
    """Create an object in UPLOADING state and return a presigned ``upload_url`` to PUT to.
    Repeated under its idempotency key, the answer is the same object as it is now, with a
    fresh ``upload_url`` while it is still UPLOADING."""
    obj = await stowage.objects.create(
        caller, body.name, body.content_type, body.metadata, body.ttl_ms, key
    )
    if obj.state is not ObjectState.UPLOADING:
        return JsonResponse(object_view(obj))
    settings = stowage.settings
    ttl = min(settings.upload_url_ttl_seconds, settings.upload_ttl_seconds)  # not past the deadline
    url = stowage.objects.direct_upload_url(obj, ttl) or presigned_url(
        request, stowage, "PUT", obj.public_id, ttl
    )
    return JsonResponse(object_view(obj, upload_url=url))


def _query(
    viewer_id: int | None,
    public_only: bool,
    limit: int,
    starting_after: str | None,
    name: str | None,
    content_type: ContentType | None,
    state: ObjectState | None,
    search: str | None,
    include_total_count: bool,
) -> ObjectQuery:
    return ObjectQuery(
        viewer_id=viewer_id,
        public_only=public_only,
        limit=limit,
        starting_after=starting_after or None,
        name=name or None,
        content_type=content_type,
        state=state,
        search=search or None,
        include_total_count=include_total_count,
    )


@router.get("", response_model=ObjectListView)
async def list_objects(
    caller: CallerDep,
    stowage: StowageDep,
    limit: Limit = 20,
    starting_after: str | None = Query(None, description="Return objects after this id"),
    name: str | None = Query(None, description="Case-insensitive substring of the name"),
    content_type: ContentType | None = None,
    state: ObjectState | None = None,
    search: str | None = Query(None, description="An object id, or a substring of the name"),
    include_total_count: bool = True,
) -> JsonResponse:
    """List the caller's objects (their own, and those in namespaces they collaborate on),
    newest first, with cursor pagination."""
    query = _query(
        caller.user.id,
        False,
        limit,
        starting_after,
        name,
        content_type,
        state,
        search,
        include_total_count,
    )
    return page_view(await stowage.objects.visible(caller, query))


@router.get("/list_public", response_model=ObjectListView)
async def list_public_objects(
    caller: CallerDep,
    stowage: StowageDep,
    limit: Limit = 20,
    starting_after: str | None = None,
    name: str | None = None,
    content_type: ContentType | None = None,
    state: ObjectState | None = None,
    search: str | None = None,
    include_total_count: bool = True,
) -> JsonResponse:
    """List objects anyone may read: those in public namespaces."""
    query = _query(
        None, True, limit, starting_after, name, content_type, state, search, include_total_count
    )
    return page_view(await stowage.objects.visible(caller, query))


@router.get("/metadata/keys", response_model=MetadataKeysView)
async def metadata_keys(caller: CallerDep, stowage: StowageDep) -> JsonResponse:
    """Every metadata key used on the caller's live objects."""
    return JsonResponse({"keys": await stowage.objects.metadata_keys(caller)})


@router.get("/metadata/keys/{key}/values", response_model=MetadataValuesView)
async def metadata_values(key: str, caller: CallerDep, stowage: StowageDep) -> JsonResponse:
    """Every value the given metadata key has on the caller's live objects."""
    values = await stowage.objects.metadata_values(caller, key)
    return JsonResponse({"key": key, "values": values})


@router.get("/{object_id}", response_model=ObjectView, responses=NOT_FOUND)
async def retrieve_object(object_id: str, caller: CallerDep, stowage: StowageDep) -> JsonResponse:
    return JsonResponse(object_view(await stowage.objects.get(caller, object_id)))


@router.post(
    "/{object_id}/complete",
    response_model=ObjectView,
    responses={
        **NOT_FOUND,
        409: {
            "description": "The object is not UPLOADING, nothing was uploaded yet, or the "
            "idempotency key was used for a different request"
        },
    },
)
async def complete_object(
    object_id: str, caller: CallerDep, stowage: StowageDep, key: IdempotencyKey
) -> JsonResponse:
    """Seal the uploaded bytes: the object becomes READ_ONLY with ``size_bytes`` set.
    Repeated under the idempotency key that completed it, the answer is the object again."""
    done = await stowage.objects.complete(caller, object_id, key)
    return JsonResponse(object_view(done))


@router.post("/{object_id}/delete", response_model=ObjectView, responses=NOT_FOUND)
async def delete_object(object_id: str, caller: CallerDep, stowage: StowageDep) -> JsonResponse:
    """Delete the bytes at once; the record stays, in state DELETED, for a while."""
    return JsonResponse(object_view(await stowage.objects.delete(caller, object_id)))


@router.get(
    "/{object_id}/download",
    response_model=ObjectDownloadURLView,
    responses=NOT_FOUND,
)
async def download_url(
    object_id: str,
    request: Request,
    caller: CallerDep,
    stowage: StowageDep,
    duration_seconds: int | None = Query(
        None,
        description=f"URL lifetime, 1 to {MAX_URL_LIFETIME_S} seconds (default 3600)",
        json_schema_extra={"minimum": 1, "maximum": MAX_URL_LIFETIME_S},
    ),
) -> JsonResponse:
    """A presigned URL that downloads the object without a token until it expires."""
    duration = 3600 if duration_seconds is None else duration_seconds
    if not 1 <= duration <= MAX_URL_LIFETIME_S:
        raise Invalid(f"duration_seconds must be between 1 and {MAX_URL_LIFETIME_S}")
    obj = await stowage.objects.downloadable(caller, object_id)
    return JsonResponse({"download_url": download_link(request, stowage, obj, duration)})
