"""Object ids: ULIDs, so ids sort by creation time and serve as stable list cursors."""

from __future__ import annotations

import secrets

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lower case
OBJECT_ID_PREFIX = "obj_"


def _base32(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def new_object_id(now_ms: int) -> str:
    """48 bits of milliseconds then 80 random bits: lexicographic order is creation order."""
    return OBJECT_ID_PREFIX + _base32(now_ms, 10) + _base32(secrets.randbits(80), 16)


def new_blob_key() -> str:
    """Blob names are random, never derived from anything a caller sent."""
    return secrets.token_hex(16)
