"""What S3 keeps with an object besides its bytes, type and metadata, through boto3 and
raw signed requests against ``stowage serve``, both deployment shapes: the standard
headers a writer sets, GetObject's ``response-*`` overrides, and checksums (stored,
computed when only named, returned on request, and derived for multipart uploads)."""

from __future__ import annotations

import base64
import hashlib
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from awscrt import checksums as crt
from boto3.s3.transfer import TransferConfig
from botocore.client import BaseClient
from botocore.exceptions import ClientError

from . import test_s3_api
from .s3sign import sign
from .test_s3_api import S3Server, error_code

# The server and access key of test_s3_api's fixtures (a server of this module's own).
s3_server = test_s3_api.s3_server
key = test_s3_api.key

MIB = 1024 * 1024
EXPIRES = datetime(2031, 1, 2, 3, 4, 5, tzinfo=UTC)
STANDARD = {
    "CacheControl": "max-age=60, public",
    "ContentDisposition": 'attachment; filename="report.csv"',
    "ContentEncoding": "gzip",
    "ContentLanguage": "fr-CA",
    "Expires": EXPIRES,
}
# boto3 ≥ 1.36 computes a CRC32 of every upload by default; "when_required" only when the
# operation needs one (then uploads carry none unless asked).
CHECKSUM_CONFIGS = {
    "default": {},
    "when_required": {
        "request_checksum_calculation": "when_required",
        "response_checksum_validation": "when_required",
    },
}


def b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode()


def crc32(data: bytes) -> str:
    return b64(zlib.crc32(data).to_bytes(4, "big"))


@pytest.fixture(scope="module", params=list(CHECKSUM_CONFIGS))
def client(request: pytest.FixtureRequest, s3_server: S3Server, key: tuple[str, str]) -> BaseClient:
    return s3_server.client(*key, **CHECKSUM_CONFIGS[request.param])


@pytest.fixture(scope="module")
def bucket(s3_server: S3Server, key: tuple[str, str]) -> Iterator[str]:
    s3_server.client(*key).create_bucket(Bucket="kept-headers")
    yield "kept-headers"


def shown(response: dict[str, object]) -> dict[str, object]:
    """The standard headers as boto3 parses them from a GetObject or HeadObject."""
    return {name: response.get(name) for name in STANDARD}


def test_standard_headers_and_empty_metadata_round_trip(client: BaseClient, bucket: str) -> None:
    metadata = {"empty": "", "team": "ci"}
    client.put_object(
        Bucket=bucket, Key="report.csv.gz", Body=b"x,y\n", Metadata=metadata, **STANDARD
    )
    got = client.get_object(Bucket=bucket, Key="report.csv.gz")
    assert got["Body"].read() == b"x,y\n"
    head = client.head_object(Bucket=bucket, Key="report.csv.gz")
    for response in (got, head):
        assert shown(response) == STANDARD
        assert response["Metadata"] == metadata

    plain = client.put_object(Bucket=bucket, Key="plain", Body=b"p")
    assert plain["ETag"]
    assert shown(client.head_object(Bucket=bucket, Key="plain")) == dict.fromkeys(STANDARD)


def test_a_copy_keeps_the_source_headers_or_replaces_them(client: BaseClient, bucket: str) -> None:
    client.put_object(Bucket=bucket, Key="copy-source", Body=b"s", **STANDARD)
    client.copy_object(Bucket=bucket, Key="copy-kept", CopySource=f"{bucket}/copy-source")
    assert shown(client.head_object(Bucket=bucket, Key="copy-kept")) == STANDARD
    client.copy_object(
        Bucket=bucket,
        Key="copy-replaced",
        CopySource=f"{bucket}/copy-source",
        MetadataDirective="REPLACE",
        CacheControl="no-store",
    )
    replaced = shown(client.head_object(Bucket=bucket, Key="copy-replaced"))
    assert replaced == {**dict.fromkeys(STANDARD), "CacheControl": "no-store"}


