"""The Djinn dialect's wire format: errors, JSON shapes, pagination.

Djinn answers every auth or permission failure with 404 ``{"message":"Not Found"}`` (so a
caller cannot probe for what exists), validation with 400 ``{"field": ["Msg", ...]}``, and
lists with 25 items a page and a ``Link`` header that always carries prev and next.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import replace
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlencode

import orjson
from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
from starlette.convertors import Convertor, register_url_convertor
from starlette.responses import JSONResponse, Response

from ..core.access import Principal
from ..core.errors import (
    BodyTimeout,
    FieldErrors,
    InsufficientStorage,
    Invalid,
    NotFound,
    StowageError,
    TooBusy,
    TooLarge,
    Unavailable,
)
from ..core.models import Invite, Namespace, ObjectQuery, Page, StoredObject, User
from ..numbers import MAX_INT64, parse_bounded_int
from ..numbers import page_number as wire_page_number
from ..service import Stowage
from .deps import bearer_token, public_base
from .errors import describe_validation_error
from .requests import StrictRoute

PAGE_SIZE = 25
MAX_ID = MAX_INT64
LISTED: dict[int | str, dict[str, Any]] = {
    200: {
        "description": f"Up to {PAGE_SIZE} items",
        "headers": {
            "Link": {
                "description": 'Always both: <url?page=N>; rel="prev", <url?page=M>; rel="next"',
                "schema": {"type": "string"},
            }
        },
    }
}


class DjinnJson(JSONResponse):
    media_type = "application/json; charset=utf-8"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content) + b"\n"


def not_found() -> DjinnJson:
    return DjinnJson({"message": "Not Found"}, status_code=404)


def djinn_error(exc: StowageError) -> DjinnJson:
    """A domain error as Djinn answers it: field errors as ``{field: [...]}``, bad input as
    400, the limits with their statuses, and auth, scope, access and absence alike as 404."""
    if isinstance(exc, FieldErrors):
        return DjinnJson(exc.fields, status_code=400)
    if isinstance(exc, Invalid | TooLarge):
        return DjinnJson({"message": exc.message}, status_code=400)
    if isinstance(exc, BodyTimeout):
        return DjinnJson({"message": exc.message}, status_code=408)
    if isinstance(exc, InsufficientStorage):
        return DjinnJson({"message": exc.message}, status_code=507)
    if isinstance(exc, TooBusy | Unavailable):
        retry = {"Retry-After": str(exc.retry_after_s)}
        status = 429 if isinstance(exc, TooBusy) else 503
        return DjinnJson({"message": exc.message}, status_code=status, headers=retry)
    return not_found()


class DjinnRoute(StrictRoute):
    """Maps domain errors to Djinn's statuses for every route of the dialect."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def run(request: Request) -> Response:
            try:
                return await handler(request)
            except StowageError as exc:
                return djinn_error(exc)
            except RequestValidationError as exc:
                message = "; ".join(describe_validation_error(e) for e in exc.errors())
                return DjinnJson({"message": message}, status_code=400)

        return run


def existing_id(value: int) -> int:
    """Ids are 64-bit; a longer number names nothing, and must not reach the database."""
    if value > MAX_ID:
        raise NotFound("Not Found")
    return value


class IdConvertor(Convertor[int]):
    """``{name:id}``: Starlette's ``int`` with the bounded parser. ``int()`` fails on a
    number of over 4,300 digits, which the route's ``[0-9]+`` accepts; here any number
    past ``MAX_ID`` is ``MAX_ID + 1``, which ``existing_id`` turns into Djinn's 404."""

    regex = "[0-9]+"

    def convert(self, value: str) -> int:
        return parse_bounded_int(value, MAX_ID + 1) or 0

    def to_string(self, value: int) -> str:
        return str(value)


register_url_convertor("id", IdConvertor())


async def optional_principal(request: Request) -> Principal | None:
    """The caller, or None when no token was sent. A bad token is an error, not anonymity."""
    if not request.headers.get("authorization"):
        return None
    stowage: Stowage = request.app.state.stowage
    return await stowage.access.authenticate(bearer_token(request))


OptionalPrincipal = Annotated[Principal | None, Depends(optional_principal)]


def api_base(request: Request) -> str:
    """Absolute base of ``*_url`` fields: the API lives at / and under /api."""
    path = request.scope["path"]
    prefix = "/api" if path == "/api" or path.startswith("/api/") else ""
    return public_base(request) + prefix


