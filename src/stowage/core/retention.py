"""Retention rules: what an operator sets on a root namespace (``stowage retention``) so
that a CI fleet's artefacts do not pile up. ``max_age``: objects older than this expire.
``keep_newest N``: of each namespace's completed objects, only the newest N stay. Children
inherit the root's rule (a copy, as of its visibility); an object's own TTL still ends it
sooner when it is earlier.

The reaper enforces both (``objects/removal.Removal.enforce_retention``). An object that
reaches its max_age vanishes exactly then, because the reaper sets its expiry ahead of
time (up to ``lookahead`` before), and the read filter does the rest, as for a TTL. A
keep_newest surplus goes at the sweep after the upload that made it one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import Invalid, NotFound
from .models import Namespace, Retention, User
from .namespaces import admin_ref, find_admin_ref
from .ports import MetadataStore

DURATION = re.compile(r"^([0-9]{1,9})([smhd])$")
UNIT_MS = {"s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


def parse_duration(text: str) -> int:
    """``30d``, ``12h``, ``90m`` or ``45s`` in milliseconds (more than zero)."""
    match = DURATION.match(text.strip())
    if match is None or int(match.group(1)) == 0:
        raise Invalid(f"{text!r} is not a duration: say 30d, 12h, 90m or 45s")
    return int(match.group(1)) * UNIT_MS[match.group(2)]


def format_duration(ms: int) -> str:
    """The largest unit that says ``ms`` exactly (``parse_duration``'s inverse)."""
    for unit in ("d", "h", "m"):
        if ms % UNIT_MS[unit] == 0:
            return f"{ms // UNIT_MS[unit]}{unit}"
    return f"{ms / 1000:g}s"


@dataclass(frozen=True, slots=True)
class RuledRoot:
    namespace: Namespace
    owner: User


class RetentionService:
    """The operator's side: set, clear and list rules. The admin CLI is its one caller,
    so it takes no principal (whoever reaches the database administers the store)."""

    def __init__(self, meta: MetadataStore) -> None:
        self._meta = meta

    async def set(self, ref: str, max_age_ms: int | None, keep_newest: int | None) -> RuledRoot:
        """Replace the rule of the root ``PATH@OWNER``: a limit not given is lifted."""
        if max_age_ms is None and keep_newest is None:
            raise Invalid("give --max-age, --keep-newest or both (or clear the rule)")
        if keep_newest is not None and keep_newest < 1:
            raise Invalid("--keep-newest must be at least 1")
        return await self._apply(ref, Retention(max_age_ms, keep_newest))

    async def clear(self, ref: str) -> RuledRoot:
        return await self._apply(ref, None)

    async def rules(self) -> list[RuledRoot]:
        roots = await self._meta.retained_roots()
        owners = await self._meta.get_users({n.owner_id for n in roots})
        return [RuledRoot(n, owners[n.owner_id]) for n in roots if n.owner_id in owners]

    async def _apply(self, ref: str, rule: Retention | None) -> RuledRoot:
        root, owner = await self._root(ref)
        updated = await self._meta.set_retention(root, rule)
        if updated is None:
            raise NotFound(f"no namespace {ref}")
        return RuledRoot(updated, owner)

    async def _root(self, ref: str) -> tuple[Namespace, User]:
        parsed = admin_ref(ref)
        namespace, owner = await find_admin_ref(self._meta, parsed)
        if namespace.parent_id is not None:
            root = parsed.segments[0]
            raise Invalid(
                f"only a root namespace takes a retention rule, and {parsed.path} is inside "
                f"{root}: set it on {root}@{owner.name} (its children inherit it)"
            )
        return namespace, owner
