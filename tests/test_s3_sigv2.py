"""SigV2, as botocore signs it (``HmacV1Auth`` headers, ``HmacV1QueryAuth`` presigned URLs,
which boto3's ``generate_presigned_url`` and ``aws s3 presign`` make at their defaults):
what botocore signs verifies; a changed byte, an unknown key or an expired URL does not."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from unittest import mock

import pytest
from botocore.auth import HmacV1Auth, HmacV1QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from stowage.api.s3 import sigv2
from stowage.api.s3.errors import S3Error
from stowage.api.s3.sigv4 import PayloadMode

from .s3sign import ACCESS_KEY, SECRET, Raw, _raw, secret_for

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
CREDENTIALS = Credentials(ACCESS_KEY, SECRET)


def signed_v2(method: str, url: str, headers: dict[str, str] | None = None) -> Raw:
    request = AWSRequest(method=method, url=url, headers=headers or {})
    with mock.patch("botocore.auth.formatdate", return_value="Mon, 30 Nov 2026 12:00:00 GMT"):
        HmacV1Auth(CREDENTIALS).add_auth(request)
    return _raw(request, b"")


def presigned_v2(method: str, url: str, expires_in: int = 60) -> Raw:
    request = AWSRequest(method=method, url=url)
    with mock.patch("botocore.auth.time.time", return_value=NOW.timestamp()):
        HmacV1QueryAuth(CREDENTIALS, expires=expires_in).add_auth(request)
    return _raw(request, b"")


def check(raw: Raw, now: datetime = NOW) -> sigv2.Verified:
    assert sigv2.signed_with_v2(raw.query, raw.headers)
    return asyncio.run(sigv2.verify(raw.method, raw.path, raw.query, raw.headers, now, secret_for))


def refused(raw: Raw, now: datetime = NOW) -> str:
    with pytest.raises(S3Error) as failed:
        check(raw, now)
    return failed.value.code


URL = "http://127.0.0.1:9000/builds/nightly/a%20b%2Bc.tgz"


def test_what_botocore_signs_with_v2_headers_verifies() -> None:
    raw = signed_v2("PUT", URL, {"Content-Type": "application/gzip", "x-amz-meta-run": "7"})
    verified = check(raw)
    assert (verified.access_key_id, verified.payload) == (ACCESS_KEY, PayloadMode.UNSIGNED)
    assert not verified.presigned


def test_a_v2_presigned_url_verifies_until_it_expires() -> None:
    raw = presigned_v2("GET", URL + "?response-content-type=text%2Fplain", expires_in=60)
    assert check(raw).presigned
    assert refused(raw, NOW.replace(minute=2)) == "AccessDenied"


@pytest.mark.parametrize(
    "change",
    [
        lambda r: r.__class__(r.method, r.path.replace(b"nightly", b"nightlx"), r.query, r.headers),
        lambda r: r.__class__("DELETE", r.path, r.query, r.headers),
        lambda r: r.header("x-amz-meta-run", "8"),
        lambda r: r.header("content-type", "text/plain"),
    ],
)
def test_a_changed_request_does_not_verify(change: object) -> None:
    raw = signed_v2("PUT", URL, {"Content-Type": "application/gzip", "x-amz-meta-run": "7"})
    assert refused(change(raw)) == "SignatureDoesNotMatch"  # type: ignore[operator]


def test_an_unknown_key_and_a_skewed_clock_are_refused() -> None:
    raw = signed_v2("GET", URL)
    other = raw.header(
        "authorization", raw.get("authorization").replace(ACCESS_KEY, "STWNOSUCHKEY00000000")
    )
    assert refused(other) == "InvalidAccessKeyId"
    assert refused(raw, NOW.replace(hour=13)) == "RequestTimeTooSkewed"