def test_response_overrides_on_get_and_through_presigned_urls(
    s3_server: S3Server, key: tuple[str, str], bucket: str
) -> None:
    s3 = s3_server.client(*key)
    s3.put_object(Bucket=bucket, Key="shown.txt", Body=b"hello", CacheControl="max-age=5")
    asked = {
        "ResponseContentType": "text/csv",
        "ResponseContentLanguage": "de",
        "ResponseExpires": EXPIRES,
        "ResponseCacheControl": "no-cache",
        "ResponseContentDisposition": 'inline; filename="a.csv"',
        "ResponseContentEncoding": "identity",
    }
    got = s3.get_object(Bucket=bucket, Key="shown.txt", **asked)
    assert got["Body"].read() == b"hello"
    assert (got["ContentType"], got["ContentLanguage"], got["Expires"]) == (
        "text/csv",
        "de",
        EXPIRES,
    )
    assert (got["CacheControl"], got["ContentEncoding"]) == ("no-cache", "identity")
    assert got["ContentDisposition"] == 'inline; filename="a.csv"'
    head = s3.head_object(Bucket=bucket, Key="shown.txt", ResponseCacheControl="private")
    assert head["CacheControl"] == "private"

    params = {"Bucket": bucket, "Key": "shown.txt", "ResponseContentDisposition": "attachment"}
    for version in ("s3v4", None):  # boto3 presigns with SigV2 at its defaults
        presigner = s3_server.client(*key, signature_version=version)
        url = presigner.generate_presigned_url("get_object", Params=params, ExpiresIn=60)
        answer = httpx.get(url)
        assert (answer.status_code, answer.content) == (200, b"hello")
        assert answer.headers["content-disposition"] == "attachment"
        assert answer.headers["cache-control"] == "max-age=5"  # kept where not overridden

    anonymous = httpx.get(
        f"{s3_server.endpoint}/{bucket}/shown.txt", params={"response-content-type": "text/csv"}
    )
    assert anonymous.status_code == 400
    assert "<Code>InvalidRequest</Code>" in anonymous.text


def test_checksums_are_stored_and_returned_when_asked(client: BaseClient, bucket: str) -> None:
    body = b"checked bytes" * 1000
    put = client.put_object(Bucket=bucket, Key="sha", Body=body, ChecksumAlgorithm="SHA256")
    sha256 = b64(hashlib.sha256(body).digest())
    assert (put["ChecksumSHA256"], put["ChecksumType"]) == (sha256, "FULL_OBJECT")
    got = client.get_object(Bucket=bucket, Key="sha", ChecksumMode="ENABLED")
    assert got["ChecksumSHA256"] == sha256
    assert got["Body"].read() == body  # boto3 validates the body against it as it reads
    assert type(got["Body"]).__name__ == "StreamingChecksumBody"
    head = client.head_object(Bucket=bucket, Key="sha", ChecksumMode="ENABLED")
    assert (head["ChecksumSHA256"], head["ChecksumType"]) == (sha256, "FULL_OBJECT")
    assert "ChecksumSHA256" not in client.head_object(Bucket=bucket, Key="sha")
    ranged = client.get_object(Bucket=bucket, Key="sha", Range="bytes=0-9", ChecksumMode="ENABLED")
    assert ranged["Body"].read() == body[:10] and "ChecksumSHA256" not in ranged

    # Without asking: boto3's default computes a CRC32, "when_required" sends none.
    defaults = client.meta.config.request_checksum_calculation == "when_supported"
    unasked = client.put_object(Bucket=bucket, Key="crc", Body=body)
    expected = crc32(body) if defaults else None
    assert unasked.get("ChecksumCRC32") == expected
    got = client.get_object(Bucket=bucket, Key="crc", ChecksumMode="ENABLED")
    assert got.get("ChecksumCRC32") == expected and got["Body"].read() == body


def test_a_copy_keeps_the_checksum_or_computes_the_one_asked(
    client: BaseClient, bucket: str
) -> None:
    body = b"copied" * 100
    client.put_object(Bucket=bucket, Key="sum-source", Body=body, ChecksumAlgorithm="CRC32")
    kept = client.copy_object(Bucket=bucket, Key="sum-kept", CopySource=f"{bucket}/sum-source")
    assert kept["CopyObjectResult"]["ChecksumCRC32"] == crc32(body)
    head = client.head_object(Bucket=bucket, Key="sum-kept", ChecksumMode="ENABLED")
    assert head["ChecksumCRC32"] == crc32(body)
    other = client.copy_object(
        Bucket=bucket, Key="sum-sha1", CopySource=f"{bucket}/sum-source", ChecksumAlgorithm="SHA1"
    )
    assert other["CopyObjectResult"]["ChecksumSHA1"] == b64(hashlib.sha1(body).digest())


