"""Djinn's JSON shapes of users, namespaces, objects and invites, with the rows they
name loaded a page at a time."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import Request

from ...core.access import Principal
from ...core.models import Invite, Namespace, Retention, StoredObject, User
from ...core.quotas import UsageReport
from ...service import Stowage
from ..common.links import public_base


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


def usage_json(report: UsageReport) -> dict[str, Any]:
    """What a user holds and may hold, as ``GET /user`` adds it to Djinn's user."""
    quota = report.quota
    return {
        "usage": {"objects": report.usage.objects, "bytes": report.usage.bytes},
        "quota": {
            "max_bytes": quota.max_bytes if quota else None,
            "max_objects": quota.max_objects if quota else None,
        },
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
    view.update(
        {
            "user": user_json(owner),
            "build": None,
            "parent": None,
            "retention": retention_json(namespace.retention),
        }
    )
    return view


def retention_json(rule: Retention | None) -> dict[str, int | None] | None:
    """stowage's own field (Djinn has none; its clients ignore fields they do not know):
    the root's rule, which a child inherits, or null."""
    if rule is None:
        return None
    max_age = rule.max_age_ms // 1000 if rule.max_age_ms is not None else None
    return {"max_age_seconds": max_age, "keep_newest": rule.keep_newest}


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