def rfc3339(ms: int) -> str:
    return (
        datetime.fromtimestamp(ms / 1000, UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


def page_number(raw: str | None) -> int:
    """Djinn's rule: anything but a positive integer means page 1 (and a number too big
    for any row offset is still past the end: an empty page)."""
    return wire_page_number(raw, PAGE_SIZE)


PageRows = tuple[list[Any], bool]  # one page's rows, and whether more rows follow


async def djinn_page(
    page: int, fetch: Callable[[int], Awaitable[PageRows]], count: Callable[[], Awaitable[int]]
) -> tuple[list[Any], int, int]:
    """The rows to show for ``?page=`` and the pages its ``Link`` points to (prev, next),
    as Djinn's ``database.Paginate`` computes them: a page above the row count shows the
    last page, a page past the last one but not above the count is empty, prev is
    ``max(page-1, 1)`` and next ``min(page+1, last)``, and with no rows both are 0.

    Counting every matching row is what made a page slow on a big table, so the count is
    taken only for an empty page past the first; otherwise one row more than a page tells
    whether a next page exists.
    """
    items, more = await fetch(page)
    if items:
        return items, max(page - 1, 1), page + 1 if more else page
    total = await count() if page > 1 else 0
    if total == 0:
        return [], 0, 0
    last = math.ceil(total / PAGE_SIZE)
    if page > total:
        items, _ = await fetch(last)
        return items, max(last - 1, 1), last
    return [], page - 1, last


async def object_page(
    fetch: Callable[[ObjectQuery], Awaitable[Page]], query: ObjectQuery, page: int
) -> tuple[list[StoredObject], int, int]:
    """``djinn_page`` for a list of objects: rows, prev, next."""

    async def rows(number: int) -> PageRows:
        offset = (number - 1) * PAGE_SIZE
        found = await fetch(
            replace(query, limit=PAGE_SIZE, offset=offset, include_total_count=False)
        )
        return found.objects, found.has_more

    async def count() -> int:
        counted = await fetch(replace(query, limit=1, offset=0, include_total_count=True))
        return counted.total_count or 0

    return await djinn_page(page, rows, count)


NamespaceFetch = Callable[[int, int], Awaitable[tuple[list[Namespace], int]]]


async def namespace_page(fetch: NamespaceFetch, page: int) -> tuple[list[Namespace], int, int]:
    """``djinn_page`` for a list of namespaces, from ``fetch(offset, limit)`` that counts
    as it goes (a caller has few namespaces): rows, prev, next."""

    async def rows(number: int) -> PageRows:
        offset = (number - 1) * PAGE_SIZE
        items, total = await fetch(offset, PAGE_SIZE)
        return items, offset + len(items) < total

    async def count() -> int:
        return (await fetch(0, 0))[1]

    return await djinn_page(page, rows, count)


def paginated(request: Request, items: list[Any], prev: int, next_: int) -> DjinnJson:
    url = public_base(request) + request.url.path
    params = dict(request.query_params)

    def link(target: int) -> str:
        query = urlencode(sorted({**params, "page": str(target)}.items()))
        return f"<{url}?{query}>"

    header = f'{link(prev)}; rel="prev", {link(next_)}; rel="next"'
    return DjinnJson(items, headers={"Link": header})


def user_json(user: User | None) -> dict[str, Any] | None:
    """Djinn's user JSON. ``email`` is ``""`` unless the caller is this user: the users
    arrive through ``NamespaceService.users_by_ids``, which blanks it (``as_seen_by``), and
    Djinn clients decode it as a string, so it stays present."""
    if user is None:
        return None
    return {
        "id": user.id,
        "email": user.email or "",
        "username": user.name,
        "created_at": rfc3339(user.created_at_ms),
    }


NAMESPACE_RESOURCES = (
    "builds",
    "namespaces",
    "images",
    "objects",
    "variables",
    "keys",
    "invites",
    "collaborators",
    "webhooks",
)


def namespace_url(base: str, namespace: Namespace, owner: User) -> str:
    return f"{base}/n/{owner.name}/{namespace.path}"


def namespace_json(base: str, namespace: Namespace | None, users: dict[int, User]) -> Any:
    if namespace is None:
        return None
    owner = users.get(namespace.owner_id)
    url = namespace_url(base, namespace, owner) if owner else ""
    view: dict[str, Any] = {
        "id": namespace.id,
        "user_id": namespace.owner_id,
        "root_id": namespace.root_id,
        "parent_id": namespace.parent_id,
        "name": namespace.name,
        "path": namespace.path,
        "description": namespace.description,
        "visibility": namespace.visibility.value,
        "created_at": rfc3339(namespace.created_at_ms),
        "url": url,
    }
    for resource in NAMESPACE_RESOURCES:
        view[f"{resource}_url"] = f"{url}/-/{resource}"
    view.update({"user": user_json(owner), "build": None, "parent": None})
    return view


def object_json(
    base: str,
    obj: StoredObject,
    users: dict[int, User],
    namespaces: dict[int, Namespace],
) -> dict[str, Any]:
    namespace = namespaces.get(obj.namespace_id) if obj.namespace_id else None
    return {
        "id": obj.id,
        "author_id": obj.author_id,
        "user_id": obj.owner_id,
        "namespace_id": obj.namespace_id,
        "name": obj.name,
        "type": obj.mime_type,
        "size": obj.size,
        "md5": obj.md5,
        "sha256": obj.sha256,
        "created_at": rfc3339(obj.create_time_ms),
        "url": f"{base}/objects/{obj.id}",
        "builds_url": f"{base}/objects/{obj.id}/builds",
        "object_id": obj.public_id,  # the id the Runloop dialect shows
        "author": user_json(users.get(obj.author_id)),
        "user": user_json(users.get(obj.owner_id)),
        "namespace": namespace_json(base, namespace, users),
    }


async def render_objects(
    stowage: Stowage, base: str, objects: list[StoredObject], caller: Principal | None
) -> list[dict[str, Any]]:
    """Object JSON with its author, owner and namespace loaded in two queries a page, or
    fewer: the caller's own user is already at hand, and usually the only one needed."""
    namespaces = await stowage.namespaces.by_ids(
        {o.namespace_id for o in objects if o.namespace_id}
    )
    user_ids = {o.author_id for o in objects} | {o.owner_id for o in objects}
    user_ids |= {n.owner_id for n in namespaces.values()}
    known = {caller.user.id: caller.user} if caller else {}
    users = known | await stowage.namespaces.users_by_ids(user_ids - known.keys(), caller)
    return [object_json(base, o, users, namespaces) for o in objects]


async def render_namespaces(
    stowage: Stowage, base: str, items: list[Namespace], caller: Principal | None
) -> list[dict[str, Any]]:
    users = await stowage.namespaces.users_by_ids({n.owner_id for n in items}, caller)
    return [namespace_json(base, n, users) for n in items]


async def render_invites(
    stowage: Stowage, base: str, invites: list[Invite], caller: Principal
) -> list[dict[str, Any]]:
    namespaces = await stowage.namespaces.by_ids({i.namespace_id for i in invites})
    user_ids = {i.inviter_id for i in invites} | {i.invitee_id for i in invites}
    user_ids |= {n.owner_id for n in namespaces.values()}
    users = await stowage.namespaces.users_by_ids(user_ids, caller)
    return [
        {
            "id": i.id,
            "namespace_id": i.namespace_id,
            "inviter_id": i.inviter_id,
            "invitee_id": i.invitee_id,
            "created_at": rfc3339(i.created_at_ms),
            "url": f"{base}/invites/{i.id}",
            "namespace": namespace_json(base, namespaces.get(i.namespace_id), users),
            "inviter": user_json(users.get(i.inviter_id)),
            "invitee": user_json(users.get(i.invitee_id)),
        }
        for i in invites
    ]


def body_is_form(request: Request) -> bool:
    """A multipart form (Djinn's uploads take one as well as a raw body)."""
    return request.headers.get("content-type", "").startswith("multipart/form-data")


async def read_fields(request: Request, *names: str) -> dict[str, str]:
    """The named fields of a JSON or form body, matched case-blind as Djinn does; other
    fields are ignored, whatever their type."""
    content_type = request.headers.get("content-type", "")
    multipart = body_is_form(request)
    raw = b"" if multipart else await request.body()
    # curl -d sends JSON labelled as a form; take it for what it is (Djinn lost such bodies).
    if multipart or (
        content_type.startswith("application/x-www-form-urlencoded")
        and not raw.lstrip().startswith(b"{")
    ):
        form = await request.form()
        data: Any = {k: v for k, v in form.items() if isinstance(v, str)}
    else:
        if not raw.strip():
            return {}
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise Invalid("request body is not valid JSON") from None
        if not isinstance(data, dict):
            raise Invalid("request body must be a JSON object")
    fields = {}
    for key, value in data.items():
        if not isinstance(key, str) or key.lower() not in names:
            continue
        if value is not None and not isinstance(value, str):
            raise FieldErrors({key.lower(): [f"{key.capitalize()} must be a string"]})
        if value is not None and "\x00" in value:
            raise FieldErrors({key.lower(): [f"{key.capitalize()} must not contain NUL bytes"]})
        if value is not None:
            fields[key.lower()] = value
    return fields
