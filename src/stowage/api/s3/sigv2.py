"""Verifying AWS Signature Version 2, which S3 still accepts and which clients still send:
botocore presigns S3 URLs with it unless told ``signature_version="s3v4"`` (so
``generate_presigned_url`` in boto3 and ``aws s3 presign`` make SigV2 URLs at their
defaults), and older tools sign headers with it (``Authorization: AWS id:signature``).

The string to sign is S3's: the method, ``Content-MD5``, ``Content-Type``, the date (the
``Expires`` seconds in a URL), the ``x-amz-*`` headers, and the resource: the path as sent
plus the sub-resources that change what it names. The signature is base64 HMAC-SHA1 with
the secret. The body is not signed; ``Content-MD5``, when sent, is checked as it streams.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime

from . import errors
from .sigv4 import (
    MAX_SKEW,
    Headers,
    PayloadMode,
    SecretLookup,
    Signing,
    Verified,
    header_fields,
    iso_time,
    parse_http_date,
    query_params,
    signatures_equal,
)

# The query parameters that are part of the resource signed (botocore's list, S3's rule).
SUB_RESOURCES = frozenset(
    [
        "accelerate",
        "acl",
        "cors",
        "defaultObjectAcl",
        "location",
        "logging",
        "partNumber",
        "policy",
        "requestPayment",
        "torrent",
        "versioning",
        "versionId",
        "versions",
        "website",
        "uploads",
        "uploadId",
        "response-content-type",
        "response-content-language",
        "response-expires",
        "response-cache-control",
        "response-content-disposition",
        "response-content-encoding",
        "delete",
        "lifecycle",
        "tagging",
        "restore",
        "storageClass",
        "notification",
        "replication",
        "analytics",
        "metrics",
        "inventory",
        "select",
        "select-type",
        "object-lock",
    ]
)


def signed_with_v2(query: bytes, headers: Headers) -> bool:
    """Whether the request carries SigV2 credentials (then ``verify`` here checks them)."""
    fields = header_fields(headers)
    if fields.get("authorization", b"").startswith(b"AWS "):
        return True
    return any(name == b"AWSAccessKeyId" for name, _ in query_params(query))


async def verify(
    method: str,
    raw_path: bytes,
    query: bytes,
    headers: Headers,
    now: datetime,
    secret_for: SecretLookup,
) -> Verified:
    fields = header_fields(headers)
    params = {name.decode("latin-1"): value for name, value in query_params(query)}
    authorization = fields.get("authorization")
    if authorization is not None:
        access_key_id, _, signature = authorization[4:].decode("latin-1").partition(":")
        date = fields.get("x-amz-date") or fields.get("date")
        moment = parse_http_date(date.decode("latin-1")) if date is not None else None
        if date is None or moment is None:
            raise errors.access_denied(
                "AWS authentication requires a valid Date or x-amz-date header"
            )
        if abs(now - moment) > MAX_SKEW:
            raise errors.request_time_too_skewed(date.decode("latin-1"), iso_time(now))
        stamp = "" if "x-amz-date" in fields else date.decode("latin-1")
    else:
        access_key_id = _param(params, "AWSAccessKeyId")
        signature = _param(params, "Signature")
        stamp = _param(params, "Expires")
        if not stamp.isascii() or not stamp.isdigit():
            raise errors.access_denied("Invalid date (should be seconds since epoch)")
        if int(stamp) < now.timestamp():
            raise errors.access_denied("Request has expired")
    secret = await secret_for(access_key_id)
    if secret is None:
        raise errors.invalid_access_key_id(access_key_id)
    head = [
        method,
        _standard(fields, params, "content-md5"),
        _standard(fields, params, "content-type"),
        stamp,
        *_amz_headers(fields, params),
    ]
    # A bucket alone is signed as "/bucket/" by botocore, as for a virtual-hosted request,
    # even when its path-style URL says "/bucket": S3 takes either.
    paths = [raw_path, raw_path + b"/"] if raw_path.count(b"/") == 1 else [raw_path]
    strings = ["\n".join([*head, _resource(path, query)]) for path in paths]
    if not any(signatures_equal(sign(secret, text), signature) for text in strings):
        raise errors.signature_does_not_match(access_key_id, strings[0])
    return Verified(
        signing=Signing(access_key_id, b"", stamp, "", signature),
        payload=PayloadMode.UNSIGNED,
        payload_sha256=None,
        trailers=(),
        decoded_length=None,
        presigned=authorization is None,
        security_token=None,
    )


def sign(secret: str, string_to_sign: str) -> str:
    """SigV2's signature: base64 of the HMAC-SHA1 (also of a POST form's policy)."""
    digest = hmac.new(secret.encode(), string_to_sign.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def _param(params: dict[str, bytes], name: str) -> str:
    value = params.get(name)
    if value is None:
        raise errors.access_denied(f"Query-string authentication requires {name}")
    return value.decode("utf-8", "replace")


def _standard(fields: dict[str, bytes], params: dict[str, bytes], name: str) -> str:
    """A header's value, or (botocore moves them into a presigned URL) the parameter's."""
    value = fields.get(name)
    if value is not None:
        return value.decode("latin-1").strip()
    return params[name].decode("utf-8", "replace") if name in params else ""


def _amz_headers(fields: dict[str, bytes], params: dict[str, bytes]) -> list[str]:
    amz = {n: v.decode("latin-1").strip() for n, v in fields.items() if n.startswith("x-amz-")}
    for name, value in params.items():
        if name.lower().startswith("x-amz-") and name.lower() not in amz:
            amz[name.lower()] = value.decode("utf-8", "replace")
    return [f"{name}:{amz[name]}" for name in sorted(amz)]


def _resource(raw_path: bytes, query: bytes) -> str:
    kept = []
    for name, value in query_params(query):
        text = name.decode("latin-1")
        if text in SUB_RESOURCES:
            kept.append((text, value.decode("utf-8", "replace") if value else None))
    kept.sort(key=lambda pair: pair[0])
    path = raw_path.decode("latin-1")
    if not kept:
        return path
    return path + "?" + "&".join(n if v is None else f"{n}={v}" for n, v in kept)
