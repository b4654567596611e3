"""The AWS Signature Version 4 key and signature: what the S3 dialect checks requests
against (``api/s3/sigv4.py``) and what the S3 blob store signs its own multipart calls
with (``blobs/s3_parts.py``)."""

from __future__ import annotations

import hashlib
import hmac
from functools import lru_cache

SERVICE = "s3"
TERMINATOR = "aws4_request"


@lru_cache(maxsize=1024)
def signing_key(secret: str, date: str, region: str) -> bytes:
    """``kSigning`` for a day and region: four chained HMACs, so cached (the key is valid
    for one date and region anyway, and a busy client reuses it on every request)."""
    key = _hmac(("AWS4" + secret).encode(), date)
    for part in (region, SERVICE, TERMINATOR):
        key = _hmac(key, part)
    return key


def sign(key: bytes, string_to_sign: str) -> str:
    return hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()
