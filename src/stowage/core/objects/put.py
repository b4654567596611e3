"""Whole-object puts: the bytes and the name in one request, stored READ_ONLY at once.

One path for every way in that has the whole object at hand (a single-request upload,
the console's, an S3 PUT); what differs between them is a ``PutPolicy``: which
names are allowed, whether a name is unique in its place, whether an empty body is an
object. Every field is validated before the body is stored, and all problems are
reported together.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from ..access import Principal
from ..errors import FieldErrors, NamespaceGone, NameTaken, Problem
from ..ids import new_object_id
from ..models import Checksum, Claimed, Namespace, NewObject, StoredObject
from ..namespaces import UploadTarget
from ..naming import MAX_NAME_BYTES, content_kind, validate_metadata, validate_object_name
from ..sniff import detect_content_type
from .base import ObjectsBase

UNIQUE_NAME_RULE = r"^[a-zA-Z0-9\._\-]+$"
UNIQUE_NAME = re.compile(r"^[a-zA-Z0-9._-]+$")


class OnConflict(StrEnum):
    REJECT = "reject"  # names are unique in their place: a live one makes the put fail
    REPLACE = "replace"  # one live object per name in its namespace: the last put wins
    KEEP_BOTH = "keep_both"  # names repeat, as three-step uploads' do: each put is new


@dataclass(frozen=True, slots=True)
class PutPolicy:
    pattern: re.Pattern[str] | None  # None: any valid object name
    on_conflict: OnConflict
    empty_allowed: bool
    control_characters: bool = False  # in names (S3 keys may hold them)


# Names that identify: unique in their place, from a small alphabet, and never empty files.
UNIQUE_NAMES = PutPolicy(UNIQUE_NAME, OnConflict.REJECT, empty_allowed=False)
# Names that describe, as in three-step uploads: any valid name, repeated at will.
ANY_NAMES = PutPolicy(None, OnConflict.KEEP_BOTH, empty_allowed=True)
# Names as keys (S3's): any valid name, one live object per name in its namespace.
KEYS = PutPolicy(None, OnConflict.REPLACE, empty_allowed=True, control_characters=True)
# The same names, for a put that must not replace anything (S3's ``If-None-Match: *``).
NEW_KEYS = PutPolicy(None, OnConflict.REJECT, empty_allowed=True, control_characters=True)


async def _peek(chunks: AsyncIterator[bytes]) -> tuple[bytes, AsyncIterator[bytes]]:
    """The first non-empty chunk (b"" for an empty body) and the whole stream again."""
    first = b""
    async for chunk in chunks:
        if chunk:
            first = chunk
            break

    async def again() -> AsyncIterator[bytes]:
        if first:
            yield first
            async for chunk in chunks:
                yield chunk

    return first, again()


def _name_problems(policy: PutPolicy, name: str | None) -> list[Problem]:
    if policy.pattern is None:
        validate_object_name(name or "", control_characters=policy.control_characters)
        return []
    problems = [Problem("name", "required")] if not name else []
    if not name or not policy.pattern.match(name):
        problems.append(Problem("name", "pattern", {"rule": UNIQUE_NAME_RULE}))
    elif len(name) > MAX_NAME_BYTES:  # the pattern admits ASCII only: characters are bytes
        problems.append(Problem("name", "too_long", {"max": MAX_NAME_BYTES}))
    return problems


class WholePut(ObjectsBase):
    async def put(
        self,
        caller: Principal,
        name: str | None,
        where: str | Namespace | None,
        chunks: AsyncIterator[bytes],
        declared_size: int | None,
        policy: PutPolicy,
        *,
        metadata: Mapping[str, object] | None = None,
        mime_type: str | None = None,
        if_match: str | None = None,
        headers: Mapping[str, str] | None = None,
        checksum: Callable[[], Checksum | None] | None = None,
        tags: Mapping[str, str] | None = None,
        claimed: Claimed | None = None,
    ) -> StoredObject:
        """Validate everything, then stream the body into a READ_ONLY object. ``where`` is
        a namespace reference (``path[@owner]``: the caller's missing ones are made), a
        namespace already found, or None. A body over the limit raises TooLarge, before any
        of it is read when its size was declared. ``mime_type`` is what the client says
        the bytes are; without one they are sniffed. ``if_match`` (REPLACE only): the
        etag, else md5, that the object replaced must have, or ``*`` for any; checked
        when the new object takes its place (NotFound, ConditionFailed). ``headers`` and
        ``checksum`` are kept with the object (``StoredObject``); ``checksum`` is asked
        once the body has been read, since a client may send it after the bytes (S3's
        trailers). ``claimed`` digests are checked before anything is kept."""
        caller.require("object:write")
        clean_metadata = validate_metadata(metadata)
        self._refuse_declared(declared_size)
        target = await self._target(caller, where)
        if policy.on_conflict is OnConflict.REPLACE and (
            target is None or target.namespace is None
        ):
            raise ValueError("names are keys only in a namespace that exists")
        problems = _name_problems(policy, name)
        if not problems and name and await self._taken(policy, caller, target, name):
            problems.append(Problem("name", "taken"))
        body = chunks
        if not policy.empty_allowed:
            first, body = await _peek(chunks)
            if not first:
                problems.append(Problem("file", "required"))
        if problems:
            raise FieldErrors(*problems)
        assert name is not None  # _name_problems refuses a missing one
        namespace = await self._namespaces.materialise(target) if target else None

        key, written = await self._store(body, self.limits.max_upload_bytes)
        await self._keep_if_claimed(key, claimed, written)
        mime = mime_type or detect_content_type(written.head)
        now = self._clock.now_ms()
        new = NewObject(
            public_id=new_object_id(now),
            owner_id=namespace.owner_id if namespace else caller.user.id,
            author_id=caller.user.id,
            name=name,
            content_type=content_kind(name, mime),
            metadata=clean_metadata,
            create_time_ms=now,
            delete_after_time_ms=None,
            namespace_id=namespace.id if namespace else None,
            creator_token_id=caller.token_id,
            unique_name=policy.on_conflict is not OnConflict.KEEP_BOTH,
            headers=dict(headers) if headers else None,
            checksum=checksum() if checksum else None,
            tags=dict(tags) if tags else None,
        )
        blob_key = written.shared or key
        try:
            if policy.on_conflict is OnConflict.REPLACE:
                stored = await self._meta.replace_stored_object(
                    new, blob_key, written, mime, self._clock.now_ms(), if_match
                )
            else:
                stored = await self._meta.insert_stored_object(new, blob_key, written, mime)
        except NameTaken:  # lost a race for the name: the database constraint decided
            await self._drop_unheld(key, written, None)
            raise FieldErrors(Problem("name", "taken")) from None
        except NamespaceGone:  # deleted while the body was arriving
            await self._drop_unheld(key, written, None)
            ref = where.path if isinstance(where, Namespace) else where
            raise FieldErrors(Problem("namespace", "missing", {"ref": ref})) from None
        except BaseException:
            await self._drop_unheld(key, written, None)
            raise
        await self._drop_unheld(key, written, stored.blob_key)
        return stored

    async def _target(
        self, caller: Principal, where: str | Namespace | None
    ) -> UploadTarget | None:
        if where is None:
            return None
        if isinstance(where, Namespace):
            return await self._namespaces.writable(caller, where)
        return await self._namespaces.upload_target(caller, where)

    async def _taken(
        self, policy: PutPolicy, caller: Principal, target: UploadTarget | None, name: str
    ) -> bool:
        """Whether the name is in use where the object would go (a namespace still to be
        made holds nothing yet)."""
        if policy.on_conflict is not OnConflict.REJECT:
            return False
        if target is not None and target.namespace is None:
            return False
        namespace_id = target.namespace.id if target and target.namespace else None
        return await self._meta.name_taken(caller.user.id, namespace_id, name)
