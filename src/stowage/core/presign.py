"""HMAC-SHA256 signatures for presigned blob URLs served by stowage itself.

A signature binds the HTTP method, the object id and the expiry, so a URL cannot be
reused for another object, another verb, or past its lifetime.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from ..numbers import parse_bounded_int
from .errors import BadSignature

MAX_URL_LIFETIME_S = 7 * 24 * 3600  # the same ceiling as S3 presigned URLs


@dataclass(frozen=True, slots=True)
class Grant:
    """What a verified signature allows: ``method`` on one object. Only
    ``Presigner.verify`` makes one, and the object service's presigned entry points take
    one instead of trusting the caller to have checked."""

    method: str
    object_id: str

    def require(self, method: str) -> None:
        if self.method != method:
            raise BadSignature(f"this URL is signed for {self.method}, not {method}")


class Presigner:
    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("presign secret must be at least 16 bytes")
        self._secret = secret

    def sign(self, method: str, object_id: str, expires_s: int) -> str:
        message = f"{method.upper()}\n{object_id}\n{expires_s}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    def verify(
        self,
        method: str,
        object_id: str,
        expires: str | None,
        signature: str | None,
        now_ms: int,
    ) -> Grant:
        if not expires or not signature:
            raise BadSignature("this URL is not signed: 'expires' and 'signature' are required")
        expires_s = parse_bounded_int(expires)
        if expires_s is None:
            raise BadSignature("the 'expires' parameter is not a number")
        expected = self.sign(method, object_id, expires_s)
        # As bytes: compare_digest refuses str with non-ASCII characters, and a URL can carry any.
        if not hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace")):
            raise BadSignature("the URL signature does not match (tampered, or for another use)")
        if expires_s * 1000 <= now_ms:
            raise BadSignature("this presigned URL has expired")
        return Grant(method.upper(), object_id)
