"""The Djinn dialect's JSON shapes as models, for the OpenAPI document only.

The routes build their JSON by hand in ``render`` (it is on the hot path, and Djinn's
shapes carry many derived URLs); these models describe that JSON so a client generator or
a schema fuzzer sees what the wire really carries. ``tests/test_fuzz.py`` checks that the
two agree.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from ...core.models import Visibility

EMAIL = Field(description='Shown to this user alone; "" to everyone else')


class DjinnUser(BaseModel):
    id: int
    email: str = EMAIL
    username: str
    created_at: str


class DjinnRetention(BaseModel):
    max_age_seconds: int | None = Field(description="Objects older than this expire")
    keep_newest: int | None = Field(
        description="Only the newest N completed objects of each namespace stay"
    )


class DjinnUsage(BaseModel):
    objects: int = Field(description="Objects held: uploaded, not deleted or expired")
    bytes: int = Field(description="Their bytes as uploaded (logical bytes)")


class DjinnQuota(BaseModel):
    max_bytes: int | None = Field(description="null: no limit")
    max_objects: int | None = Field(description="null: no limit")


class DjinnCurrentUser(DjinnUser):
    """``GET /user``: Djinn's user, with what stowage adds (clients ignore what they do
    not know)."""

    usage: DjinnUsage
    quota: DjinnQuota


class _NamespaceFields(BaseModel):
    id: int
    user_id: int
    root_id: int | None
    parent_id: int | None
    name: str
    path: str
    description: str
    visibility: Visibility
    created_at: str
    url: str
    user: DjinnUser | None
    build: None
    parent: None
    retention: DjinnRetention | None = Field(
        description="stowage's own: the root's retention rule, which children inherit"
    )


class DjinnNamespace(_NamespaceFields):
    """With a ``<resource>_url`` for each of ``render.NAMESPACE_RESOURCES``."""

    builds_url: str
    namespaces_url: str
    images_url: str
    objects_url: str
    variables_url: str
    keys_url: str
    invites_url: str
    collaborators_url: str
    webhooks_url: str


class DjinnObject(BaseModel):
    id: int
    author_id: int
    user_id: int
    namespace_id: int | None
    name: str
    type: str
    size: int | None
    md5: str | None
    sha256: str | None
    created_at: str
    url: str
    builds_url: str
    object_id: str
    author: DjinnUser | None
    user: DjinnUser | None
    namespace: DjinnNamespace | None


class DjinnInvite(BaseModel):
    id: int
    namespace_id: int
    inviter_id: int
    invitee_id: int
    created_at: str
    url: str
    namespace: DjinnNamespace | None
    inviter: DjinnUser | None
    invitee: DjinnUser | None


class DjinnCollaborator(BaseModel):
    id: int
    email: str = EMAIL
    username: str
    created_at: str
    url: str
