"""Namespaces: folders of objects with a visibility, collaborators and invites.

``path[@owner]`` names a namespace when uploading: ``builds``, ``builds/nightly``,
``shared@alice``. Missing namespaces are created (private) only in the caller's own
account; someone else's namespace must exist and the caller must collaborate on its root.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from .access import Principal, as_seen_by, may_modify, may_read
from .clock import Clock
from .errors import (
    AlreadyExists,
    Ambiguous,
    FieldErrors,
    Forbidden,
    Invalid,
    NamespaceGone,
    NotEmpty,
    NotFound,
    Problem,
)
from .models import Collaborator, Invite, Namespace, User, Visibility
from .ports import MetadataStore

MAX_DEPTH = 20
SHARED_NAME_LOOKUP = 50  # roots of one name considered when the caller names no owner
MAX_DESCRIPTION = 255
VISIBILITIES = tuple(v.value for v in Visibility)
SEGMENT = re.compile(r"^[a-zA-Z0-9]{1,32}$")
NAME = re.compile(r"^[a-zA-Z0-9]+$")


@dataclass(frozen=True, slots=True)
class NamespaceRef:
    """A parsed ``path[@owner]``; ``owner`` None means the caller's own account."""

    raw: str
    segments: list[str]
    owner: str | None

    @property
    def path(self) -> str:
        return "/".join(self.segments)


@dataclass(frozen=True, slots=True)
class Reach:
    """What a caller may do in a namespace: read what it holds, write to it (add, replace
    and delete objects), and own it (delete it, change who may read it)."""

    read: bool
    write: bool
    own: bool


@dataclass(frozen=True, slots=True)
class UploadTarget:
    """Where an upload goes: an existing namespace, or one to create in the caller's account."""

    owner_id: int
    namespace: Namespace | None
    create_segments: list[str] | None = None


# A root namespace may also be named as S3 names buckets (DNS-style; AWS's rules, with the
# dash-dot pairs of its older DNS rule refused too), so that every valid bucket name is one.
DNS_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
IP_ADDRESS = re.compile(r"^\d+\.\d+\.\d+\.\d+$")
RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")


def is_dns_name(name: str) -> bool:
    return (
        DNS_NAME.match(name) is not None
        and not IP_ADDRESS.match(name)
        and not any(pair in name for pair in ("..", ".-", "-."))
        and not name.startswith(RESERVED_PREFIXES)
        and not name.endswith(RESERVED_SUFFIXES)
    )


def parse_ref(raw: str) -> NamespaceRef:
    if "\x00" in raw:  # no path or user name holds one, and PostgreSQL cannot compare it
        raise FieldErrors(Problem("namespace", "nul"))
    path, _, owner = raw.partition("@")
    if not path:
        raise FieldErrors(Problem("namespace", "bad_path", {"ref": raw}))
    segments = path.split("/")
    root_named_as_bucket = is_dns_name(segments[0])
    if not all(SEGMENT.match(s) for s in segments[root_named_as_bucket:]):
        raise FieldErrors(Problem("namespace", "bad_segment", {"ref": raw}))
    if len(segments) > MAX_DEPTH:
        raise FieldErrors(Problem("namespace", "too_deep", {"ref": raw, "max": MAX_DEPTH}))
    return NamespaceRef(raw=raw, segments=segments, owner=owner or None)


def admin_ref(raw: str) -> NamespaceRef:
    """A namespace as an admin command names it, ``PATH@OWNER``: an admin acts for no
    one, so the owner must be said."""
    ref = parse_ref(raw)
    if ref.owner is None:
        raise Invalid(f"{raw!r}: say whose namespace it is, as PATH@OWNER")
    return ref


async def find_admin_ref(meta: MetadataStore, ref: NamespaceRef) -> tuple[Namespace, User]:
    """The namespace ``admin_ref`` named, and its owner."""
    assert ref.owner is not None
    owner = await meta.get_user_by_name(ref.owner)
    namespace = await meta.get_namespace_by_path(owner.id, ref.path) if owner else None
    if owner is None or namespace is None:
        raise NotFound(f"no namespace {ref.raw!r}")
    return namespace, owner


def _description_and_visibility(description: str, visibility: str | None) -> list[Problem]:
    problems = []
    if len(description) > MAX_DESCRIPTION:
        problems.append(Problem("description", "too_long", {"max": MAX_DESCRIPTION}))
    if visibility and visibility not in VISIBILITIES:
        problems.append(Problem("visibility", "choice", {"choices": ", ".join(VISIBILITIES)}))
    return problems


