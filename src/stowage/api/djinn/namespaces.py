"""Djinn namespaces: ``/namespaces``, ``/n/{user}/{path}`` and its ``/-/`` resources, and
``/invites``. Paths name namespaces as ``a/b/c`` under their owner's username."""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from starlette.convertors import Convertor, register_url_convertor
from starlette.responses import Response

from ...core.access import Principal
from ...core.models import Namespace, ObjectQuery, ObjectState, Visibility
from ...service import Stowage
from ..common.deps import CallerDep, OptionalCaller, StowageDep
from .errors import DjinnJson, DjinnRoute
from .fields import read_fields
from .ids import existing_id
from .models import DjinnCollaborator, DjinnInvite, DjinnNamespace, DjinnObject
from .pages import LISTED, NamespaceFetch, namespace_page, object_page, page_number, paginated
from .render import (
    api_base,
    namespace_url,
    render_invites,
    render_namespaces,
    render_objects,
    rfc3339,
)

router = APIRouter(route_class=DjinnRoute, tags=["djinn namespaces"])


class NamespacePath(Convertor[str]):
    """``a/b/c``: routing on it keeps ``/n/{user}/a/b/-/invites`` from also matching
    ``/n/{user}/{path}`` with ``a/b/-/invites`` as the path."""

    # The root may also be named as an S3 bucket (lowercase, digits, '.', '-').
    regex = "[a-zA-Z0-9][a-zA-Z0-9.-]*(?:/[a-zA-Z0-9]+)*"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("namespace", NamespacePath())
NS = "/n/{username}/{path:namespace}"
TEXT = {"type": ["string", "null"]}  # null is the same as leaving the field out
NEW_NAMESPACE: dict[str, Any] = {
    "properties": {
        "name": {"type": "string", "pattern": "^[a-zA-Z0-9]{3,32}$"},
        "parent": {**TEXT, "description": "The path of one of your namespaces"},
        "description": {**TEXT, "maxLength": 255},
        "visibility": {"enum": [*Visibility, None], "description": "Roots only"},
    },
    "required": ["name"],
}
NAMESPACE_CHANGE = {
    "properties": {
        "description": NEW_NAMESPACE["properties"]["description"],
        "visibility": NEW_NAMESPACE["properties"]["visibility"],
    }
}
NEW_INVITE = {
    "properties": {"handle": {"type": "string", "description": "Username or email"}},
    "required": ["handle"],
}


def fields_body(schema: dict[str, Any]) -> dict[str, Any]:
    """An ``openapi_extra`` for a body of string fields, sent as JSON or as a form."""
    body = {"schema": {"type": "object", **schema}}
    return {
        "requestBody": {
            "required": "required" in schema,
            "content": {"application/json": body, "application/x-www-form-urlencoded": body},
        }
    }


@router.get("/namespaces", response_model=list[DjinnNamespace], responses=LISTED)
async def list_namespaces(
    request: Request,
    caller: CallerDep,
    stowage: StowageDep,
    search: str | None = None,
    page: str | None = None,
) -> DjinnJson:
    """Namespaces the caller owns or collaborates on, by path; ``search`` matches the path."""
    fetch = partial(stowage.namespaces.visible, caller, search or None)
    return await _namespace_list(request, stowage, fetch, page, caller)


async def _namespace_list(
    request: Request,
    stowage: Stowage,
    fetch: NamespaceFetch,
    page: str | None,
    caller: Principal | None,
) -> DjinnJson:
    """One page of namespaces as Djinn shows it, with its Link header."""
    items, prev, next_ = await namespace_page(fetch, page_number(page))
    rendered = await render_namespaces(stowage, api_base(request), items, caller)
    return paginated(request, rendered, prev, next_)


@router.post(
    "/namespaces",
    status_code=201,
    response_model=DjinnNamespace,
    openapi_extra=fields_body(NEW_NAMESPACE),
)
async def create_namespace(request: Request, caller: CallerDep, stowage: StowageDep) -> DjinnJson:
    """Create a namespace: ``name`` (3-32 letters and digits), optional ``parent`` (the path
    of one of your namespaces), ``description`` and ``visibility`` (children inherit it)."""
    fields = await read_fields(request, *NEW_NAMESPACE["properties"])
    created = await stowage.namespaces.create(
        caller,
        fields.get("name", ""),
        fields.get("parent") or None,
        fields.get("description", ""),
        fields.get("visibility") or None,
    )
    rendered = await render_namespaces(stowage, api_base(request), [created], caller)
    return DjinnJson(rendered[0], status_code=201)


async def visible_namespace(
    username: str, path: str, caller: OptionalCaller, stowage: StowageDep
) -> Namespace:
    """The namespace of the route's ``/n/{username}/{path}``, if the caller may see it."""
    return await stowage.namespaces.find(caller, username, path)


VisibleNamespace = Annotated[Namespace, Depends(visible_namespace)]


@router.get(NS + "/-/objects", response_model=list[DjinnObject], responses=LISTED)
async def namespace_objects(
    request: Request,
    namespace: VisibleNamespace,
    caller: OptionalCaller,
    stowage: StowageDep,
    search: str | None = None,
    page: str | None = None,
) -> DjinnJson:
    """Objects in this namespace; anyone may list a public one."""
    query = ObjectQuery(
        viewer_id=None,
        namespace_id=namespace.id,
        state=ObjectState.READ_ONLY,
        name=search or None,
    )
    fetch = partial(stowage.objects.list_in, caller, namespace)
    found, prev, next_ = await object_page(fetch, query, page_number(page))
    items = await render_objects(stowage, api_base(request), found, caller)
    return paginated(request, items, prev, next_)


