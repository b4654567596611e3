"""Object ids: monotonic ULIDs, so ids sort by creation time and serve as list cursors."""

from __future__ import annotations

import secrets
import threading
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lower case
_RANDOM_BITS = 80
OBJECT_ID_PREFIX = "obj_"


def _base32(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


class _Monotonic:
    """Within one millisecond (or if the clock steps back) the random part counts up."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last_ms = -1
        self._last_random = 0

    def next(self, now_ms: int) -> tuple[int, int]:
        with self._lock:
            if now_ms > self._last_ms:
                self._last_ms, self._last_random = now_ms, secrets.randbits(_RANDOM_BITS - 1)
            else:
                self._last_random += 1 + secrets.randbits(16)
            return self._last_ms, self._last_random


_generator = _Monotonic()


def new_object_id(now_ms: int) -> str:
    """48 bits of milliseconds then 80 bits: lexicographic order is creation order."""
    ms, rand = _generator.next(now_ms)
    return OBJECT_ID_PREFIX + _base32(ms, 10) + _base32(rand, 16)


BLOB_DIRECTORY_SECONDS = 8


def new_blob_key(now_s: float | None = None) -> str:
    """Random, never derived from anything a caller sent, except the first two hex digits
    (the blob's directory on disk and its S3 key prefix): they change every
    ``BLOB_DIRECTORY_SECONDS`` and cycle through all 256 values, so blobs written together
    share a directory, which one fsync then makes durable for all of them
    (``blobs.publish``), and over time every directory gets its share."""
    period = int((time.time() if now_s is None else now_s) // BLOB_DIRECTORY_SECONDS)
    return f"{period % 256:02x}{secrets.token_hex(15)}"


INLINE_KEY_PREFIX = "in"  # never two hex digits: no blob store key starts with it


def new_inline_key() -> str:
    """The key of a blob whose bytes live in its metadata row (``objects/inline.py``):
    readers tell it from a blob store's by its prefix, with nothing to look up."""
    return f"{INLINE_KEY_PREFIX}{secrets.token_hex(15)}"


def is_inline_key(key: str) -> bool:
    return key.startswith(INLINE_KEY_PREFIX)
