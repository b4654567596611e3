"""SigV4 verification (api/s3/sigv4.py) against requests signed by botocore's own signers
and against AWS's published S3 examples."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import timedelta

import pytest

from stowage.api.s3.errors import S3Error
from stowage.api.s3.sigv4 import PayloadMode, Verified, canonical_uris

from .aio import run
from .s3sign import ACCESS_KEY, NOW, Raw, aws_example, presign, sign

URL = "http://s3.example.test/bucket/key.txt"


def ok(raw: Raw, **kwargs: object) -> Verified:
    verified = run(raw.verify(**kwargs))  # type: ignore[arg-type]
    assert verified is not None
    assert verified.access_key_id == ACCESS_KEY
    return verified


def fails(raw: Raw, code: str, **kwargs: object) -> S3Error:
    with pytest.raises(S3Error) as caught:
        run(raw.verify(**kwargs))  # type: ignore[arg-type]
    assert caught.value.code == code, caught.value
    return caught.value


# AWS's "Signature Calculations for the Authorization Header" examples (S3 API reference):
# the same credentials, 20130524T000000Z, us-east-1, and published signatures.


def test_aws_example_get_object() -> None:
    headers = {
        "host": "examplebucket.s3.amazonaws.com",
        "range": "bytes=0-9",
        "x-amz-content-sha256": hashlib.sha256(b"").hexdigest(),
        "x-amz-date": "20130524T000000Z",
    }
    signature = "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
    verified = ok(aws_example("GET", b"/test.txt", headers, signature))
    assert verified.payload is PayloadMode.SHA256
    assert verified.payload_sha256 == hashlib.sha256(b"").hexdigest()


def test_aws_example_put_object_sends_dollar_and_signs_it_encoded() -> None:
    headers = {
        "date": "Fri, 24 May 2013 00:00:00 GMT",
        "host": "examplebucket.s3.amazonaws.com",
        "x-amz-content-sha256": hashlib.sha256(b"Welcome to Amazon S3.").hexdigest(),
        "x-amz-date": "20130524T000000Z",
        "x-amz-storage-class": "REDUCED_REDUNDANCY",
    }
    signature = "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"
    # The example's request line has /test$file.text; it signs /test%24file.text.
    raw = aws_example("PUT", b"/test$file.text", headers, signature)
    ok(raw)
    ok(replace(raw, path=b"/test%24file.text"))


def test_aws_example_presigned_get() -> None:
    query = (
        b"X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2F"
        b"us-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&"
        b"X-Amz-SignedHeaders=host&X-Amz-Signature="
        b"aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
    )
    raw = Raw("GET", b"/test.txt", query, [(b"host", b"examplebucket.s3.amazonaws.com")])
    verified = ok(raw)
    assert verified.presigned and verified.payload is PayloadMode.UNSIGNED
    fails(raw, "AccessDenied", now=NOW + timedelta(seconds=86401))


# Every payload mode, signed by botocore.


def test_signed_payload_put() -> None:
    body = b"hello world"
    verified = ok(sign("PUT", URL, {"Content-Type": "text/plain"}, body))
    assert verified.payload is PayloadMode.SHA256
    assert verified.payload_sha256 == hashlib.sha256(body).hexdigest()
    assert verified.signing.scope == "20130524/us-east-1/s3/aws4_request"
    assert not verified.presigned


def test_unsigned_payload() -> None:
    raw = sign("PUT", URL, {}, b"data", unsigned_payload=True)
    assert raw.get("x-amz-content-sha256") == "UNSIGNED-PAYLOAD"
    verified = ok(raw)
    assert verified.payload is PayloadMode.UNSIGNED and verified.payload_sha256 is None


@pytest.mark.parametrize(
    "mode", [PayloadMode.STREAMING_SIGNED, PayloadMode.STREAMING_SIGNED_TRAILER]
)
def test_signed_streaming_seed(mode: PayloadMode) -> None:
    headers = {"Content-Encoding": "aws-chunked", "X-Amz-Decoded-Content-Length": "66560"}
    if mode.trailer:
        headers["X-Amz-Trailer"] = "x-amz-checksum-crc32c"
    verified = ok(sign("PUT", URL, headers, streaming=mode.value))
    assert verified.payload is mode and verified.payload.signed_chunks
    assert verified.decoded_length == 66560
    assert verified.trailers == (("x-amz-checksum-crc32c",) if mode.trailer else ())
    assert (
        verified.signing.seed
        == sign("PUT", URL, headers, streaming=mode.value)
        .get("authorization")
        .rsplit("Signature=", 1)[1]
    )


def test_unsigned_trailer_as_botocore_sends_it() -> None:
    raw = sign("PUT", URL, {}, b"x" * 100, trailer="crc32")
    verified = ok(raw)
    assert verified.payload is PayloadMode.STREAMING_UNSIGNED_TRAILER
    assert verified.trailers == ("x-amz-checksum-crc32",)
    assert verified.decoded_length == 100


def test_any_region_signs_with_its_own_key() -> None:
    a = ok(sign("GET", URL, region="eu-central-1"))
    b = ok(sign("GET", URL, region="garage"))
    assert a.signing.scope.split("/")[1] == "eu-central-1"
    assert a.signing.key != b.signing.key


def test_anonymous_is_none() -> None:
    raw = Raw("GET", b"/bucket/key", b"", [(b"host", b"s3.example.test")])
    assert run(raw.verify()) is None


# Encoding: keys and values that need it sign and verify as AWS does.

AWKWARD = [
    "/bucket/with space.txt",
    "/bucket/plus+sign",
    "/bucket/tilde~and.dots-_",
    "/bucket/percent%25literal",
    "/bucket/ünïcödé/日本",
    "/bucket/a/b//c/../d",
    "/bucket/semi;colon=eq&amp",
    "/bucket/star*paren()!'",
]


@pytest.mark.parametrize("path", AWKWARD)
def test_paths_that_need_encoding(path: str) -> None:
    from urllib.parse import quote

    raw = sign("GET", "http://s3.example.test" + quote(path, safe="/~%"))
    ok(raw)
    flipped = raw.path.replace(b"bucket", b"buckeT")
    fails(replace(raw, path=flipped), "SignatureDoesNotMatch")


@pytest.mark.parametrize(
    "query",
    [
        "prefix=a b&delimiter=/",
        "prefix=a+b",
        "prefix=%7Etilde&marker=~x",
        "uploads",
        "versionId=&acl",
        "prefix=ünï&list-type=2",
        "a=2&a=1&A=3&b=%25",
    ],
)
def test_queries_that_need_encoding(query: str) -> None:
    from urllib.parse import quote

    encoded = "&".join(
        "=".join(quote(part, safe="") for part in piece.split("=", 1)) for piece in query.split("&")
    )
    raw = sign("GET", f"{URL}?{encoded}")
    ok(raw)
    fails(replace(raw, query=raw.query + b"&x"), "SignatureDoesNotMatch")


def test_presigned_with_awkward_key_and_query() -> None:
    raw = presign(
        "GET", "http://s3.example.test/bucket/a%20b/%E2%9C%93?response-content-type=x%2By"
    )
    ok(raw)


# Tampering: one byte changed anywhere signed fails.


def test_flipped_bytes_fail() -> None:
    raw = sign("PUT", URL + "?tagging", {"X-Amz-Meta-Colour": "blue"}, b"body")
    ok(raw)
    fails(replace(raw, method="POST"), "SignatureDoesNotMatch")
    fails(replace(raw, path=b"/bucket/key.txT"), "SignatureDoesNotMatch")
    fails(replace(raw, query=b"tagginG"), "SignatureDoesNotMatch")
    fails(raw.header("x-amz-meta-colour", "bluE"), "SignatureDoesNotMatch")
    fails(raw.header("host", "s3.example.tesT"), "SignatureDoesNotMatch")
    signature = raw.get("authorization")
    fails(raw.header("authorization", signature[:-1] + "0"), "SignatureDoesNotMatch")
    # A declared payload hash is signed: swapping it for UNSIGNED-PAYLOAD fails.
    fails(raw.header("x-amz-content-sha256", "UNSIGNED-PAYLOAD"), "SignatureDoesNotMatch")


def test_signature_error_echoes_what_was_signed() -> None:
    raw = sign("GET", URL)
    error = fails(replace(raw, path=b"/bucket/other"), "SignatureDoesNotMatch")
    assert error.status == 403
    assert error.extra["AWSAccessKeyId"] == ACCESS_KEY
    assert error.extra["CanonicalRequest"].startswith("GET\n/bucket/other\n")
    assert error.extra["StringToSign"].startswith("AWS4-HMAC-SHA256\n20130524T000000Z\n")


def test_header_values_trimmed_and_joined() -> None:
    raw = sign("GET", URL, {"X-Amz-Meta-A": "two  spaces"})
    ok(raw.header("x-amz-meta-a", "\t two     spaces   "))
    fails(raw.header("x-amz-meta-a", "two_spaces"), "SignatureDoesNotMatch")
    joined = sign("GET", URL, {"X-Amz-Meta-B": "one,two"})
    split = joined.without("x-amz-meta-b")
    ok(
        replace(
            split, headers=[*split.headers, (b"X-Amz-Meta-B", b"one"), (b"x-amz-meta-b", b" two")]
        )
    )


def test_unsigned_amz_header_is_refused() -> None:
    raw = sign("PUT", URL, {}, b"x").header("x-amz-acl", "public-read")
    error = fails(raw, "AccessDenied")
    assert error.extra["HeadersNotSigned"] == "x-amz-acl"


# Keys, time, malformed credentials.


def test_unknown_key() -> None:
    error = fails(sign("GET", URL, access_key="AKIDUNKNOWN"), "InvalidAccessKeyId")
    assert error.status == 403 and error.extra["AWSAccessKeyId"] == "AKIDUNKNOWN"


@pytest.mark.parametrize("minutes", [-16, 16])
def test_clock_skew(minutes: int) -> None:
    raw = sign("GET", URL)
    error = fails(raw, "RequestTimeTooSkewed", now=NOW + timedelta(minutes=minutes))
    assert error.status == 403
    assert error.extra["RequestTime"] == "20130524T000000Z"
    assert error.extra["MaxAllowedSkewMilliseconds"] == "900000"
    ok(raw, now=NOW + timedelta(minutes=14))


def test_missing_date() -> None:
    error = fails(sign("GET", URL).without("x-amz-date"), "AccessDenied")
    assert "Date or x-amz-date" in error.message


def test_http_date_header_is_the_request_time_without_x_amz_date() -> None:
    raw = sign("GET", URL).without("x-amz-date").header("date", "Fri, 24 May 2013 00:20:00 GMT")
    error = fails(raw, "RequestTimeTooSkewed")
    assert error.extra["RequestTime"] == "20130524T002000Z"


def test_missing_content_sha256() -> None:
    error = fails(sign("GET", URL).without("x-amz-content-sha256"), "InvalidRequest")
    assert error.status == 400 and "x-amz-content-sha256" in error.message


def test_bad_content_sha256() -> None:
    raw = sign("GET", URL, {"X-Amz-Content-SHA256": "sha256"})
    fails(raw.header("x-amz-content-sha256", "nonsense"), "InvalidArgument")


def _with_credential(raw: Raw, credential: str) -> Raw:
    authorization = raw.get("authorization")
    start = authorization.index("Credential=") + len("Credential=")
    end = authorization.index(",", start)
    return raw.header("authorization", authorization[:start] + credential + authorization[end:])


@pytest.mark.parametrize(
    ("credential", "words"),
    [
        ("AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_reques", "incorrect terminal"),
        ("AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/ec2/aws4_request", "incorrect service"),
        ("AKIAIOSFODNN7EXAMPLE/2013-05-24/us-east-1/s3/aws4_request", "incorrect date"),
        ("AKIAIOSFODNN7EXAMPLE/20131324/us-east-1/s3/aws4_request", "incorrect date"),
        ("AKIAIOSFODNN7EXAMPLE/20130525/us-east-1/s3/aws4_request", "Invalid credential date"),
        ("AKIAIOSFODNN7EXAMPLE/20130524/s3/aws4_request", "mal-formed"),
    ],
)
def test_malformed_credential(credential: str, words: str) -> None:
    error = fails(_with_credential(sign("GET", URL), credential), "AuthorizationHeaderMalformed")
    assert error.status == 400 and words in error.message


def test_malformed_authorization() -> None:
    raw = sign("GET", URL)
    fails(
        raw.header("authorization", "AWS4-HMAC-SHA256 Credential=x"), "AuthorizationHeaderMalformed"
    )
    fails(raw.header("authorization", "AWS AKIAIOSFODNN7EXAMPLE:sig"), "InvalidRequest")
    unsigned_host = raw.get("authorization").replace("SignedHeaders=host;", "SignedHeaders=")
    fails(raw.header("authorization", unsigned_host), "AuthorizationHeaderMalformed")


def test_two_auth_mechanisms() -> None:
    raw = presign("GET", URL)
    fails(raw.header("authorization", sign("GET", URL).get("authorization")), "InvalidArgument")


# Presigned URLs.


def test_presigned_get_and_put() -> None:
    verified = ok(presign("GET", URL))
    assert verified.presigned and verified.payload is PayloadMode.UNSIGNED
    ok(presign("PUT", URL, {"Content-Type": "text/plain"}))


def test_presigned_expiry() -> None:
    raw = presign("GET", URL, expires=60)
    ok(raw, now=NOW + timedelta(seconds=60))
    error = fails(raw, "AccessDenied", now=NOW + timedelta(seconds=61))
    assert error.message == "Request has expired" and error.extra["X-Amz-Expires"] == "60"


def test_presigned_in_the_future() -> None:
    raw = presign("GET", URL)
    ok(raw, now=NOW - timedelta(minutes=14))
    fails(raw, "AccessDenied", now=NOW - timedelta(minutes=16))


def test_presigned_expires_limit() -> None:
    ok(presign("GET", URL, expires=604800), now=NOW + timedelta(days=6))
    error = fails(presign("GET", URL, expires=604801), "AuthorizationQueryParametersError")
    assert "604800" in error.message


def test_presigned_tampering() -> None:
    raw = presign("GET", URL + "?versionId=1")
    fails(
        replace(raw, query=raw.query.replace(b"versionId=1", b"versionId=2")),
        "SignatureDoesNotMatch",
    )
    fails(replace(raw, path=b"/bucket/other"), "SignatureDoesNotMatch")
    fails(
        replace(raw, query=raw.query.replace(b"Expires=3600", b"Expires=3601")),
        "SignatureDoesNotMatch",
    )


def test_presigned_missing_parameter() -> None:
    raw = presign("GET", URL)
    query = b"&".join(p for p in raw.query.split(b"&") if not p.startswith(b"X-Amz-Date"))
    fails(replace(raw, query=query), "AuthorizationQueryParametersError")


def test_presigned_credential_errors_are_query_errors() -> None:
    raw = presign("GET", URL)
    query = raw.query.replace(b"%2Fs3%2F", b"%2Fec2%2F")
    error = fails(replace(raw, query=query), "AuthorizationQueryParametersError")
    assert "incorrect service" in error.message


def test_presigned_security_token_passed_through() -> None:
    verified = ok(presign("GET", URL, token="session/token+="))
    assert verified.security_token == "session/token+="


def test_canonical_uri_candidates() -> None:
    assert canonical_uris(b"/a%20b") == ["/a%20b"]
    assert canonical_uris(b"/a b/%7e") == ["/a b/%7e", "/a%20b/~"]
    assert canonical_uris(b"/a%2Fb") == ["/a%2Fb"]
    assert canonical_uris(b"") == ["/"]
