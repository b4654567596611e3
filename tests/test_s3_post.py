"""POST Object: browser form uploads signed by a policy, as boto3's generate_presigned_post
makes them (SigV4) and as older tools and S3's own examples do (SigV2), through httpx."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
from botocore.client import BaseClient
from botocore.exceptions import ClientError

from .test_s3_api import S3Server, error_code, key, s3, s3_server

__all__ = ["key", "s3", "s3_server"]  # the fixtures this module shares

BUCKET = "form-drop"


@pytest.fixture(scope="module")
def bucket(s3: BaseClient) -> str:
    s3.create_bucket(Bucket=BUCKET)
    return BUCKET


def signed_v2(key: tuple[str, str], conditions: list[Any], expires_in: int = 600) -> dict[str, str]:
    """The fields of a SigV2 policy form, as S3's documentation builds them."""
    expiration = datetime.now(UTC) + timedelta(seconds=expires_in)
    document = {
        "expiration": expiration.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "conditions": conditions,
    }
    policy = base64.b64encode(orjson.dumps(document)).decode()
    digest = hmac.new(key[1].encode(), policy.encode(), hashlib.sha1).digest()
    return {
        "AWSAccessKeyId": key[0],
        "policy": policy,
        "signature": base64.b64encode(digest).decode(),
    }


def post(
    server: S3Server, fields: dict[str, str], content: bytes, name: str = "f.txt"
) -> httpx.Response:
    return httpx.post(f"{server.endpoint}/{BUCKET}", data=fields, files={"file": (name, content)})


def code(reply: httpx.Response) -> str:
    return reply.content.split(b"<Code>")[1].split(b"</Code>")[0].decode()


CONDITIONS: list[Any] = [
    {"bucket": BUCKET},
    ["starts-with", "$key", "uploads/"],
    {"acl": "private"},
    ["starts-with", "$Content-Type", "text/"],
    ["content-length-range", 0, 1024],
]


def test_a_form_signed_by_boto3_uploads_its_file(
    s3_server: S3Server, s3: BaseClient, bucket: str
) -> None:
    form = s3.generate_presigned_post(
        bucket,
        "uploads/${filename}",
        Fields={"Content-Type": "text/plain", "x-amz-meta-origin": "browser"},
        Conditions=[
            ["starts-with", "$key", "uploads/"],
            {"Content-Type": "text/plain"},
            {"x-amz-meta-origin": "browser"},
            ["content-length-range", 1, 1024],
        ],
    )
    reply = httpx.post(form["url"], data=form["fields"], files={"file": ("notes.txt", b"hi")})
    assert reply.status_code == 204, reply.text
    got = s3.get_object(Bucket=bucket, Key="uploads/notes.txt")
    assert got["Body"].read() == b"hi"
    assert got["ContentType"] == "text/plain" and got["Metadata"] == {"origin": "browser"}
    assert reply.headers["etag"] == got["ETag"]


def test_a_sigv2_form_answers_as_asked(
    s3_server: S3Server, key: tuple[str, str], s3: BaseClient, bucket: str
) -> None:
    fields = {
        "key": "uploads/a.txt",
        **signed_v2(key, CONDITIONS),
        "acl": "private",
        "Content-Type": "text/plain",
        "success_action_status": "201",
        "x-ignore-note": "not checked",
    }
    reply = post(s3_server, fields, b"first")
    assert reply.status_code == 201
    assert (
        b"<Key>uploads/a.txt</Key>" in reply.content
        and b"<Bucket>form-drop</Bucket>" in reply.content
    )
    assert s3.get_object(Bucket=bucket, Key="uploads/a.txt")["Body"].read() == b"first"
    redirected = post(s3_server, {**fields, "success_action_status": "404"}, b"again")
    assert redirected.status_code == 204  # a status S3 does not offer: its default


@pytest.mark.parametrize(
    ("change", "status", "expected"),
    [
        ({"key": "elsewhere/a.txt"}, 403, "AccessDenied"),  # starts-with $key fails
        ({"x-amz-meta-extra": "1"}, 403, "AccessDenied"),  # a field no condition names
        ({"signature": "AAAA"}, 403, "SignatureDoesNotMatch"),
        ({"AWSAccessKeyId": "STWNOSUCHKEY000000000"}, 403, "InvalidAccessKeyId"),
        ({"policy": "bm90IGpzb24="}, 400, "InvalidPolicyDocument"),  # "not json", signed
    ],
)
def test_forms_the_policy_refuses_store_nothing(
    s3_server: S3Server,
    key: tuple[str, str],
    s3: BaseClient,
    bucket: str,
    change: dict[str, str],
    status: int,
    expected: str,
) -> None:
    fields = {"key": "uploads/refused.txt", **signed_v2(key, CONDITIONS), "acl": "private"}
    fields["Content-Type"] = "text/plain"
    if change.get("policy"):  # a policy that is not JSON, signed as it is
        digest = hmac.new(key[1].encode(), change["policy"].encode(), hashlib.sha1).digest()
        change = {**change, "signature": base64.b64encode(digest).decode()}
    reply = post(s3_server, {**fields, **change}, b"x")
    assert (reply.status_code, code(reply)) == (status, expected), reply.text
    with pytest.raises(ClientError) as absent:
        s3.head_object(Bucket=bucket, Key=change.get("key", "uploads/refused.txt"))
    assert error_code(absent) == "404"


def test_the_policy_bounds_time_and_size(
    s3_server: S3Server, key: tuple[str, str], s3: BaseClient, bucket: str
) -> None:
    base = {"key": "uploads/sized.txt", "acl": "private", "Content-Type": "text/plain"}
    expired = post(s3_server, {**base, **signed_v2(key, CONDITIONS, expires_in=-60)}, b"x")
    assert (expired.status_code, code(expired)) == (403, "AccessDenied")
    assert b"Policy expired" in expired.content
    too_big = post(s3_server, {**base, **signed_v2(key, CONDITIONS)}, b"x" * 1025)
    assert (too_big.status_code, code(too_big)) == (400, "EntityTooLarge")
    floor = [*CONDITIONS[:-1], ["content-length-range", 10, 20]]
    too_small = post(s3_server, {**base, **signed_v2(key, floor)}, b"x")
    assert (too_small.status_code, code(too_small)) == (400, "EntityTooSmall")
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="uploads/sized.txt")
    unsigned = post(s3_server, base, b"x")
    assert (unsigned.status_code, code(unsigned)) == (403, "AccessDenied")
    no_key = post(s3_server, {k: v for k, v in base.items() if k != "key"}, b"x")
    assert (no_key.status_code, code(no_key)) == (400, "InvalidArgument")


def test_a_form_may_tag_its_object(
    s3_server: S3Server, key: tuple[str, str], s3: BaseClient, bucket: str
) -> None:
    tagging = "<Tagging><TagSet><Tag><Key>from</Key><Value>form</Value></Tag></TagSet></Tagging>"
    conditions = [*CONDITIONS, {"tagging": tagging}]
    fields = {"key": "uploads/tagged.txt", **signed_v2(key, conditions), "acl": "private"}
    fields |= {"Content-Type": "text/plain", "tagging": tagging}
    assert post(s3_server, fields, b"t").status_code == 204
    tags = s3.get_object_tagging(Bucket=bucket, Key="uploads/tagged.txt")["TagSet"]
    assert tags == [{"Key": "from", "Value": "form"}]
