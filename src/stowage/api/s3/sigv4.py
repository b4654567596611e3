"""Verifying AWS Signature Version 4 as S3 checks it: the ``Authorization`` header and
presigned URLs (query parameters).

:func:`verify` takes the request exactly as the server received it (method, the raw
percent-encoded path, the raw query bytes, the ASGI header list) and answers either
``None`` (no credentials at all: an anonymous request, the caller's policy decides),
a :class:`Verified` (the signature over method, path, query, the signed headers and the
declared payload hash is right, the key exists, the time is within bounds), or raises
:class:`~.errors.S3Error` with the code S3 gives.

What it does *not* guarantee: that the body matches what was declared. The body has not
been read yet; :class:`Verified` says what to check it against (``payload_sha256``,
the chunk ``signing`` material, ``trailers``, ``decoded_length``) and ``chunked.request_body`` does
the checking while streaming.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from enum import StrEnum
from urllib.parse import quote, unquote_to_bytes

from ...aws_signing import SERVICE, TERMINATOR, sign, signing_key
from . import errors
from .errors import S3Error

ALGORITHM = "AWS4-HMAC-SHA256"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
# "X-Amz-Expires … Minimum value of 1. Maximum value of 604800 (seven days)."
MAX_EXPIRES = 604800
MAX_SKEW = timedelta(milliseconds=errors.MAX_SKEW_MS)
ISO_BASIC = "%Y%m%dT%H%M%SZ"

Headers = Sequence[tuple[bytes, bytes]]
# Async because the real lookup reads the database: a sync one would block the event loop
# (or need a thread hop per request), and an in-memory test lookup is trivially async.
SecretLookup = Callable[[str], Awaitable[str | None]]

_HEX64 = re.compile(r"[0-9a-fA-F]{64}")
_DATE = re.compile(r"\d{8}")
_SPACES = re.compile(rb"[ \t]+")


class PayloadMode(StrEnum):
    """What ``x-amz-content-sha256`` (or ``X-Amz-Content-Sha256`` in a presign) declared."""

    SHA256 = "sha256"  # a hex digest of the whole body; Verified.payload_sha256 holds it
    UNSIGNED = "UNSIGNED-PAYLOAD"
    STREAMING_SIGNED = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
    STREAMING_SIGNED_TRAILER = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
    STREAMING_UNSIGNED_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"

    @property
    def chunked(self) -> bool:
        """The body is ``aws-chunked``: :mod:`.chunked` decodes it."""
        return self.value.startswith("STREAMING-")

    @property
    def signed_chunks(self) -> bool:
        return self in (PayloadMode.STREAMING_SIGNED, PayloadMode.STREAMING_SIGNED_TRAILER)

    @property
    def trailer(self) -> bool:
        return self.value.endswith("-TRAILER")


@dataclass(frozen=True)
class Signing:
    """What chunk and trailer signatures chain from: each string to sign carries the
    request ``timestamp`` and ``scope``, and the previous signature, starting at ``seed``
    (the request's own signature)."""

    access_key_id: str
    key: bytes = field(repr=False)
    timestamp: str
    scope: str
    seed: str


@dataclass(frozen=True)
class Verified:
    """A request whose signature checked out. ``security_token`` is passed through
    unchecked (stowage issues no session tokens; the caller decides what one means)."""

    signing: Signing
    payload: PayloadMode
    payload_sha256: str | None  # lowercase hex, when payload is SHA256
    trailers: tuple[str, ...]  # lowercased names from x-amz-trailer
    decoded_length: int | None  # x-amz-decoded-content-length
    presigned: bool
    security_token: str | None

    @property
    def access_key_id(self) -> str:
        return self.signing.access_key_id


def signatures_equal(computed: str, given: str) -> bool:
    """Constant-time, so a forger learns nothing from how long a wrong guess took."""
    return hmac.compare_digest(computed.encode(), given.encode("utf-8", "replace"))


def header_fields(headers: Headers) -> dict[str, bytes]:
    """Lowercased names to canonical values: trimmed, inner runs of spaces collapsed, and
    repeated headers joined with ``,`` in the order received (SigV4's ``Trimall``)."""
    fields: dict[str, bytes] = {}
    for raw_name, raw_value in headers:
        name = raw_name.decode("latin-1").lower()
        value = _SPACES.sub(b" ", raw_value.strip(b" \t"))
        fields[name] = fields[name] + b"," + value if name in fields else value
    return fields


def _text(fields: dict[str, bytes], name: str) -> str | None:
    value = fields.get(name)
    return None if value is None else value.decode("latin-1")


def _encode(raw: bytes) -> str:
    """AWS's ``UriEncode``: unreserved ``A-Za-z0-9-_.~`` as is, every other byte ``%XX``."""
    return quote(raw, safe="")


def canonical_uris(raw_path: bytes) -> list[str]:
    """The canonical URI candidates: the path as sent first.

    S3 neither normalises the path (``a/../b`` and ``a//b`` are keys) nor encodes it a
    second time. A client following AWS's rules sends the path already in canonical form,
    so that is the only candidate. AWS's own "PUT Object" example sends ``/test$file.text``
    yet signs ``/test%24file.text``: for a path not in canonical form the second candidate
    re-encodes each byte (``%XX`` escapes decoded first, so nothing is encoded twice, and a
    literal ``/`` kept while ``%2F`` stays ``%2F``).
    """
    encoded = "/".join(_encode(unquote_to_bytes(part)) for part in raw_path.split(b"/"))
    encoded = encoded or "/"
    as_sent = raw_path.decode("latin-1") or "/"
    if not raw_path.isascii() or as_sent == encoded:
        return [encoded]
    return [as_sent, encoded]


def query_params(query: bytes) -> list[tuple[bytes, bytes]]:
    """The raw query split into decoded (name, value) bytes; a parameter without ``=`` has
    an empty value. ``+`` is a literal plus (RFC 3986), not a space: SigV4 clients encode a
    space as ``%20``."""
    params = []
    for piece in query.split(b"&"):
        if piece:
            name, _, value = piece.partition(b"=")
            params.append((unquote_to_bytes(name), unquote_to_bytes(value)))
    return params


def canonical_query(params: list[tuple[bytes, bytes]], *, exclude: bytes | None = None) -> str:
    """Every parameter URI-encoded, then sorted by name and then by value."""
    pairs = sorted((_encode(n), _encode(v)) for n, v in params if n != exclude)
    return "&".join(f"{n}={v}" for n, v in pairs)


@dataclass(frozen=True)
class _Claim:
    """What the client says it signed, parsed from the header or the query."""

    access_key_id: str
    date: str
    region: str
    timestamp: str
    signed_headers: str
    signature: str
    payload_hash: str
    canonical_query: str
    presigned: bool
    security_token: str | None


def _parse_credential(
    credential: str, fail: Callable[[str], S3Error], prefix: str
) -> tuple[str, str, str]:
    parts = credential.rsplit("/", 4)
    if len(parts) != 5 or not all(parts):
        raise fail(
            prefix + 'the Credential is mal-formed; expecting "<YOUR-AKID>/YYYYMMDD/REGION/'
            'SERVICE/aws4_request".'
        )
    access_key_id, date, region, service, terminator = parts
    if not _DATE.fullmatch(date) or _parse_time(date + "T000000Z") is None:
        raise fail(
            prefix + f'incorrect date format "{date}". This date in the credential must be '
            'in the format "yyyyMMdd".'
        )
    if service != SERVICE:
        raise fail(prefix + f'incorrect service "{service}". This endpoint belongs to "s3".')
    if terminator != TERMINATOR:
        raise fail(
            prefix + f'incorrect terminal "{terminator}". This endpoint uses "aws4_request".'
        )
    return access_key_id, date, region


def _parse_time(value: str) -> datetime | None:
    try:
        return datetime.strptime(value, ISO_BASIC).replace(tzinfo=UTC)
    except ValueError:
        return None


def iso_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


_NAMED_PAYLOADS = {mode.value: mode for mode in PayloadMode if mode is not PayloadMode.SHA256}


def _payload_mode(value: str) -> tuple[PayloadMode, str | None]:
    if _HEX64.fullmatch(value):
        return PayloadMode.SHA256, value.lower()
    mode = _NAMED_PAYLOADS.get(value)
    if mode is None:
        raise errors.invalid_argument(
            "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-UNSIGNED-PAYLOAD-TRAILER,"
            " STREAMING-AWS4-HMAC-SHA256-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
            " or a valid sha256 value.",
            "x-amz-content-sha256",
            value,
        )
    return mode, None


def _header_claim(
    authorization: str, fields: dict[str, bytes], query: str, now: datetime
) -> _Claim:
    fail = errors.authorization_header_malformed
    algorithm, _, rest = authorization.partition(" ")
    if algorithm != ALGORITHM:
        raise errors.invalid_request(
            "The authorization mechanism you have provided is not supported. "
            "Please use AWS4-HMAC-SHA256."
        )
    components = dict(part.strip().partition("=")[::2] for part in rest.split(","))
    try:
        credential = components["Credential"]
        signed_headers = components["SignedHeaders"]
        signature = components["Signature"]
    except KeyError:
        raise fail(
            "The authorization header is malformed; the authorization header requires three "
            "components: Credential, SignedHeaders, and Signature."
        ) from None
    prefix = "The authorization header is malformed; "
    access_key_id, date, region = _parse_credential(credential, fail, prefix)

    timestamp = _text(fields, "x-amz-date")
    moment = None if timestamp is None else _parse_time(timestamp)
    if timestamp is None and (date_header := _text(fields, "date")) is not None:
        moment = _parse_time(date_header) or parse_http_date(date_header)
    if moment is None:
        raise errors.access_denied("AWS authentication requires a valid Date or x-amz-date header")
    request_time = timestamp or moment.strftime(ISO_BASIC)
    if abs(now - moment) > MAX_SKEW:
        raise errors.request_time_too_skewed(request_time, iso_time(now))
    if request_time[:8] != date:
        raise fail(
            prefix + f'Invalid credential date "{date}". This date is not the same as '
            f'X-Amz-Date: "{request_time[:8]}".'
        )

    payload_hash = _text(fields, "x-amz-content-sha256")
    if payload_hash is None:
        # S3 requires the header with SigV4 (it is the only place the payload is declared).
        raise errors.invalid_request(
            "Missing required header for this request: x-amz-content-sha256"
        )
    return _Claim(
        access_key_id,
        date,
        region,
        request_time,
        signed_headers,
        signature,
        payload_hash,
        query,
        presigned=False,
        security_token=_text(fields, "x-amz-security-token"),
    )


def parse_http_date(value: str) -> datetime | None:
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return moment if moment.tzinfo is not None else None


_QUERY_AUTH = (
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Signature",
    "X-Amz-Date",
    "X-Amz-SignedHeaders",
    "X-Amz-Expires",
)


def _query_claim(params: list[tuple[bytes, bytes]], now: datetime) -> _Claim:
    fail = errors.authorization_query_parameters_error
    values = {n.decode("utf-8", "replace"): v.decode("utf-8", "replace") for n, v in params}
    if not all(name in values for name in _QUERY_AUTH):
        raise fail(
            "Query-string authentication version 4 requires the X-Amz-Algorithm, "
            "X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and "
            "X-Amz-Expires parameters."
        )
    if values["X-Amz-Algorithm"] != ALGORITHM:
        raise fail('X-Amz-Algorithm only supports "AWS4-HMAC-SHA256"')
    prefix = "Error parsing the X-Amz-Credential parameter; "
    access_key_id, date, region = _parse_credential(values["X-Amz-Credential"], fail, prefix)
    timestamp = values["X-Amz-Date"]
    moment = _parse_time(timestamp)
    if moment is None:
        raise fail("X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"")
    if timestamp[:8] != date:
        raise fail(
            prefix + f'Invalid credential date "{date}". This date is not the same as '
            f'X-Amz-Date: "{timestamp[:8]}".'
        )
    expires_text = values["X-Amz-Expires"]
    if not expires_text.isdigit():
        raise fail("X-Amz-Expires should be a number")
    expires = int(expires_text)
    if expires > MAX_EXPIRES:
        raise fail("X-Amz-Expires must be less than a week (in seconds) that is 604800")
    if moment - now > MAX_SKEW:
        raise errors.access_denied("Request is not valid yet")
    if now > moment + timedelta(seconds=expires):
        raise errors.access_denied(
            "Request has expired",
            **{
                "X-Amz-Expires": expires_text,
                "Expires": iso_time(moment + timedelta(seconds=expires)),
                "ServerTime": iso_time(now),
            },
        )
    return _Claim(
        access_key_id,
        date,
        region,
        timestamp,
        values["X-Amz-SignedHeaders"],
        values["X-Amz-Signature"],
        # "You don't include a payload hash in the Canonical Request, because when you
        # create a presigned URL, you don't know anything about the payload", unless the
        # signer chose to put one in the query.
        values.get("X-Amz-Content-Sha256", PayloadMode.UNSIGNED.value),
        canonical_query(params, exclude=b"X-Amz-Signature"),
        presigned=True,
        security_token=values.get("X-Amz-Security-Token"),
    )


def _check_signed_headers(claim: _Claim, fields: dict[str, bytes]) -> list[str]:
    names = claim.signed_headers.split(";")
    if "host" not in names:
        message = "Signed headers must include host"
        if claim.presigned:
            raise errors.authorization_query_parameters_error(message)
        raise errors.authorization_header_malformed(message)
    # "All x-amz-* headers … must be signed": otherwise anyone on the path could add or
    # change, say, x-amz-acl or x-amz-content-sha256 on a signed request.
    unsigned = sorted(n for n in fields if n.startswith("x-amz-") and n not in names)
    if unsigned:
        raise errors.access_denied(
            "There were headers present in the request which were not signed",
            HeadersNotSigned=", ".join(unsigned),
        )
    return names


async def verify(
    method: str,
    raw_path: bytes,
    query: bytes,
    headers: Headers,
    now: datetime,
    secret_for: SecretLookup,
) -> Verified | None:
    """Check a request's SigV4 signature; ``None`` when it carries none (anonymous).

    ``raw_path`` is the path as received, still percent-encoded and without the query
    (ASGI's ``raw_path``); ``query`` the raw query string; ``now`` an aware datetime.
    Raises :class:`S3Error` for every failure, with S3's code.
    """
    fields = header_fields(headers)
    params = query_params(query)
    authorization = _text(fields, "authorization")
    presigned = any(name == b"X-Amz-Algorithm" for name, _ in params)
    if authorization is not None and presigned:
        raise errors.invalid_argument(
            "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, "
            "Signature query string parameter or the Authorization header should be specified",
            "Authorization",
            authorization,
        )
    if authorization is None and not presigned:
        return None
    if authorization is not None:
        claim = _header_claim(authorization, fields, canonical_query(params), now)
    else:
        claim = _query_claim(params, now)
    names = _check_signed_headers(claim, fields)
    mode, expected_sha256 = _payload_mode(claim.payload_hash)

    secret = await secret_for(claim.access_key_id)
    if secret is None:
        raise errors.invalid_access_key_id(claim.access_key_id)
    key = signing_key(secret, claim.date, claim.region)
    scope = f"{claim.date}/{claim.region}/{SERVICE}/{TERMINATOR}"
    header_block = "".join(f"{n}:{fields.get(n, b'').decode('latin-1')}\n" for n in names)
    tail = f"{claim.canonical_query}\n{header_block}\n{claim.signed_headers}\n{claim.payload_hash}"
    string_to_sign = canonical_request = ""
    for uri in canonical_uris(raw_path):
        candidate = f"{method}\n{uri}\n{tail}"
        # latin-1 hashes each header byte as it came off the wire; the rest is ASCII.
        digest = hashlib.sha256(candidate.encode("latin-1")).hexdigest()
        candidate_sts = f"{ALGORITHM}\n{claim.timestamp}\n{scope}\n{digest}"
        if signatures_equal(sign(key, candidate_sts), claim.signature):
            break
        if not canonical_request:
            string_to_sign, canonical_request = candidate_sts, candidate
    else:
        raise errors.signature_does_not_match(
            claim.access_key_id, string_to_sign, canonical_request
        )
    return Verified(
        signing=Signing(claim.access_key_id, key, claim.timestamp, scope, claim.signature),
        payload=mode,
        payload_sha256=expected_sha256,
        trailers=_trailers(fields),
        decoded_length=_decoded_length(fields),
        presigned=claim.presigned,
        security_token=claim.security_token,
    )


def _trailers(fields: dict[str, bytes]) -> tuple[str, ...]:
    value = _text(fields, "x-amz-trailer") or ""
    return tuple(name.strip().lower() for name in value.split(",") if name.strip())


def _decoded_length(fields: dict[str, bytes]) -> int | None:
    value = _text(fields, "x-amz-decoded-content-length")
    if value is None:
        return None
    if not value.isdigit() or not value.isascii():
        raise errors.invalid_argument(
            "x-amz-decoded-content-length must be a non-negative integer",
            "x-amz-decoded-content-length",
            value,
        )
    return int(value)