class NamespaceService:
    def __init__(self, meta: MetadataStore, clock: Clock) -> None:
        self._meta = meta
        self._clock = clock

    # --- resolution and access -------------------------------------------------------

    async def upload_target(self, caller: Principal, raw: str) -> UploadTarget:
        """Resolve ``path[@owner]`` for an upload without creating anything yet."""
        ref = parse_ref(raw)
        me = caller.user
        if ref.owner is None or ref.owner == me.name:
            existing = await self._meta.get_namespace_by_path(me.id, ref.path)
            if existing is None:
                await self._refuse_new_bucket_root(me.id, ref)
                return UploadTarget(owner_id=me.id, namespace=None, create_segments=ref.segments)
            return UploadTarget(owner_id=me.id, namespace=existing)
        # An unknown owner gets the same answer as a namespace the caller may not use, so
        # that uploads cannot probe which users exist.
        owner = await self._meta.get_user_by_name(ref.owner)
        root = await self._meta.get_namespace_by_path(owner.id, ref.segments[0]) if owner else None
        access = await self._meta.namespace_access(root.id, me.id) if root else None
        if owner is None or access is None or not access[1]:
            raise FieldErrors(Problem("namespace", "denied"))
        target = await self._meta.get_namespace_by_path(owner.id, ref.path)
        if target is None:
            raise FieldErrors(Problem("namespace", "missing", {"ref": raw}))
        return UploadTarget(owner_id=owner.id, namespace=target)

    async def _refuse_new_bucket_root(self, owner_id: int, ref: NamespaceRef) -> None:
        """A root named as a bucket can be written to, but an upload makes new namespaces
        by the stricter rule of namespace names only."""
        root = ref.segments[0]
        if not SEGMENT.match(root) and not await self._meta.get_namespace_by_path(owner_id, root):
            raise FieldErrors(Problem("namespace", "bad_segment", {"ref": ref.raw}))

    async def materialise(self, target: UploadTarget) -> Namespace | None:
        if target.create_segments is None:
            return target.namespace
        return await self._meta.ensure_namespace_path(
            target.owner_id, target.create_segments, self._clock.now_ms()
        )

    async def find(
        self, caller: Principal | None, username: str, path: str, read_scope: bool = True
    ) -> Namespace:
        """The namespace at ``/n/username/path`` if the caller may see it, else NotFound.

        Reading a non-public namespace takes ``namespace:read`` unless ``read_scope`` is off
        (owner operations check their own scope instead). The scope is checked only once the
        user may read the namespace: a token without it must not learn, from a 403 where
        others get 404, that a private namespace (or its owner) exists."""
        owner = await self._meta.get_user_by_name(username)
        namespace = await self._meta.get_namespace_by_path(owner.id, path) if owner else None
        if namespace is None:
            raise NotFound("Not Found")
        viewer = caller.user.id if caller else None
        access = await self._meta.namespace_access(namespace.id, viewer)
        if access is None:  # deleted since it was found
            raise NotFound("Not Found")
        root, collaborating = access
        if not may_read(viewer, namespace.owner_id, root, collaborating):
            raise NotFound("Not Found")
        if root.visibility is not Visibility.PUBLIC and read_scope:
            if caller is None:  # may_read lets the anonymous see public ones only
                raise NotFound("Not Found")
            caller.require("namespace:read")
        return namespace

    async def owned(self, caller: Principal, username: str, path: str, scope: str) -> Namespace:
        """The namespace, for an operation only its owner may perform."""
        caller.require(scope)
        namespace = await self.find(caller, username, path, read_scope=False)
        if namespace.owner_id != caller.user.id:
            raise NotFound("Not Found")
        return namespace

    # --- roots named as DNS names (S3 buckets) ----------------------------------------

    async def roots(self, caller: Principal) -> list[Namespace]:
        """The caller's own root namespaces."""
        caller.require("namespace:read")
        return await self._meta.list_roots(caller.user.id)

    async def root(
        self, caller: Principal | None, name: str, owner: str | None = None
    ) -> Namespace:
        """The root namespace called ``name``: ``owner``'s when one is named, else the
        caller's own, else another user's. Roots made by ``create_root`` hold their name
        alone, so that one is found by name; of roots that share a name (each user names
        their own through Djinn), the one the caller may read is, if only one is
        (Ambiguous otherwise). NotFound when there is none. Finding it gives no access to
        what it holds: ``reach`` says what the caller may do there."""
        if "/" in name:
            raise NotFound("Not Found")
        if owner is not None:
            user = await self._meta.get_user_by_name(owner)
            found = await self._meta.get_namespace_by_path(user.id, name) if user else None
        else:
            found = await self._own_or_only(caller, name)
        if found is None:
            raise NotFound("Not Found")
        return found

    async def _own_or_only(self, caller: Principal | None, name: str) -> Namespace | None:
        if caller is not None:
            own = await self._meta.get_namespace_by_path(caller.user.id, name)
            if own is not None:
                return own
        named = await self._meta.roots_named(name, SHARED_NAME_LOOKUP)
        if len(named) <= 1:
            return named[0] if named else None
        readable = [n for n in named if (await self.reach(caller, n)).read]
        if len(readable) == 1:
            return readable[0]
        raise Ambiguous(f"several users have a namespace called {name}; name its owner")

    async def reach(self, caller: Principal | None, namespace: Namespace) -> Reach:
        """What the caller may do in ``namespace`` as a whole, by Djinn's rules."""
        viewer = caller.user.id if caller is not None else None
        if viewer == namespace.owner_id:
            return Reach(read=True, write=True, own=True)
        access = await self._meta.namespace_access(namespace.id, viewer)
        if access is None:  # deleted since it was found
            raise NotFound("Not Found")
        root, collaborating = access
        return Reach(
            read=may_read(viewer, namespace.owner_id, root, collaborating),
            write=may_modify(viewer, namespace.owner_id, root, collaborating),
            own=False,
        )

    async def create_root(
        self, caller: Principal, name: str, visibility: Visibility = Visibility.PRIVATE
    ) -> Namespace:
        """A root namespace with a DNS-style name that no other user's root has
        (TakenByAnother); AlreadyExists if the caller has one of that name."""
        caller.require("namespace:write")
        if not is_dns_name(name):
            raise FieldErrors(Problem("name", "dns_name"))
        created = await self._meta.create_namespace(
            caller.user.id, None, name, "", visibility, self._clock.now_ms(), alone=True
        )
        if created is None:
            raise AlreadyExists(f"you already have a namespace called {name}")
        return created

    async def set_visibility(
        self, caller: Principal, namespace: Namespace, visibility: Visibility
    ) -> Namespace:
        """Change a root's visibility (the whole tree follows); its owner's to change."""
        caller.require("namespace:write")
        if namespace.owner_id != caller.user.id:
            raise Forbidden("only the owner may change who can read a namespace")
        return await self._meta.update_namespace(namespace, None, visibility)

    async def delete_root(self, caller: Principal, namespace: Namespace) -> None:
        """Remove an empty root namespace of the caller's (NotEmpty otherwise)."""
        caller.require("namespace:delete")
        if namespace.owner_id != caller.user.id:
            raise Forbidden("only the owner may delete a namespace")
        if await self._meta.holds_anything(namespace, self._clock.now_ms()):
            raise NotEmpty(f"{namespace.name} still holds objects or namespaces")
        await self._meta.delete_namespace(namespace)

    async def writable(self, caller: Principal, namespace: Namespace) -> UploadTarget:
        """Where the caller may put objects in ``namespace``: its owner's, or a
        collaborator's on its root."""
        access = await self._meta.namespace_access(namespace.id, caller.user.id)
        if access is None:  # deleted meanwhile
            raise NotFound("Not Found")
        root, collaborating = access
        if not may_modify(caller.user.id, namespace.owner_id, root, collaborating):
            raise NotFound("Not Found")
        return UploadTarget(owner_id=namespace.owner_id, namespace=namespace)

    async def by_ids(self, ids: set[int]) -> dict[int, Namespace]:
        return await self._meta.get_namespaces(ids)

    async def users_by_ids(self, ids: set[int], viewer: Principal | None) -> dict[int, User]:
        """The users with these ids, as ``viewer`` may see them (``access.as_seen_by``)."""
        found = await self._meta.get_users(ids)
        return {i: as_seen_by(u, viewer) for i, u in found.items()}

    # --- namespaces ------------------------------------------------------------------

    async def visible(
        self, caller: Principal, search: str | None, offset: int, limit: int
    ) -> tuple[list[Namespace], int]:
        caller.require("namespace:read")
        return await self._meta.list_namespaces(caller.user.id, search, offset, limit)

    async def children(
        self, namespace: Namespace, search: str | None, offset: int, limit: int
    ) -> tuple[list[Namespace], int]:
        """The namespaces right below one the caller may see (``find`` checked that)."""
        return await self._meta.list_children(namespace, search, offset, limit)

    async def create(
        self,
        caller: Principal,
        name: str,
        parent_path: str | None,
        description: str,
        visibility: str | None,
    ) -> Namespace:
        caller.require("namespace:write")
        problems = [
            problem
            for failed, problem in [
                (not name, Problem("name", "required")),
                (not 3 <= len(name) <= 32, Problem("name", "length", {"min": 3, "max": 32})),
                (not NAME.match(name), Problem("name", "charset")),
            ]
            if failed
        ]  # every rule runs: an empty name breaks all three
        problems += _description_and_visibility(description, visibility)
        parent = None
        if parent_path:
            parent = await self._meta.get_namespace_by_path(caller.user.id, parent_path)
            if parent is None:
                problems.append(Problem("parent", "missing"))
            elif parent.level + 1 >= MAX_DEPTH:
                problems.append(Problem("parent", "too_deep", {"max": MAX_DEPTH}))
        if problems:
            raise FieldErrors(*problems)
        chosen = Visibility(visibility) if visibility else Visibility.PRIVATE
        try:
            created = await self._meta.create_namespace(
                caller.user.id, parent, name, description, chosen, self._clock.now_ms()
            )
        except NamespaceGone:  # the parent was deleted meanwhile
            raise FieldErrors(Problem("parent", "missing")) from None
        if created is None:
            raise FieldErrors(Problem("name", "taken"))
        return created

    async def update(
        self,
        caller: Principal,
        username: str,
        path: str,
        description: str | None,
        visibility: str | None,
    ) -> Namespace:
        """The update as clients send it (both fields, always): an empty
        ``description`` keeps the old text, and a child keeps the visibility it inherits
        whatever was asked (only a root's visibility changes, for its whole tree)."""
        namespace = await self.owned(caller, username, path, "namespace:write")
        problems = _description_and_visibility(description or "", visibility)
        if problems:
            raise FieldErrors(*problems)
        chosen = Visibility(visibility) if visibility and namespace.parent_id is None else None
        return await self._meta.update_namespace(namespace, description or None, chosen)

    async def delete(self, caller: Principal, username: str, path: str) -> None:
        namespace = await self.owned(caller, username, path, "namespace:delete")
        await self._meta.delete_namespace(namespace)

    # --- collaborators and invites -----------------------------------------------------

    async def collaborators(
        self, caller: Principal, username: str, path: str
    ) -> tuple[Namespace, list[Collaborator]]:
        namespace = await self.owned(caller, username, path, "namespace:read")
        people = await self._meta.list_collaborators(namespace.root_id)
        return namespace, [replace(c, user=as_seen_by(c.user, caller)) for c in people]

    async def remove_collaborator(
        self, caller: Principal, username: str, path: str, collaborator: str
    ) -> None:
        """A name that is not a collaborator is bad input (Invalid), not an absent resource."""
        namespace = await self.owned(caller, username, path, "namespace:delete")
        user = await self._meta.get_user_by_name(collaborator)
        if user is None:
            raise Invalid("No such user")
        if not await self._meta.remove_collaborator(namespace.root_id, user.id):
            raise Invalid("No such collaborator")

    async def invite(self, caller: Principal, username: str, path: str, handle: str) -> Invite:
        """Invite by username or email: the ``handle`` field."""
        namespace = await self.owned(caller, username, path, "invite:write")
        if not handle:
            raise FieldErrors(Problem("handle", "required"))
        invitee = await self._meta.get_user_by_handle(handle)
        if invitee is None:
            raise Invalid("No such user")
        if invitee.id == caller.user.id:
            raise FieldErrors(Problem("handle", "self"))
        _, collaborating = await self._meta.namespace_access(namespace.root_id, invitee.id) or (
            None,
            False,
        )
        if collaborating:
            raise FieldErrors(Problem("handle", "member"))
        created = await self._meta.create_invite(
            namespace.root_id, caller.user.id, invitee.id, self._clock.now_ms()
        )
        if created is None:
            raise FieldErrors(Problem("handle", "invited"))
        return created

    async def sent_invites(self, caller: Principal, username: str, path: str) -> list[Invite]:
        namespace = await self.owned(caller, username, path, "invite:read")
        return await self._meta.list_invites(namespace_id=namespace.root_id)

    async def my_invites(self, caller: Principal) -> list[Invite]:
        caller.require("invite:read")
        return await self._meta.list_invites(invitee_id=caller.user.id)

    async def _invite_for(self, caller: Principal, invite_id: int, inviter_may: bool) -> Invite:
        caller.require("invite:write")
        invite = await self._meta.get_invite(invite_id)
        if invite is None or not (
            invite.invitee_id == caller.user.id
            or (inviter_may and invite.inviter_id == caller.user.id)
        ):
            raise NotFound("Not Found")
        return invite

    async def accept(self, caller: Principal, invite_id: int) -> Invite:
        invite = await self._invite_for(caller, invite_id, inviter_may=False)
        await self._meta.accept_invite(invite, self._clock.now_ms())
        return invite

    async def reject(self, caller: Principal, invite_id: int) -> None:
        """The invitee declines, or the inviter withdraws the invite."""
        invite = await self._invite_for(caller, invite_id, inviter_may=True)
        await self._meta.delete_invite(invite.id)