@router.get(NS + "/-/namespaces", response_model=list[DjinnNamespace], responses=LISTED)
async def child_namespaces(
    request: Request,
    namespace: VisibleNamespace,
    caller: OptionalCaller,
    stowage: StowageDep,
    search: str | None = None,
    page: str | None = None,
) -> DjinnJson:
    """The namespaces right below this one, by path; anyone may list a public one's."""
    fetch = partial(stowage.namespaces.children, namespace, search or None)
    return await _namespace_list(request, stowage, fetch, page, caller)


@router.get(NS + "/-/collaborators", response_model=list[DjinnCollaborator])
async def list_collaborators(
    request: Request, username: str, path: str, caller: CallerDep, stowage: StowageDep
) -> DjinnJson:
    """Users who share the namespace's root (its owner only)."""
    namespace, people = await stowage.namespaces.collaborators(caller, username, path)
    url = namespace_url(api_base(request), namespace, caller.user)
    return DjinnJson(
        [
            {
                "id": c.user.id,
                "email": c.user.email or "",
                "username": c.user.name,
                "created_at": rfc3339(c.created_at_ms),
                "url": f"{url}/-/collaborators/{c.user.name}",
            }
            for c in people
        ]
    )


@router.delete(NS + "/-/collaborators/{collaborator}", status_code=204)
async def remove_collaborator(
    username: str, path: str, collaborator: str, caller: CallerDep, stowage: StowageDep
) -> Response:
    await stowage.namespaces.remove_collaborator(caller, username, path, collaborator)
    return Response(status_code=204)


@router.get(NS + "/-/invites", response_model=list[DjinnInvite])
async def namespace_invites(
    request: Request, username: str, path: str, caller: CallerDep, stowage: StowageDep
) -> DjinnJson:
    """Invites the owner has sent for this namespace's root."""
    invites = await stowage.namespaces.sent_invites(caller, username, path)
    return DjinnJson(await render_invites(stowage, api_base(request), invites, caller))


@router.post(
    NS + "/-/invites",
    status_code=201,
    response_model=DjinnInvite,
    openapi_extra=fields_body(NEW_INVITE),
)
async def invite(
    request: Request, username: str, path: str, caller: CallerDep, stowage: StowageDep
) -> DjinnJson:
    """Invite a user (``handle``: username or email) to collaborate on the namespace."""
    fields = await read_fields(request, *NEW_INVITE["properties"])
    created = await stowage.namespaces.invite(caller, username, path, fields.get("handle", ""))
    rendered = await render_invites(stowage, api_base(request), [created], caller)
    return DjinnJson(rendered[0], status_code=201)


@router.get(NS, response_model=DjinnNamespace)
async def get_namespace(
    request: Request, namespace: VisibleNamespace, caller: OptionalCaller, stowage: StowageDep
) -> DjinnJson:
    rendered = await render_namespaces(stowage, api_base(request), [namespace], caller)
    return DjinnJson(rendered[0])


@router.patch(NS, response_model=DjinnNamespace, openapi_extra=fields_body(NAMESPACE_CHANGE))
async def update_namespace(
    request: Request, username: str, path: str, caller: CallerDep, stowage: StowageDep
) -> DjinnJson:
    """Change ``description`` (empty keeps it), or ``visibility`` on a root (its whole tree
    follows; a child keeps the one it inherits)."""
    fields = await read_fields(request, *NAMESPACE_CHANGE["properties"])
    updated = await stowage.namespaces.update(
        caller, username, path, fields.get("description"), fields.get("visibility")
    )
    rendered = await render_namespaces(stowage, api_base(request), [updated], caller)
    return DjinnJson(rendered[0])


@router.delete(NS, status_code=204)
async def delete_namespace(
    username: str, path: str, caller: CallerDep, stowage: StowageDep
) -> Response:
    """Delete the namespace and those below it; their objects stay with their owner."""
    await stowage.namespaces.delete(caller, username, path)
    return Response(status_code=204)


@router.get("/invites", response_model=list[DjinnInvite])
async def my_invites(request: Request, caller: CallerDep, stowage: StowageDep) -> DjinnJson:
    """Invites addressed to the caller."""
    invites = await stowage.namespaces.my_invites(caller)
    return DjinnJson(await render_invites(stowage, api_base(request), invites, caller))


@router.patch("/invites/{invite_id:id}", response_model=DjinnInvite)
async def accept_invite(
    request: Request, invite_id: int, caller: CallerDep, stowage: StowageDep
) -> DjinnJson:
    """Accept: the caller becomes a collaborator on the namespace's root."""
    invite_row = await stowage.namespaces.accept(caller, existing_id(invite_id))
    rendered = await render_invites(stowage, api_base(request), [invite_row], caller)
    return DjinnJson(rendered[0])


@router.delete("/invites/{invite_id:id}", status_code=204)
async def reject_invite(invite_id: int, caller: CallerDep, stowage: StowageDep) -> Response:
    """Decline an invite (the invitee) or withdraw it (the inviter)."""
    await stowage.namespaces.reject(caller, existing_id(invite_id))
    return Response(status_code=204)