def raw_put(
    s3_server: S3Server,
    key: tuple[str, str],
    path: str,
    body: bytes,
    headers: dict[str, str],
    trailer: str | None = None,
) -> httpx.Response:
    """A PutObject signed as botocore signs it, with what boto3 does not send over plain
    HTTP: an aws-chunked body with a checksum trailer, or an algorithm without a value."""
    url = f"{s3_server.endpoint}{path}"
    access_key, secret = key
    raw = sign(
        "PUT",
        url,
        headers,
        body,
        unsigned_payload=trailer is not None,
        trailer=trailer,
        now=datetime.now(UTC),
        access_key=access_key,
        secret=secret,
    )
    return httpx.put(
        url, headers=[(n.decode(), v.decode()) for n, v in raw.headers], content=raw.body
    )


def test_aws_chunked_is_a_transfer_detail_not_a_content_encoding(
    s3_server: S3Server, key: tuple[str, str], bucket: str
) -> None:
    s3 = s3_server.client(*key)
    body = b"trailered" * 500
    for name, encoding, kept in (("gz", "gzip", "gzip"), ("bare", None, None)):
        headers = {"Content-Encoding": encoding} if encoding else {}
        put = raw_put(s3_server, key, f"/{bucket}/{name}", body, headers, trailer="crc32")
        assert put.status_code == 200, put.text
        assert put.headers["x-amz-checksum-crc32"] == crc32(body)
        head = s3.head_object(Bucket=bucket, Key=name, ChecksumMode="ENABLED")
        assert (head.get("ContentEncoding"), head["ChecksumCRC32"]) == (kept, crc32(body))
        assert s3.get_object(Bucket=bucket, Key=name)["Body"].read() == body


def test_a_named_algorithm_without_a_value_is_computed_by_the_server(
    s3_server: S3Server, key: tuple[str, str], bucket: str
) -> None:
    s3 = s3_server.client(*key)
    body = b"computed here" * 300
    named = {"x-amz-sdk-checksum-algorithm": "CRC32C"}
    put = raw_put(s3_server, key, f"/{bucket}/named", body, named)
    crc32c = b64(crt.crc32c(body).to_bytes(4, "big"))
    assert (put.status_code, put.headers["x-amz-checksum-crc32c"]) == (200, crc32c)
    got = s3.get_object(Bucket=bucket, Key="named", ChecksumMode="ENABLED")
    assert got["ChecksumCRC32C"] == crc32c and got["Body"].read() == body

    for headers, code in (
        ({"x-amz-sdk-checksum-algorithm": "MD5"}, "InvalidRequest"),
        ({"x-amz-checksum-sha1": b64(hashlib.sha1(b"other").digest())}, "BadDigest"),
        (
            {**named, "x-amz-checksum-sha1": b64(hashlib.sha1(body).digest())},
            "InvalidRequest",
        ),
    ):
        refused = raw_put(s3_server, key, f"/{bucket}/refused", body, headers)
        assert (refused.status_code, f"<Code>{code}</Code>" in refused.text) == (400, True)
    with pytest.raises(ClientError) as absent:
        s3.head_object(Bucket=bucket, Key="refused")
    assert error_code(absent) == "404"


