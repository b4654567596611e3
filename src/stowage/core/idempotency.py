"""Idempotency keys: a request sent again under the same key is carried out once.

The Runloop SDKs put a key on every POST (``x-request-id: stainless-python-retry-<uuid4>``
or ``stainless-node-retry-<uuid4>``), keep it across their own retries, and send a caller's
``idempotency_key=`` in the same header instead; ``Idempotency-Key`` is the usual name for
the same thing. A key belongs to the token that sent it and is kept for ``KEY_LIFETIME_MS``.
Keys and requests are stored as SHA-256 digests, so any header value fits the column and
no key is ever stored in the clear.
"""

from __future__ import annotations

import hashlib
import json

from .models import KeyedRequest

KEY_LIFETIME_MS = 24 * 3600 * 1000
KEY_REUSED = (
    "This idempotency key was already used with a different request; "
    "send a new key for a new request"
)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def keyed_request(
    token_id: int, key: str | None, now_ms: int, *request: object
) -> KeyedRequest | None:
    """The request ``(operation, arguments…)`` made under ``key``; None without a key."""
    if not key:
        return None
    asked = json.dumps(request, sort_keys=True, separators=(",", ":"))
    return KeyedRequest(token_id, _digest(key), _digest(asked), now_ms)
