"""Rows to the core's records: the mappers every part of ``SqlMetadataStore`` reads through."""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Callable
from typing import Any, TypeVar

import orjson
from sqlalchemy.engine import Row

from ..core.models import (
    AccessKey,
    Checksum,
    ContentType,
    Invite,
    MultipartUpload,
    Namespace,
    ObjectState,
    Retention,
    StoredObject,
    Token,
    User,
    Visibility,
)
from .prepared import Row as PreparedRow

AnyRow = Row[Any] | PreparedRow  # SQLAlchemy's, or a prepared statement's
R = TypeVar("R")


def record(cls: type[R], row: AnyRow, prefix: str = "", **converted: Any) -> R:
    """Build dataclass ``cls`` from the row's columns of the same names (optionally
    prefixed, when joined to another table); ``converted`` supplies typed values."""
    names, take = _plan(cls, prefix, tuple(converted))
    values = dict(zip(names, take(row._mapping), strict=True))
    values.update(converted)
    return cls(**values)


_PLANS: dict[tuple[type, str, tuple[str, ...]], tuple[tuple[str, ...], Callable[[Any], Any]]] = {}


def _plan(
    cls: type, prefix: str, converted: tuple[str, ...]
) -> tuple[tuple[str, ...], Callable[[Any], tuple[Any, ...]]]:
    """The fields ``record`` reads from the row, and one C-level getter of their values:
    every row read goes through here (a 4 KiB GET maps 23 columns), and a comprehension
    over ``dataclasses.fields`` cost more than running the query."""
    key = (cls, prefix, converted)
    found = _PLANS.get(key)
    if found is None:
        names = tuple(f.name for f in dataclasses.fields(cls) if f.name not in converted)
        getter = operator.itemgetter(*(prefix + n for n in names))
        take = getter if len(names) != 1 else lambda m: (getter(m),)
        found = _PLANS[key] = (names, take)
    return found


def user(row: AnyRow, prefix: str = "") -> User:
    return record(User, row, prefix, is_admin=bool(row._mapping[prefix + "is_admin"]))


def token(row: AnyRow) -> Token:
    return record(Token, row, scopes=frozenset(row.scopes.split()))


def access_key(row: AnyRow) -> AccessKey:
    return record(AccessKey, row, scopes=frozenset(row.scopes.split()))


def metadata_json(metadata: dict[str, str] | None) -> str | None:
    """Metadata as the ``metadata_json`` column holds it."""
    return None if metadata is None else orjson.dumps(metadata).decode()


def _metadata(row: AnyRow) -> dict[str, str] | None:
    return orjson.loads(row.metadata_json) if row.metadata_json is not None else None


def object_attributes_json(
    headers: dict[str, str] | None,
    checksum: Checksum | None,
    tags: dict[str, str] | None = None,
) -> str | None:
    """An object's headers, checksum and tags as its ``attributes_json`` column holds
    them: ``{"headers": {...}, "checksum": {"algorithm", "value", "composite"},
    "tags": {...}}``, each key present only when set (most objects have none: NULL)."""
    kept = None if checksum is None else dataclasses.asdict(checksum)
    return _attributes_json(headers, kept, tags)


def upload_attributes_json(upload: MultipartUpload) -> str | None:
    """An upload's headers, checksum kind and tags as its ``attributes_json`` column
    holds them: ``{"headers": {...}, "checksum": {"algorithm", "composite"}, "tags"}``."""
    algorithm = upload.checksum_algorithm
    kind = None if algorithm is None else {"algorithm": algorithm, "composite": upload.composite}
    return _attributes_json(upload.headers, kind, upload.tags)


def _attributes_json(
    headers: dict[str, str] | None,
    checksum: dict[str, Any] | None,
    tags: dict[str, str] | None = None,
) -> str | None:
    attributes: dict[str, Any] = {}
    if headers:
        attributes["headers"] = headers
    if checksum is not None:
        attributes["checksum"] = checksum
    if tags:
        attributes["tags"] = tags
    return orjson.dumps(attributes).decode() if attributes else None


def _attributes(row: AnyRow) -> dict[str, Any]:
    return orjson.loads(row.attributes_json) if row.attributes_json is not None else {}


# Enum lookups by value as plain dicts: ``ObjectState(value)`` goes through EnumType's
# __call__, a microsecond a column on every row read.
_CONTENT_TYPES = {member.value: member for member in ContentType}
_STATES = {member.value: member for member in ObjectState}


def stored_object(row: AnyRow) -> StoredObject:
    attributes = _attributes(row)
    checksum = attributes.get("checksum")
    return record(
        StoredObject,
        row,
        content_type=_CONTENT_TYPES[row.content_type],
        state=_STATES[row.state],
        metadata=_metadata(row),
        headers=attributes.get("headers"),
        checksum=Checksum(**checksum) if checksum is not None else None,
        tags=attributes.get("tags"),
    )


def multipart_upload(row: AnyRow) -> MultipartUpload:
    attributes = _attributes(row)
    checksum = attributes.get("checksum", {})
    return record(
        MultipartUpload,
        row,
        metadata=_metadata(row),
        headers=attributes.get("headers"),
        checksum_algorithm=checksum.get("algorithm"),
        composite=checksum.get("composite", True),
        tags=attributes.get("tags"),
    )


def namespace(row: AnyRow) -> Namespace:
    max_age, keep = row.retention_max_age_ms, row.retention_keep_newest
    rule = None if max_age is None and keep is None else Retention(max_age, keep)
    return record(Namespace, row, visibility=Visibility(row.visibility), retention=rule)


def invite(row: AnyRow) -> Invite:
    return record(Invite, row)
