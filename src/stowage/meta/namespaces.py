"""Namespaces, their collaborators and invites."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, bindparam, delete, exists, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from ..core.errors import TakenByAnother
from ..core.models import Collaborator, Invite, Namespace, ObjectState, Visibility
from . import records
from .constraints import raise_if_namespace_gone, violated
from .database import Database
from .listing import like_fragment, not_expired
from .prepared import Prepared
from .retention import retention_columns
from .schema import namespace_collaborators, namespace_invites, namespaces, objects, users


class SqlNamespaces(Database):
    """``core.ports.NamespaceStore``: namespace trees, their collaborators and invites."""

    @staticmethod
    def _insert_namespace(
        conn: Connection,
        owner_id: int,
        parent: Namespace | None,
        name: str,
        description: str,
        visibility: Visibility,
        now_ms: int,
    ) -> Namespace:
        row = conn.execute(
            insert(namespaces)
            .values(
                owner_id=owner_id,
                root_id=parent.root_id if parent else None,
                parent_id=parent.id if parent else None,
                name=name,
                path=f"{parent.path}/{name}" if parent else name,
                level=parent.level + 1 if parent else 0,
                description=description,
                visibility=(parent.visibility if parent else visibility).value,
                created_at_ms=now_ms,
                **retention_columns(parent.retention if parent else None),
            )
            .returning(*namespaces.c)
        ).one()
        if parent is None:
            row = conn.execute(
                update(namespaces)
                .where(namespaces.c.id == row.id)
                .values(root_id=row.id)
                .returning(*namespaces.c)
            ).one()
        return records.namespace(row)

    async def create_namespace(
        self,
        owner_id: int,
        parent: Namespace | None,
        name: str,
        description: str,
        visibility: Visibility,
        now_ms: int,
        *,
        alone: bool = False,
    ) -> Namespace | None:
        """The new namespace, or None when the owner already has one at that path; raise
        NamespaceGone when the parent was deleted meanwhile. An ``alone`` root must be the
        only root of its name across all owners (TakenByAnother otherwise), checked in the
        transaction that inserts it, so that two owners racing for a name cannot both win."""

        def work(conn: Connection) -> Namespace | None:
            if alone:
                if not self._sqlite:  # SQLite's writers are serialised already
                    conn.execute(select(func.pg_advisory_xact_lock(func.hashtext(name))))
                holders = conn.execute(
                    select(namespaces.c.owner_id).where(
                        namespaces.c.name == name, namespaces.c.parent_id.is_(None)
                    )
                ).scalars()
                owners = set(holders)
                if owner_id in owners:
                    return None
                if owners:
                    raise TakenByAnother(f"the name {name} is taken")
            return self._insert_namespace(
                conn, owner_id, parent, name, description, visibility, now_ms
            )

        try:
            return await self._write(work)
        except IntegrityError as exc:
            constraint = violated(exc)
            if constraint == "uq_namespaces_owner_path":
                return None
            parent_id = parent.id if parent else None
            await raise_if_namespace_gone(self, constraint, "namespaces_parent_id_fkey", parent_id)
            raise

    async def ensure_namespace_path(
        self, owner_id: int, segments: list[str], now_ms: int
    ) -> Namespace:
        """The owner's namespace at ``a/b/c``, creating only the missing segments (private,
        or the parent's visibility)."""

        def work(conn: Connection) -> Namespace:
            parent: Namespace | None = None
            for depth, name in enumerate(segments):
                path = "/".join(segments[: depth + 1])
                row = conn.execute(
                    select(namespaces).where(
                        namespaces.c.owner_id == owner_id, namespaces.c.path == path
                    )
                ).first()
                parent = (
                    records.namespace(row)
                    if row
                    else self._insert_namespace(
                        conn, owner_id, parent, name, "", Visibility.PRIVATE, now_ms
                    )
                )
            assert parent is not None
            return parent

        try:
            return await self._write(work)
        except IntegrityError:  # another replica created a segment first: it exists now
            return await self._write(work)

    _BY_PATH = Prepared(
        select(namespaces).where(
            namespaces.c.owner_id == bindparam("owner_id"), namespaces.c.path == bindparam("path")
        )
    )

    async def get_namespace_by_path(self, owner_id: int, path: str) -> Namespace | None:
        params = {"owner_id": owner_id, "path": path}
        return await self._first(self._BY_PATH, records.namespace, params)

    async def get_namespaces(self, ids: set[int]) -> dict[int, Namespace]:
        if not ids:
            return {}
        stmt = select(namespaces).where(namespaces.c.id.in_(sorted(ids)))
        return await self._read(
            lambda conn: {r.id: records.namespace(r) for r in conn.execute(stmt)}
        )

    async def list_namespaces(
        self, viewer_id: int, search: str | None, offset: int, limit: int
    ) -> tuple[list[Namespace], int]:
        shared_roots = select(namespace_collaborators.c.namespace_id).where(
            namespace_collaborators.c.user_id == viewer_id
        )
        conds: list[Any] = [
            or_(namespaces.c.owner_id == viewer_id, namespaces.c.root_id.in_(shared_roots))
        ]
        return await self._namespace_page(conds, search, offset, limit)

    _ROOTS_NAMED = Prepared(
        select(namespaces)
        .where(namespaces.c.name == bindparam("name"), namespaces.c.parent_id.is_(None))
        .order_by(namespaces.c.id)
        .limit(bindparam("limit"))
    )

    async def roots_named(self, name: str, limit: int) -> list[Namespace]:
        """Root namespaces of any owner called ``name``, oldest first."""
        params = {"name": name, "limit": limit}
        return await self._all(self._ROOTS_NAMED, records.namespace, params)

    async def list_roots(self, owner_id: int) -> list[Namespace]:
        stmt = (
            select(namespaces)
            .where(namespaces.c.owner_id == owner_id, namespaces.c.parent_id.is_(None))
            .order_by(namespaces.c.name)
        )
        return await self._read(lambda conn: [records.namespace(r) for r in conn.execute(stmt)])

    async def holds_anything(self, namespace: Namespace, now_ms: int) -> bool:
        """Whether the namespace has a child, or an object that is neither a tombstone nor
        expired (the reaper has yet to remove those, but they are gone already)."""
        child = select(namespaces.c.id).where(namespaces.c.parent_id == namespace.id).limit(1)
        held = (
            select(objects.c.id)
            .where(
                objects.c.namespace_id == namespace.id,
                objects.c.state != ObjectState.DELETED.value,
                not_expired(now_ms),
            )
            .limit(1)
        )

        def work(conn: Connection) -> bool:
            return any(conn.execute(q).first() is not None for q in (child, held))

        return await self._read(work)

    async def list_children(
        self, parent: Namespace, search: str | None, offset: int, limit: int
    ) -> tuple[list[Namespace], int]:
        # root_id first: the tree's index finds the children without a scan
        conds = [namespaces.c.root_id == parent.root_id, namespaces.c.parent_id == parent.id]
        return await self._namespace_page(conds, search, offset, limit)

    async def _namespace_page(
        self, conds: list[Any], search: str | None, offset: int, limit: int
    ) -> tuple[list[Namespace], int]:
        """One page of the namespaces matching ``conds`` (and ``search`` in the path), by
        path, with the number of all that match."""
        if search:
            conds = [
                *conds,
                func.lower(namespaces.c.path).like(like_fragment(search), escape="\\"),
            ]
        stmt = (
            select(namespaces)
            .where(*conds)
            .order_by(namespaces.c.path, namespaces.c.id)
            .offset(offset)
            .limit(limit)
        )
        count = select(func.count()).select_from(namespaces).where(*conds)

        def work(conn: Connection) -> tuple[list[Namespace], int]:
            return [records.namespace(r) for r in conn.execute(stmt)], conn.execute(
                count
            ).scalar_one()

        return await self._read(work)

    async def update_namespace(
        self, namespace: Namespace, description: str | None, visibility: Visibility | None
    ) -> Namespace:
        def work(conn: Connection) -> Namespace:
            if description is not None:
                conn.execute(
                    update(namespaces)
                    .where(namespaces.c.id == namespace.id)
                    .values(description=description)
                )
            if visibility is not None:  # set on the root: the whole tree follows
                conn.execute(
                    update(namespaces)
                    .where(namespaces.c.root_id == namespace.root_id)
                    .values(visibility=visibility.value)
                )
            row = conn.execute(select(namespaces).where(namespaces.c.id == namespace.id)).one()
            return records.namespace(row)

        return await self._write(work)

    async def delete_namespace(self, namespace: Namespace) -> None:
        """Delete the namespace and everything below it. Objects stay with their owner,
        outside any namespace, and their names stop counting as taken."""
        prefix = namespace.path + "/"
        subtree = select(namespaces.c.id).where(
            namespaces.c.owner_id == namespace.owner_id,
            or_(
                namespaces.c.id == namespace.id,
                # exact, case-sensitive prefix (SQLite's LIKE ignores case)
                func.substr(namespaces.c.path, 1, len(prefix)) == prefix,
            ),
        )

        def work(conn: Connection) -> None:
            ids = list(conn.execute(subtree).scalars())
            conn.execute(
                update(objects)
                .where(objects.c.namespace_id.in_(ids))
                .values(namespace_id=None, unique_name=False)
            )
            conn.execute(delete(namespace_invites).where(namespace_invites.c.namespace_id.in_(ids)))
            conn.execute(
                delete(namespace_collaborators).where(
                    namespace_collaborators.c.namespace_id.in_(ids)
                )
            )
            conn.execute(delete(namespaces).where(namespaces.c.id.in_(ids)))

        await self._write(work)

    # One statement, run prepared: an S3 request on a bucket asks it once or twice.
    _ROOT_ACCESS = Prepared(
        select(
            namespaces,
            exists()
            .where(
                namespace_collaborators.c.namespace_id == namespaces.c.id,
                namespace_collaborators.c.user_id == bindparam("user_id"),
            )
            .label("collaborating"),
        ).where(
            namespaces.c.id
            == select(namespaces.c.root_id)
            .where(namespaces.c.id == bindparam("namespace_id"))
            .scalar_subquery()
        )
    )

    async def namespace_access(
        self, namespace_id: int, user_id: int | None
    ) -> tuple[Namespace, bool] | None:
        """The root of the namespace, and whether ``user_id`` collaborates on it."""
        params = {"namespace_id": namespace_id, "user_id": user_id}
        return await self._first(
            self._ROOT_ACCESS,
            lambda row: (records.namespace(row), bool(row.collaborating)),
            params,
        )

    async def list_collaborators(self, root_id: int) -> list[Collaborator]:
        stmt = (
            select(users, namespace_collaborators.c.created_at_ms.label("joined_at_ms"))
            .join(namespace_collaborators, namespace_collaborators.c.user_id == users.c.id)
            .where(namespace_collaborators.c.namespace_id == root_id)
            .order_by(users.c.name)
        )
        return await self._read(
            lambda conn: [
                Collaborator(
                    user=records.user(r), namespace_id=root_id, created_at_ms=r.joined_at_ms
                )
                for r in conn.execute(stmt)
            ]
        )

    async def remove_collaborator(self, root_id: int, user_id: int) -> bool:
        stmt = delete(namespace_collaborators).where(
            namespace_collaborators.c.namespace_id == root_id,
            namespace_collaborators.c.user_id == user_id,
        )
        return await self._write(lambda conn: conn.execute(stmt).rowcount == 1)

    # --- invites -------------------------------------------------------------------------

    async def create_invite(
        self, root_id: int, inviter_id: int, invitee_id: int, now_ms: int
    ) -> Invite | None:
        """The new invite, or None if that user is already invited to that namespace; raise
        NamespaceGone when the namespace was deleted meanwhile."""
        stmt = (
            insert(namespace_invites)
            .values(
                namespace_id=root_id,
                inviter_id=inviter_id,
                invitee_id=invitee_id,
                created_at_ms=now_ms,
            )
            .returning(*namespace_invites.c)
        )
        try:
            return await self._write(lambda conn: records.invite(conn.execute(stmt).one()))
        except IntegrityError as exc:
            constraint = violated(exc)
            if constraint == "uq_namespace_invites_invitee":
                return None
            await raise_if_namespace_gone(
                self, constraint, "namespace_invites_namespace_id_fkey", root_id
            )
            raise

    async def get_invite(self, invite_id: int) -> Invite | None:
        return await self._first(
            select(namespace_invites).where(namespace_invites.c.id == invite_id), records.invite
        )

    async def list_invites(
        self, *, invitee_id: int | None = None, namespace_id: int | None = None
    ) -> list[Invite]:
        stmt = select(namespace_invites).order_by(namespace_invites.c.id)
        if invitee_id is not None:
            stmt = stmt.where(namespace_invites.c.invitee_id == invitee_id)
        if namespace_id is not None:
            stmt = stmt.where(namespace_invites.c.namespace_id == namespace_id)
        return await self._read(lambda conn: [records.invite(r) for r in conn.execute(stmt)])

    async def accept_invite(self, invite: Invite, now_ms: int) -> None:
        def work(conn: Connection) -> None:
            already = conn.execute(
                select(namespace_collaborators.c.user_id).where(
                    namespace_collaborators.c.namespace_id == invite.namespace_id,
                    namespace_collaborators.c.user_id == invite.invitee_id,
                )
            ).first()
            if already is None:
                conn.execute(
                    insert(namespace_collaborators).values(
                        namespace_id=invite.namespace_id,
                        user_id=invite.invitee_id,
                        created_at_ms=now_ms,
                    )
                )
            conn.execute(delete(namespace_invites).where(namespace_invites.c.id == invite.id))

        try:
            await self._write(work)
        except IntegrityError as exc:
            await raise_if_namespace_gone(
                self,
                violated(exc),
                "namespace_collaborators_namespace_id_fkey",
                invite.namespace_id,
            )
            raise

    async def delete_invite(self, invite_id: int) -> bool:
        stmt = delete(namespace_invites).where(namespace_invites.c.id == invite_id)
        return await self._write(lambda conn: conn.execute(stmt).rowcount == 1)