def test_a_multipart_upload_gets_a_composite_checksum_of_its_parts(
    client: BaseClient, bucket: str
) -> None:
    parts = [b"a" * (5 * MIB), b"b" * 1000]
    started = client.create_multipart_upload(
        Bucket=bucket, Key="composite", ChecksumAlgorithm="SHA256", CacheControl="no-store"
    )
    assert (started["ChecksumAlgorithm"], started["ChecksumType"]) == ("SHA256", "COMPOSITE")
    upload = {"Bucket": bucket, "Key": "composite", "UploadId": started["UploadId"]}
    digests = [hashlib.sha256(p).digest() for p in parts]
    sent = []
    for number, data in enumerate(parts, 1):
        answer = client.upload_part(
            **upload, PartNumber=number, Body=data, ChecksumAlgorithm="SHA256"
        )
        assert answer["ChecksumSHA256"] == b64(digests[number - 1])
        sent.append(
            {
                "PartNumber": number,
                "ETag": answer["ETag"],
                "ChecksumSHA256": answer["ChecksumSHA256"],
            }
        )
    listed = client.list_parts(**upload)
    assert [p["ChecksumSHA256"] for p in listed["Parts"]] == [b64(d) for d in digests]
    assert (listed["ChecksumAlgorithm"], listed["ChecksumType"]) == ("SHA256", "COMPOSITE")

    # A completion naming checksums the parts were not sent with is refused, whole.
    wrong = [{**sent[0], "ChecksumSHA256": b64(hashlib.sha256(b"other").digest())}, sent[1]]
    with pytest.raises(ClientError) as refused:
        client.complete_multipart_upload(**upload, MultipartUpload={"Parts": wrong})
    assert error_code(refused) == "InvalidPart"
    other = [
        {k: v for k, v in sent[0].items() if k != "ChecksumSHA256"} | {"ChecksumCRC32": "AAAAAA=="}
    ]
    with pytest.raises(ClientError) as refused:
        client.complete_multipart_upload(**upload, MultipartUpload={"Parts": other})
    assert error_code(refused) == "InvalidRequest"
    done = client.complete_multipart_upload(**upload, MultipartUpload={"Parts": sent})
    composite = f"{b64(hashlib.sha256(b''.join(digests)).digest())}-2"
    assert (done["ChecksumSHA256"], done["ChecksumType"]) == (composite, "COMPOSITE")
    got = client.get_object(Bucket=bucket, Key="composite", ChecksumMode="ENABLED")
    assert (got["ChecksumSHA256"], got["ChecksumType"]) == (composite, "COMPOSITE")
    assert got["Body"].read() == b"".join(parts)  # boto3 skips checking a composite one
    assert got["CacheControl"] == "no-store"


