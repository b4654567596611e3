"""Validation of caller-supplied names, metadata and lifetimes, shared by every dialect,
and the kind of content a name suggests."""

from __future__ import annotations

import mimetypes
from collections.abc import Mapping

from .errors import Invalid
from .models import ContentType

MAX_NAME_BYTES = 1024
MAX_METADATA_BYTES = 64 * 1024
MAX_METADATA_KEY_CHARS = 256
MAX_TTL_MS = 10 * 365 * 24 * 3600 * 1000  # ten years: beyond that it is a mistake, not a TTL


def _has_control(text: str) -> bool:
    return any(ord(c) < 0x20 or ord(c) == 0x7F for c in text)


def validate_object_name(name: str, *, control_characters: bool = False) -> str:
    """A name of up to 1,024 bytes of UTF-8 without NUL. Control characters are refused
    unless the name is an S3 key, which may hold any of them: clients list such keys
    URL-encoded (``encoding-type=url``), and every header that carries a name encodes it."""
    if not name:
        raise Invalid("name must not be empty")
    if "\x00" in name:
        raise Invalid("name must not contain NUL bytes")
    if not control_characters and _has_control(name):
        raise Invalid("name must not contain control characters")
    if len(name.encode()) > MAX_NAME_BYTES:
        raise Invalid(f"name is longer than {MAX_NAME_BYTES} bytes")
    return name


def validate_metadata_key(key: str) -> str:
    if not key:
        raise Invalid("metadata keys must not be empty")
    if _has_control(key):
        raise Invalid("metadata keys must not contain control characters")
    if len(key) > MAX_METADATA_KEY_CHARS:
        raise Invalid(f"metadata keys are at most {MAX_METADATA_KEY_CHARS} characters")
    return key


def validate_metadata(metadata: Mapping[str, object] | None) -> dict[str, str] | None:
    if metadata is None:
        return None
    total = 0
    for key, value in metadata.items():
        validate_metadata_key(key)
        if not isinstance(value, str):
            raise Invalid(f"metadata value for {key!r} must be a string")
        if "\x00" in value:
            raise Invalid(f"metadata value for {key!r} must not contain NUL bytes")
        total += len(key.encode()) + len(value.encode())
    if total > MAX_METADATA_BYTES:
        raise Invalid(f"metadata is {total} bytes; the limit is {MAX_METADATA_BYTES} bytes")
    return dict(metadata)  # type: ignore[arg-type]


def validate_ttl_ms(ttl_ms: int | None) -> int | None:
    if ttl_ms is None:
        return None
    if ttl_ms <= 0:
        raise Invalid("ttl_ms must be a positive number of milliseconds")
    if ttl_ms > MAX_TTL_MS:
        raise Invalid(f"ttl_ms must be at most {MAX_TTL_MS} (ten years)")
    return ttl_ms


def content_kind(name: str, sniffed: str | None = None) -> ContentType:
    """The coarse kind of an object whose client named none: by the name's extension,
    else by the MIME type sniffed from its first bytes, when they are at hand."""
    lowered = name.lower()
    if lowered.endswith((".tar.gz", ".tgz")):
        return ContentType.TGZ
    if lowered.endswith(".gz"):
        return ContentType.GZIP
    if lowered.endswith(".tar"):
        return ContentType.TAR
    mime = mimetypes.guess_type(lowered)[0]
    if mime is not None:
        text = mime.startswith("text/") or mime == "application/json"
        return ContentType.TEXT if text else ContentType.BINARY
    if sniffed == "application/x-gzip":
        return ContentType.GZIP
    if sniffed is not None and sniffed.startswith("text/"):
        return ContentType.TEXT
    return ContentType.UNSPECIFIED
