"""Quotas and usage: the admin's limits on what a user, or a root namespace with its
children, may hold, and what each holds now.

The limits are enforced by the metadata store, in the transaction of every write that adds
objects or bytes (``ports.QuotaStore``); here they are set, cleared and reported. Usage
counts logical bytes: what was uploaded, as every dialect shows an object's size.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .clock import Clock
from .errors import Invalid, NotFound
from .models import Namespace, Quota, Usage, User
from .namespaces import admin_ref, find_admin_ref
from .ports import MetadataStore

# Decimal and binary units, as people write them ("10GiB", "500MB", "1.5 TB", "4096").
UNITS = {
    "": 1,
    "b": 1,
    **{f"{p}b": 1000**i for i, p in enumerate("kmgtp", 1)},
    **{f"{p}ib": 1024**i for i, p in enumerate("kmgtp", 1)},
}
SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")
MAX_LIMIT = 2**63 - 1  # a BIGINT


def parse_size(text: str) -> int:
    """Bytes from ``10GiB``, ``500MB``, ``1.5TB`` or plain ``1048576``."""
    found = SIZE.match(text)
    unit = UNITS.get(found.group(2).lower()) if found else None
    if found is None or unit is None:
        raise Invalid(f"{text!r} is not a size: write bytes, or a number and a unit like 10GiB")
    number = found.group(1)
    size = int(float(number) * unit) if "." in number else int(number) * unit
    return _bounded(size, "a size")


def _bounded(value: int, what: str) -> int:
    if not 0 <= value <= MAX_LIMIT:
        raise Invalid(f"{what} must be between 0 and {MAX_LIMIT}")
    return value


@dataclass(frozen=True, slots=True)
class UsageReport:
    """What one user (``namespace`` None) or one root namespace holds, and its quota."""

    user: User
    namespace: Namespace | None
    usage: Usage
    quota: Quota | None

    @property
    def scope(self) -> str:
        """``alice``, or ``builds@alice`` for a namespace (as ``quotas set`` takes it)."""
        if self.namespace is None:
            return self.user.name
        return f"{self.namespace.path}@{self.user.name}"


class QuotaService:
    def __init__(self, meta: MetadataStore, clock: Clock) -> None:
        self._meta = meta
        self._clock = clock

    async def set(
        self,
        *,
        user: str | None = None,
        namespace: str | None = None,
        max_bytes: int | None = None,
        max_objects: int | None = None,
    ) -> UsageReport:
        """Set the limits given (the others stay) of a user or a root namespace
        (``PATH@OWNER``); the new quota holds for every write from now on."""
        if max_bytes is None and max_objects is None:
            raise Invalid("give --max-bytes, --max-objects or both")
        if max_objects is not None:
            _bounded(max_objects, "--max-objects")
        owner, root = await self._scope(user, namespace)
        await self._meta.set_quota(
            user_id=owner.id if root is None else None,
            namespace_id=root.id if root else None,
            max_bytes=max_bytes,
            max_objects=max_objects,
        )
        return await self._report(owner, root)

    async def clear(self, *, user: str | None = None, namespace: str | None = None) -> None:
        owner, root = await self._scope(user, namespace)
        if root is not None:
            cleared = await self._meta.clear_quota(namespace_id=root.id)
        else:
            cleared = await self._meta.clear_quota(user_id=owner.id)
        if not cleared:
            raise NotFound(f"{user or namespace} has no quota")

    async def quotas(self) -> list[UsageReport]:
        """Every quota, with what its user or namespace holds now."""
        found = await self._meta.list_quotas()
        owners = {q.user_id for q in found if q.user_id is not None}
        roots = await self._meta.get_namespaces({q.namespace_id for q in found if q.namespace_id})
        users = await self._meta.get_users(owners | {n.owner_id for n in roots.values()})
        reports = []
        for quota in found:
            root = roots.get(quota.namespace_id) if quota.namespace_id else None
            owner = users[root.owner_id if root else quota.user_id or 0]
            reports.append(await self._report(owner, root, quota))
        return reports

    async def everyone(self) -> list[UsageReport]:
        """What every user who stores anything or has a quota holds, and every namespace
        with a quota, by name."""
        held = await self._meta.usages(now_ms=self._clock.now_ms())
        limited = await self.quotas()
        covered = {r.user.id for r in limited if r.namespace is None}
        users = await self._meta.get_users(set(held) - covered)
        reports = [UsageReport(u, None, held[u.id], None) for u in users.values()]
        return sorted([*reports, *limited], key=lambda r: (r.user.name, r.scope))

    async def usage(self, user: User) -> UsageReport:
        """What the user owns, against their quota (the caller's own, in every dialect)."""
        return await self._report(user, None)

    async def usage_of(self, name: str) -> UsageReport:
        owner, _ = await self._scope(name, None)
        return await self._report(owner, None)

    async def _report(
        self, owner: User, root: Namespace | None, quota: Quota | None = None
    ) -> UsageReport:
        now = self._clock.now_ms()
        if root is None:
            usage = await self._meta.usage(user_id=owner.id, now_ms=now)
            quota = quota or await self._meta.quota_of(user_id=owner.id)
        else:
            usage = await self._meta.usage(namespace_id=root.id, now_ms=now)
            quota = quota or await self._meta.quota_of(namespace_id=root.id)
        return UsageReport(owner, root, usage, quota)

    async def _scope(
        self, user: str | None, namespace: str | None
    ) -> tuple[User, Namespace | None]:
        """The user, or the owner and the root namespace ``PATH@OWNER`` names."""
        if (user is None) == (namespace is None):
            raise Invalid("name a user (--user NAME) or a root namespace (--namespace PATH@OWNER)")
        if user is not None:
            found = await self._meta.get_user_by_name(user)
            if found is None:
                raise NotFound(f"no user named {user!r}")
            return found, None
        assert namespace is not None
        ref = admin_ref(namespace)
        if len(ref.segments) > 1:
            raise Invalid(f"{namespace!r}: quotas are set on root namespaces (they cover children)")
        root, owner = await find_admin_ref(self._meta, ref)
        return owner, root