def test_a_crc64nvme_multipart_upload_gets_the_checksum_of_its_bytes(
    client: BaseClient, bucket: str
) -> None:
    parts = [bytes(range(256)) * (5 * MIB // 256), b"tail" * 100]
    started = client.create_multipart_upload(
        Bucket=bucket, Key="full", ChecksumAlgorithm="CRC64NVME"
    )
    assert started["ChecksumType"] == "FULL_OBJECT"
    upload = {"Bucket": bucket, "Key": "full", "UploadId": started["UploadId"]}
    sent = []
    for number, data in enumerate(parts, 1):
        answer = client.upload_part(
            **upload, PartNumber=number, Body=data, ChecksumAlgorithm="CRC64NVME"
        )
        sent.append(
            {
                "PartNumber": number,
                "ETag": answer["ETag"],
                "ChecksumCRC64NVME": answer["ChecksumCRC64NVME"],
            }
        )
    done = client.complete_multipart_upload(**upload, MultipartUpload={"Parts": sent})
    whole = b"".join(parts)
    crc64 = b64(crt.crc64nvme(whole).to_bytes(8, "big"))
    assert (done["ChecksumCRC64NVME"], done["ChecksumType"]) == (crc64, "FULL_OBJECT")
    got = client.get_object(Bucket=bucket, Key="full", ChecksumMode="ENABLED")
    assert got["ChecksumCRC64NVME"] == crc64 and got["Body"].read() == whole


def test_multipart_checksum_refusals(client: BaseClient, bucket: str) -> None:
    for asked, code in (
        ({"ChecksumAlgorithm": "SHA1", "ChecksumType": "FULL_OBJECT"}, "InvalidRequest"),
        ({"ChecksumAlgorithm": "CRC64NVME", "ChecksumType": "COMPOSITE"}, "InvalidRequest"),
    ):
        with pytest.raises(ClientError) as refused:
            client.create_multipart_upload(Bucket=bucket, Key="never", **asked)
        assert error_code(refused) == code
    started = client.create_multipart_upload(Bucket=bucket, Key="never", ChecksumAlgorithm="SHA256")
    upload = {"Bucket": bucket, "Key": "never", "UploadId": started["UploadId"]}
    with pytest.raises(ClientError) as mismatch:
        client.upload_part(**upload, PartNumber=1, Body=b"x", ChecksumAlgorithm="CRC32")
    assert error_code(mismatch) == "InvalidRequest"
    assert "Parts" not in client.list_parts(**upload)
    client.abort_multipart_upload(**upload)


def test_upload_file_goes_multipart_with_the_checksums_boto3_chooses(
    client: BaseClient, bucket: str, tmp_path: Path
) -> None:
    source = tmp_path / "artifact.bin"
    source.write_bytes(b"0123456789abcdef" * (11 * MIB // 16))
    config = TransferConfig(multipart_threshold=5 * MIB, multipart_chunksize=5 * MIB)
    client.upload_file(str(source), bucket, "artifact.bin", Config=config)
    head = client.head_object(Bucket=bucket, Key="artifact.bin", ChecksumMode="ENABLED")
    if client.meta.config.request_checksum_calculation == "when_supported":
        assert head["ChecksumCRC32"].endswith("-3") and head["ChecksumType"] == "COMPOSITE"
    else:
        assert "ChecksumCRC32" not in head
    back = tmp_path / "back.bin"
    client.download_file(bucket, "artifact.bin", str(back), Config=config)
    assert back.read_bytes() == source.read_bytes()


@pytest.mark.parametrize("part", [False, True])
def test_a_body_unlike_its_declared_digests_is_kept_by_no_one(
    s3_server: S3Server, key: tuple[str, str], bucket: str, part: bool
) -> None:
    """The declared sha256 and md5 are checked on the digests the write computes: a body
    that differs is refused and leaves the key (or the part) as it was."""
    s3 = s3_server.client(*key)
    s3.put_object(Bucket=bucket, Key="k", Body=b"before")
    path, query = f"/{bucket}/k", ""
    if part:
        upload = s3.create_multipart_upload(Bucket=bucket, Key="k")["UploadId"]
        query = f"?partNumber=1&uploadId={upload}"
    url = f"{s3_server.endpoint}{path}{query}"
    signed = sign(
        "PUT", url, {}, b"declared", now=datetime.now(UTC), access_key=key[0], secret=key[1]
    )
    headers = [(n.decode(), v.decode()) for n, v in signed.headers]
    sha = httpx.put(url, headers=headers, content=b"received")  # same length, other bytes
    assert sha.status_code == 400 and b"<Code>XAmzContentSHA256Mismatch</Code>" in sha.content
    md5 = base64.b64encode(hashlib.md5(b"declared").digest()).decode()
    signed = sign(
        "PUT", url, {"Content-MD5": md5}, b"received", unsigned_payload=True,
        now=datetime.now(UTC), access_key=key[0], secret=key[1],
    )  # fmt: skip
    headers = [(n.decode(), v.decode()) for n, v in signed.headers]
    bad = httpx.put(url, headers=headers, content=b"received")
    assert bad.status_code == 400 and b"<Code>BadDigest</Code>" in bad.content
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"before"
    if part:
        listed = s3.list_parts(Bucket=bucket, Key="k", UploadId=upload)
        assert "Parts" not in listed or listed["Parts"] == []


@pytest.mark.parametrize("part", [False, True])
def test_a_body_without_content_length_is_411_and_writes_nothing(
    s3_server: S3Server, key: tuple[str, str], bucket: str, part: bool
) -> None:
    """S3 needs an object's or a part's length before its body: a chunked PUT without
    Content-Length (or x-amz-decoded-content-length) is 411 MissingContentLength, as on AWS."""
    s3 = s3_server.client(*key)
    s3.put_object(Bucket=bucket, Key="k", Body=b"before")
    query = ""
    if part:
        upload = s3.create_multipart_upload(Bucket=bucket, Key="k")["UploadId"]
        query = f"?partNumber=1&uploadId={upload}"
    url = f"{s3_server.endpoint}/{bucket}/k{query}"
    signed = sign(
        "PUT", url, {}, b"chunked", unsigned_payload=True,
        now=datetime.now(UTC), access_key=key[0], secret=key[1],
    )  # fmt: skip
    headers = [
        (n.decode(), v.decode()) for n, v in signed.headers if n.lower() != b"content-length"
    ]

    def chunked() -> Iterator[bytes]:
        yield b"chunked"

    refused = httpx.put(url, headers=headers, content=chunked())
    assert refused.status_code == 411, refused.text
    assert b"<Code>MissingContentLength</Code>" in refused.content
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"before"
    if part:
        listed = s3.list_parts(Bucket=bucket, Key="k", UploadId=upload)
        assert "Parts" not in listed or listed["Parts"] == []
