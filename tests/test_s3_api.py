"""The S3 API through boto3, as tools built on it use it, against ``stowage serve`` with its
S3 listener on a port of its own: buckets, objects, listings and errors, and the same
objects through the Djinn and Runloop APIs. Both deployment shapes."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree

import boto3
import httpx
import pytest
from botocore.client import BaseClient
from botocore.config import Config
from botocore.exceptions import ClientError
from botocore.handlers import set_list_objects_encoding_type_url

from stowage.processes import free_port, start_serve

from .backends import BACKENDS, backend_settings
from .harness import create_s3_key, listed_with_digests

SCOPES = "object:read,write,delete namespace:read,write,delete"
S3_XMLNS = "http://s3.amazonaws.com/doc/2006-03-01/"
VIRTUAL_HOST_DOMAIN = "s3.stowage.test"  # the tests reach it through 127.0.0.1


@dataclass
class S3Server:
    base: str  # the main API
    endpoint: str  # the S3 API
    token: str
    env: dict[str, str]

    def client(self, access_key_id: str, secret: str, **config: object) -> BaseClient:
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret,
            region_name="us-east-1",
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}, **config),
        )

    def create_key(self, user: str = "admin", scopes: str = SCOPES) -> tuple[str, str]:
        return create_s3_key(self.env, user, scopes)


@pytest.fixture(scope="module", params=BACKENDS)
def s3_server(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    pg_base_url: str | None,
) -> Iterator[S3Server]:
    with backend_settings(request.param, request, pg_base_url) as extra:
        data = tmp_path_factory.mktemp("s3-data")
        port = free_port()
        env = {
            **os.environ,
            **{f"STOWAGE_{k.upper()}": v for k, v in extra.items()},
            "STOWAGE_DATA_DIR": str(data),
            "STOWAGE_S3_API_PORT": str(port),
            "STOWAGE_S3_API_DOMAIN": VIRTUAL_HOST_DOMAIN,
        }
        process, base = start_serve(data, env=env)
        try:
            token = (Path(data) / "admin-token").read_text().strip()
            yield S3Server(base, f"http://127.0.0.1:{port}", token, env)
        finally:
            process.terminate()
            process.wait(timeout=30)


@pytest.fixture(scope="module")
def key(s3_server: S3Server) -> tuple[str, str]:
    return s3_server.create_key()


@pytest.fixture(scope="module")
def s3(s3_server: S3Server, key: tuple[str, str]) -> BaseClient:
    return s3_server.client(*key)


def error_code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


def test_buckets_are_created_listed_headed_and_deleted(s3: BaseClient) -> None:
    s3.create_bucket(Bucket="first-bucket.v1")
    assert "first-bucket.v1" in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    s3.head_bucket(Bucket="first-bucket.v1")
    assert s3.get_bucket_location(Bucket="first-bucket.v1")["LocationConstraint"] is None
    with pytest.raises(ClientError) as again:
        s3.create_bucket(Bucket="first-bucket.v1")
    assert error_code(again) == "BucketAlreadyOwnedByYou"
    s3.delete_bucket(Bucket="first-bucket.v1")
    with pytest.raises(ClientError) as gone:
        s3.head_bucket(Bucket="first-bucket.v1")
    assert gone.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


@pytest.mark.parametrize("name", ["ab", "Upper", "a..b", "-dash", "192.168.0.1", "x" * 64])
def test_an_invalid_bucket_name_is_refused(s3: BaseClient, name: str) -> None:
    """botocore lets these through (its check is only the character set): the server
    refuses them, and makes nothing."""
    with pytest.raises(ClientError) as refused:
        s3.create_bucket(Bucket=name)
    assert error_code(refused) == "InvalidBucketName"
    assert name not in [b["Name"] for b in s3.list_buckets()["Buckets"]]


def test_objects_round_trip_with_ranges_and_replacement(s3: BaseClient) -> None:
    s3.create_bucket(Bucket="objects")
    body = os.urandom(300_000)
    put = s3.put_object(Bucket="objects", Key="dir/file one.bin", Body=body)
    assert put["ETag"] == f'"{hashlib.md5(body).hexdigest()}"'
    got = s3.get_object(Bucket="objects", Key="dir/file one.bin")
    assert got["Body"].read() == body and got["ContentLength"] == len(body)
    part = s3.get_object(Bucket="objects", Key="dir/file one.bin", Range="bytes=10-19")
    assert part["Body"].read() == body[10:20]
    assert s3.head_object(Bucket="objects", Key="dir/file one.bin")["ContentLength"] == len(body)

    s3.put_object(Bucket="objects", Key="dir/file one.bin", Body=b"second")
    assert s3.get_object(Bucket="objects", Key="dir/file one.bin")["Body"].read() == b"second"
    listed = s3.list_objects_v2(Bucket="objects")["Contents"]
    assert [(o["Key"], o["Size"]) for o in listed] == [("dir/file one.bin", 6)]

    s3.delete_object(Bucket="objects", Key="dir/file one.bin")
    s3.delete_object(Bucket="objects", Key="dir/file one.bin")  # again: still 204
    with pytest.raises(ClientError) as missing:
        s3.get_object(Bucket="objects", Key="dir/file one.bin")
    assert error_code(missing) == "NoSuchKey"
    s3.delete_bucket(Bucket="objects")


def test_listings_roll_up_common_prefixes_and_page_in_key_order(s3: BaseClient) -> None:
    s3.create_bucket(Bucket="listing")
    keys = ["a/1", "a/2", "b", "c/x/1", "c/y", "d", "é"]
    for key in keys:
        s3.put_object(Bucket="listing", Key=key, Body=key.encode())
    v2 = s3.list_objects_v2(Bucket="listing", Delimiter="/")
    assert [o["Key"] for o in v2["Contents"]] == ["b", "d", "é"]
    assert [p["Prefix"] for p in v2["CommonPrefixes"]] == ["a/", "c/"]
    assert [o["Key"] for o in s3.list_objects_v2(Bucket="listing", Prefix="é")["Contents"]] == ["é"]
    inside = s3.list_objects_v2(Bucket="listing", Prefix="c/", Delimiter="/")
    assert [o["Key"] for o in inside["Contents"]] == ["c/y"]
    assert [p["Prefix"] for p in inside["CommonPrefixes"]] == ["c/x/"]

    pages = s3.get_paginator("list_objects_v2").paginate(
        Bucket="listing", PaginationConfig={"PageSize": 2}
    )
    assert [o["Key"] for page in pages for o in page.get("Contents", [])] == keys
    v1 = s3.get_paginator("list_objects").paginate(
        Bucket="listing", PaginationConfig={"PageSize": 3}
    )
    assert [o["Key"] for page in v1 for o in page.get("Contents", [])] == keys
    for operation in ("list_objects", "list_objects_v2"):
        # A page that ends on a CommonPrefix: the next starts after all of its keys.
        one_by_one = s3.get_paginator(operation).paginate(
            Bucket="listing", Delimiter="/", PaginationConfig={"PageSize": 1}
        )
        walked = [
            o.get("Key") or o.get("Prefix")
            for page in one_by_one
            for o in page.get("Contents", []) + page.get("CommonPrefixes", [])
        ]
        assert walked == ["a/", "b", "c/", "d", "é"]

    with pytest.raises(ClientError) as full:
        s3.delete_bucket(Bucket="listing")
    assert error_code(full) == "BucketNotEmpty"


def test_keys_may_hold_any_character_but_nul(s3: BaseClient) -> None:
    s3.create_bucket(Bucket="odd-keys")
    keys = ["line\nbreak", "tab\there", "cr\rhere", "bell\x07", " ", "<&>", "ä/ö", "k" * 1024]
    for name in keys:
        s3.put_object(Bucket="odd-keys", Key=name, Body=name.encode())
        assert s3.get_object(Bucket="odd-keys", Key=name)["Body"].read() == name.encode()
    listed = s3.list_objects_v2(Bucket="odd-keys")["Contents"]  # boto3 asks for url encoding
    assert [o["Key"] for o in listed] == sorted(keys, key=lambda k: k.encode())
    # Without url encoding (which boto3 asks for unless told not to), a CR is written as a
    # reference, which parsers keep a CR.
    event = "before-parameter-build.s3.ListObjects"
    s3.meta.events.unregister(event, set_list_objects_encoding_type_url)
    try:
        params = {"Bucket": "odd-keys", "Prefix": "cr"}
        url = s3.generate_presigned_url("list_objects", Params=params)
    finally:
        s3.meta.events.register(event, set_list_objects_encoding_type_url)
    plain = ElementTree.fromstring(httpx.get(url).content)
    assert [k.text for k in plain.iter(f"{{{S3_XMLNS}}}Key")] == ["cr\rhere"]
    with pytest.raises(ClientError) as too_long:
        s3.put_object(Bucket="odd-keys", Key="k" * 1025, Body=b"")
    assert error_code(too_long) == "KeyTooLongError"


def test_listings_name_the_owner_as_s3_does(s3: BaseClient) -> None:
    s3.create_bucket(Bucket="owned")
    s3.put_object(Bucket="owned", Key="a", Body=b"a")
    owner = s3.list_buckets()["Owner"]
    assert owner["DisplayName"] == "admin"
    assert s3.list_objects(Bucket="owned")["Contents"][0]["Owner"] == owner
    assert "Owner" not in s3.list_objects_v2(Bucket="owned")["Contents"][0]
    fetched = s3.list_objects_v2(Bucket="owned", FetchOwner=True)["Contents"][0]
    assert fetched["Owner"] == owner


def test_an_object_put_through_s3_is_the_object_djinn_and_runloop_show(
    s3_server: S3Server, s3: BaseClient
) -> None:
    s3.create_bucket(Bucket="shared")
    s3.put_object(
        Bucket="shared",
        Key="report.txt",
        Body=b"hello from s3\n",
        ContentType="text/plain",
        Metadata={"build": "42"},
    )
    head = s3.head_object(Bucket="shared", Key="report.txt")
    assert (head["ContentType"], head["Metadata"]) == ("text/plain", {"build": "42"})
    auth = {"Authorization": f"Bearer {s3_server.token}"}
    with httpx.Client(base_url=s3_server.base, headers=auth) as api:
        listed = api.get("/n/admin/shared/-/objects")
        assert listed.status_code == 200, listed.text
        [djinn] = listed.json()
        assert (djinn["name"], djinn["size"]) == ("report.txt", 14)
        runloop = api.get(f"/v1/objects/{djinn['object_id']}").json()
        assert (runloop["name"], runloop["state"]) == ("report.txt", "READ_ONLY")
        assert runloop["metadata"] == {"build": "42"}
        raw = api.get(f"/objects/{djinn['id']}", headers={"Accept": "application/octet-stream"})
        assert raw.content == b"hello from s3\n"


def test_bad_credentials_get_s3_errors_and_write_nothing(
    s3_server: S3Server, s3: BaseClient
) -> None:
    s3.create_bucket(Bucket="guarded")
    key_id, secret = s3_server.create_key()
    for client, code in (
        (s3_server.client(key_id, "x" * 40), "SignatureDoesNotMatch"),
        (s3_server.client("STW" + "A" * 17, secret), "InvalidAccessKeyId"),
    ):
        with pytest.raises(ClientError) as refused:
            client.put_object(Bucket="guarded", Key="nope", Body=b"x")
        assert error_code(refused) == code
    anonymous = httpx.put(f"{s3_server.endpoint}/guarded/nope", content=b"x")
    assert anonymous.status_code == 403 and b"<Code>AccessDenied</Code>" in anonymous.content
    assert "Contents" not in s3.list_objects_v2(Bucket="guarded")


def test_unserved_operations_answer_not_implemented_and_unset_ones_read_as_unset(
    s3: BaseClient,
) -> None:
    s3.create_bucket(Bucket="plain")
    with pytest.raises(ClientError) as refused:
        s3.put_bucket_versioning(Bucket="plain", VersioningConfiguration={"Status": "Enabled"})
    assert error_code(refused) == "NotImplemented"
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 501
    # What was never set reads as S3 reads it on a bucket where it never was.
    assert "Status" not in s3.get_bucket_versioning(Bucket="plain")
    assert s3.get_bucket_request_payment(Bucket="plain")["Payer"] == "BucketOwner"
    assert "LoggingEnabled" not in s3.get_bucket_logging(Bucket="plain")
    for read, code in (
        (s3.get_bucket_policy, "NoSuchBucketPolicy"),
        (s3.get_bucket_cors, "NoSuchCORSConfiguration"),
        (s3.get_bucket_lifecycle_configuration, "NoSuchLifecycleConfiguration"),
        (s3.get_bucket_encryption, "ServerSideEncryptionConfigurationNotFoundError"),
        (s3.get_bucket_tagging, "NoSuchTagSet"),
        (s3.get_object_lock_configuration, "ObjectLockConfigurationNotFoundError"),
        (s3.get_public_access_block, "NoSuchPublicAccessBlockConfiguration"),
    ):
        with pytest.raises(ClientError) as none:
            read(Bucket="plain")
        assert error_code(none) == code
    with pytest.raises(ClientError) as missing:
        s3.get_bucket_versioning(Bucket="no-such-bucket")
    assert error_code(missing) == "NoSuchBucket"


@pytest.mark.parametrize("signature_version", [None, "s3v4"])
def test_presigned_urls_work_through_plain_http(
    s3_server: S3Server, key: tuple[str, str], signature_version: str | None
) -> None:
    """boto3 presigns with SigV2 at its defaults, and with SigV4 when asked."""
    client = s3_server.client(*key, signature_version=signature_version)
    bucket = f"presigned-{signature_version or 'v2'}"
    client.create_bucket(Bucket=bucket)
    params = {"Bucket": bucket, "Key": "dir/a b.txt"}
    put_url = client.generate_presigned_url("put_object", Params=params, ExpiresIn=60)
    assert httpx.put(put_url, content=b"through a link").status_code == 200
    assert client.get_object(**params)["Body"].read() == b"through a link"
    get_url = client.generate_presigned_url("get_object", Params=params, ExpiresIn=60)
    assert httpx.get(get_url).content == b"through a link"
    tampered = get_url.replace("a%20b", "a%20c")
    assert httpx.get(tampered).status_code == 403


def test_delete_objects_deletes_each_key_and_reports_it(s3: BaseClient) -> None:
    s3.create_bucket(Bucket="batch")
    for key in ("one", "two", "dir/three"):
        s3.put_object(Bucket="batch", Key=key, Body=b"x")
    asked = [{"Key": k} for k in ("one", "dir/three", "never-there")]
    done = s3.delete_objects(Bucket="batch", Delete={"Objects": asked})
    assert sorted(d["Key"] for d in done["Deleted"]) == ["dir/three", "never-there", "one"]
    assert "Errors" not in done
    assert [o["Key"] for o in s3.list_objects_v2(Bucket="batch")["Contents"]] == ["two"]
    quiet = s3.delete_objects(Bucket="batch", Delete={"Objects": [{"Key": "two"}], "Quiet": True})
    assert "Deleted" not in quiet
    s3.delete_bucket(Bucket="batch")


def test_copy_object_keeps_or_replaces_what_the_source_says(s3: BaseClient) -> None:
    s3.create_bucket(Bucket="copy-from")
    s3.create_bucket(Bucket="copy-to")
    body = os.urandom(70_000)
    s3.put_object(
        Bucket="copy-from", Key="src", Body=body, ContentType="image/png", Metadata={"a": "1"}
    )
    copied = s3.copy_object(Bucket="copy-to", Key="kept", CopySource="copy-from/src")
    assert copied["CopyObjectResult"]["ETag"] == f'"{hashlib.md5(body).hexdigest()}"'
    kept = s3.get_object(Bucket="copy-to", Key="kept")
    assert (kept["Body"].read(), kept["ContentType"], kept["Metadata"]) == (
        body,
        "image/png",
        {"a": "1"},
    )
    s3.copy_object(
        Bucket="copy-to",
        Key="replaced",
        CopySource={"Bucket": "copy-from", "Key": "src"},
        MetadataDirective="REPLACE",
        ContentType="text/plain",
        Metadata={"b": "2"},
    )
    replaced = s3.head_object(Bucket="copy-to", Key="replaced")
    assert (replaced["ContentType"], replaced["Metadata"]) == ("text/plain", {"b": "2"})

    for source, code in (("copy-from/absent", "NoSuchKey"), ("no-such-bucket/src", "NoSuchBucket")):
        with pytest.raises(ClientError) as refused:
            s3.copy_object(Bucket="copy-to", Key="x", CopySource=source)
        assert error_code(refused) == code
    with pytest.raises(ClientError) as itself:
        s3.copy_object(Bucket="copy-from", Key="src", CopySource="copy-from/src")
    assert error_code(itself) == "InvalidRequest"
    with pytest.raises(ClientError) as unmet:
        s3.copy_object(
            Bucket="copy-to", Key="x", CopySource="copy-from/src", CopySourceIfMatch='"0"'
        )
    assert error_code(unmet) == "PreconditionFailed"


def test_a_conditional_put_writes_only_a_key_that_holds_nothing(s3: BaseClient) -> None:
    s3.create_bucket(Bucket="once")
    s3.put_object(Bucket="once", Key="lock", Body=b"first", IfNoneMatch="*")
    with pytest.raises(ClientError) as taken:
        s3.put_object(Bucket="once", Key="lock", Body=b"second", IfNoneMatch="*")
    assert error_code(taken) == "PreconditionFailed"
    assert s3.get_object(Bucket="once", Key="lock")["Body"].read() == b"first"


def test_an_if_match_put_replaces_only_the_object_it_names(s3: BaseClient) -> None:
    s3.create_bucket(Bucket="swap")
    first = s3.put_object(Bucket="swap", Key="state", Body=b"v1")["ETag"]
    with pytest.raises(ClientError) as absent:
        s3.put_object(Bucket="swap", Key="other", Body=b"x", IfMatch=first)
    assert error_code(absent) == "NoSuchKey"
    second = s3.put_object(Bucket="swap", Key="state", Body=b"v2", IfMatch=first)["ETag"]
    # The first ETag no longer names what the key holds: a writer that read v1 loses.
    with pytest.raises(ClientError) as stale:
        s3.put_object(Bucket="swap", Key="state", Body=b"v3", IfMatch=first)
    assert error_code(stale) == "PreconditionFailed"
    assert s3.get_object(Bucket="swap", Key="state")["Body"].read() == b"v2"
    # An unquoted ETag, and * for whatever the key holds, as S3 takes them.
    s3.put_object(Bucket="swap", Key="state", Body=b"v4", IfMatch=second.strip('"'))
    s3.put_object(Bucket="swap", Key="state", Body=b"v5", IfMatch="*")
    assert s3.get_object(Bucket="swap", Key="state")["Body"].read() == b"v5"
    assert [o["Key"] for o in s3.list_objects_v2(Bucket="swap")["Contents"]] == ["state"]


MIB = 1024 * 1024


def test_a_multipart_upload_assembles_its_parts_in_order(
    s3_server: S3Server, s3: BaseClient
) -> None:
    s3.create_bucket(Bucket="multipart")
    parts = [os.urandom(5 * MIB), os.urandom(5 * MIB), os.urandom(1000)]
    started = s3.create_multipart_upload(
        Bucket="multipart", Key="big.bin", ContentType="application/x-tar", Metadata={"m": "1"}
    )
    upload = {"Bucket": "multipart", "Key": "big.bin", "UploadId": started["UploadId"]}
    etags = {}
    for number in (3, 1, 2):  # any order, and a part sent again replaces the first
        if number == 1:
            s3.upload_part(**upload, PartNumber=1, Body=b"replaced below")
        etags[number] = s3.upload_part(**upload, PartNumber=number, Body=parts[number - 1])["ETag"]
    listed = s3.list_parts(**upload)["Parts"]
    assert [(p["PartNumber"], p["Size"]) for p in listed] == [(1, 5 * MIB), (2, 5 * MIB), (3, 1000)]
    in_progress = s3.list_multipart_uploads(Bucket="multipart")["Uploads"]
    assert [(u["Key"], u["UploadId"]) for u in in_progress] == [("big.bin", upload["UploadId"])]

    chosen = [{"PartNumber": n, "ETag": etags[n]} for n in (1, 2, 3)]
    done = s3.complete_multipart_upload(**upload, MultipartUpload={"Parts": chosen})
    md5s = b"".join(bytes.fromhex(etags[n].strip('"')) for n in (1, 2, 3))
    assert done["ETag"] == f'"{hashlib.md5(md5s).hexdigest()}-3"'
    whole = b"".join(parts)
    got = s3.get_object(Bucket="multipart", Key="big.bin")
    assert got["Body"].read() == whole
    assert (got["ETag"], got["ContentType"], got["Metadata"]) == (
        done["ETag"],
        "application/x-tar",
        {"m": "1"},
    )
    assert "Uploads" not in s3.list_multipart_uploads(Bucket="multipart")
    with pytest.raises(ClientError) as again:
        s3.complete_multipart_upload(**upload, MultipartUpload={"Parts": chosen})
    assert error_code(again) == "NoSuchUpload"

    auth = {"Authorization": f"Bearer {s3_server.token}"}
    with httpx.Client(base_url=s3_server.base, headers=auth) as api:
        djinn = listed_with_digests(api, "/n/admin/multipart/-/objects", "big.bin")
    assert (djinn["size"], djinn["sha256"]) == (len(whole), hashlib.sha256(whole).hexdigest())


def test_multipart_refusals_and_abort(s3: BaseClient) -> None:
    s3.create_bucket(Bucket="multipart-no")
    started = s3.create_multipart_upload(Bucket="multipart-no", Key="k")
    upload = {"Bucket": "multipart-no", "Key": "k", "UploadId": started["UploadId"]}
    small = s3.upload_part(**upload, PartNumber=1, Body=b"tiny")["ETag"]
    last = s3.upload_part(**upload, PartNumber=2, Body=b"end")["ETag"]
    for chosen, code in (
        ([{"PartNumber": 1, "ETag": small}, {"PartNumber": 2, "ETag": last}], "EntityTooSmall"),
        ([{"PartNumber": 2, "ETag": last}, {"PartNumber": 1, "ETag": small}], "InvalidPartOrder"),
        ([{"PartNumber": 1, "ETag": '"00000000000000000000000000000000"'}], "InvalidPart"),
        ([{"PartNumber": 7, "ETag": small}], "InvalidPart"),
    ):
        with pytest.raises(ClientError) as refused:
            s3.complete_multipart_upload(**upload, MultipartUpload={"Parts": chosen})
        assert error_code(refused) == code
    s3.abort_multipart_upload(**upload)
    with pytest.raises(ClientError) as gone:
        s3.upload_part(**upload, PartNumber=3, Body=b"late")
    assert error_code(gone) == "NoSuchUpload"
    assert "Contents" not in s3.list_objects_v2(Bucket="multipart-no")


def test_boto3_upload_file_goes_multipart_and_back(s3: BaseClient, tmp_path: Path) -> None:
    from boto3.s3.transfer import TransferConfig

    s3.create_bucket(Bucket="transfer")
    source = tmp_path / "artifact.tgz"
    source.write_bytes(os.urandom(12 * MIB + 123))
    config = TransferConfig(multipart_threshold=5 * MIB, multipart_chunksize=5 * MIB)
    s3.upload_file(str(source), "transfer", "ci/artifact.tgz", Config=config)
    assert s3.head_object(Bucket="transfer", Key="ci/artifact.tgz")["ETag"].endswith('-3"')
    back = tmp_path / "back.tgz"
    s3.download_file("transfer", "ci/artifact.tgz", str(back), Config=config)
    assert back.read_bytes() == source.read_bytes()


def test_upload_part_copy_makes_parts_of_other_objects_bytes(
    s3_server: S3Server, s3: BaseClient
) -> None:
    s3.create_bucket(Bucket="part-from")
    s3.create_bucket(Bucket="part-to")
    source = os.urandom(6 * MIB + 100)
    s3.put_object(Bucket="part-from", Key="dir/src", Body=source)
    started = s3.create_multipart_upload(Bucket="part-to", Key="joined")
    upload = {"Bucket": "part-to", "Key": "joined", "UploadId": started["UploadId"]}
    whole = s3.upload_part_copy(**upload, PartNumber=1, CopySource="part-from/dir/src")
    ranged = s3.upload_part_copy(
        **upload,
        PartNumber=2,
        CopySource={"Bucket": "part-from", "Key": "dir/src"},
        CopySourceRange=f"bytes=100-{5 * MIB + 99}",
        CopySourceIfMatch=f'"{hashlib.md5(source).hexdigest()}"',
    )
    tail = s3.upload_part(**upload, PartNumber=3, Body=b"tail")
    expected = [source, source[100 : 5 * MIB + 100], b"tail"]
    etags = [whole["CopyPartResult"]["ETag"], ranged["CopyPartResult"]["ETag"], tail["ETag"]]
    assert etags == [f'"{hashlib.md5(p).hexdigest()}"' for p in expected]
    assert [p["Size"] for p in s3.list_parts(**upload)["Parts"]] == [len(p) for p in expected]

    for extra, code, status in (
        ({"CopySourceRange": f"bytes=0-{len(source)}"}, "InvalidRange", 400),
        ({"CopySourceRange": "bytes=0-"}, "InvalidArgument", 400),
        ({"CopySourceRange": "bytes=9-1"}, "InvalidArgument", 400),
        ({"CopySourceIfNoneMatch": etags[0]}, "PreconditionFailed", 412),
        ({"CopySource": "part-from/absent"}, "NoSuchKey", 404),
        ({"CopySource": "part-from/dir/src?versionId=v2"}, "NotImplemented", 501),
    ):
        asked = {"PartNumber": 4, "CopySource": "part-from/dir/src", **extra}
        with pytest.raises(ClientError) as refused:
            s3.upload_part_copy(**upload, **asked)
        assert (error_code(refused), refused.value.response["Error"].get("Key", "")) == (
            code,
            "absent" if code == "NoSuchKey" else "",
        )
        assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == status
    unreadable = s3_server.client(*s3_server.create_key(scopes="object:write namespace:read"))
    own = unreadable.create_multipart_upload(Bucket="part-to", Key="other")
    with pytest.raises(ClientError) as denied:
        unreadable.upload_part_copy(
            Bucket="part-to",
            Key="other",
            UploadId=own["UploadId"],
            PartNumber=1,
            CopySource="part-from/dir/src",
        )
    assert error_code(denied) == "AccessDenied"

    chosen = [{"PartNumber": n, "ETag": etags[n - 1]} for n in (1, 2, 3)]
    done = s3.complete_multipart_upload(**upload, MultipartUpload={"Parts": chosen})
    md5s = b"".join(hashlib.md5(p).digest() for p in expected)
    assert done["ETag"] == f'"{hashlib.md5(md5s).hexdigest()}-3"'
    assert s3.get_object(Bucket="part-to", Key="joined")["Body"].read() == b"".join(expected)


def test_a_managed_copy_of_a_large_object_goes_part_by_part(s3: BaseClient) -> None:
    """boto3's ``copy`` copies an object past its multipart threshold with UploadPartCopy,
    one range a part."""
    from boto3.s3.transfer import TransferConfig

    s3.create_bucket(Bucket="managed-copy")
    source = os.urandom(12 * MIB + 123)
    s3.put_object(Bucket="managed-copy", Key="src", Body=source)
    config = TransferConfig(multipart_threshold=5 * MIB, multipart_chunksize=5 * MIB)
    s3.copy({"Bucket": "managed-copy", "Key": "src"}, "managed-copy", "dst", Config=config)
    got = s3.get_object(Bucket="managed-copy", Key="dst")
    parts = [source[i : i + 5 * MIB] for i in range(0, len(source), 5 * MIB)]
    md5s = b"".join(hashlib.md5(p).digest() for p in parts)
    assert got["ETag"] == f'"{hashlib.md5(md5s).hexdigest()}-3"'
    assert got["Body"].read() == source


def test_a_refusal_before_the_body_is_read_leaves_the_connection_usable(
    s3_server: S3Server,
) -> None:
    """Refused before its body was read, a request's bytes must not be taken for the
    next request on the connection (clients pool connections)."""
    with httpx.Client(limits=httpx.Limits(max_connections=1)) as one_connection:
        for _ in range(3):
            refused = one_connection.put(f"{s3_server.endpoint}/b-x/k", content=b"x" * 10_000)
            assert refused.status_code == 404 and b"<Code>NoSuchBucket</Code>" in refused.content
        big = one_connection.put(f"{s3_server.endpoint}/b-x/k", content=b"x" * 1_000_000)
        assert big.status_code == 404 and big.headers["connection"] == "close"
        after = one_connection.get(f"{s3_server.endpoint}/")
        assert after.status_code == 403 and b"<Code>AccessDenied</Code>" in after.content


def test_an_empty_put_that_expects_100_continue_closes_its_connection(s3: BaseClient) -> None:
    """Granian answers it without a 100 Continue, which the botocore inside aws-cli v1
    then misreads on the connection's next upload (app._continue_withheld)."""
    s3.create_bucket(Bucket="expect")
    url = s3.generate_presigned_url(
        "put_object", Params={"Bucket": "expect", "Key": "k"}, ExpiresIn=60
    )
    expecting = {"Expect": "100-continue"}
    empty = httpx.put(url, content=b"", headers=expecting)
    assert (empty.status_code, empty.headers.get("connection")) == (200, "close")
    full = httpx.put(url, content=b"x", headers=expecting)
    assert (full.status_code, full.headers.get("connection")) == (200, None)


def test_a_bad_signature_is_refused_before_an_unserved_operation_is(
    s3_server: S3Server, key: tuple[str, str], s3: BaseClient
) -> None:
    """S3 checks authentication first: a forged request learns nothing of what is served."""
    s3.create_bucket(Bucket="precedence")
    forged = s3_server.client(key[0], "y" * 40)
    with pytest.raises(ClientError) as refused:
        forged.get_bucket_acl(Bucket="precedence")
    assert error_code(refused) == "SignatureDoesNotMatch"


def test_object_tags_are_kept_replaced_copied_and_counted(s3: BaseClient) -> None:
    s3.create_bucket(Bucket="tagged")
    s3.put_object(Bucket="tagged", Key="build.tgz", Body=b"x", Tagging="stage=ci&keep")
    tags = s3.get_object_tagging(Bucket="tagged", Key="build.tgz")["TagSet"]
    assert tags == [{"Key": "keep", "Value": ""}, {"Key": "stage", "Value": "ci"}]
    assert (
        s3.head_object(Bucket="tagged", Key="build.tgz")["ResponseMetadata"]["HTTPHeaders"][
            "x-amz-tagging-count"
        ]
        == "2"
    )
    s3.put_object_tagging(
        Bucket="tagged",
        Key="build.tgz",
        Tagging={"TagSet": [{"Key": f"k{i}", "Value": "v" * 256} for i in range(10)]},
    )
    assert len(s3.get_object_tagging(Bucket="tagged", Key="build.tgz")["TagSet"]) == 10
    # A copy keeps the source's tags unless told to replace them.
    s3.copy_object(Bucket="tagged", Key="kept", CopySource="tagged/build.tgz")
    assert len(s3.get_object_tagging(Bucket="tagged", Key="kept")["TagSet"]) == 10
    s3.copy_object(
        Bucket="tagged",
        Key="new",
        CopySource="tagged/build.tgz",
        TaggingDirective="REPLACE",
        Tagging="only=one",
    )
    assert s3.get_object_tagging(Bucket="tagged", Key="new")["TagSet"] == [
        {"Key": "only", "Value": "one"}
    ]
    for tag_set in (
        [{"Key": f"k{i}", "Value": "v"} for i in range(11)],
        [{"Key": "k" * 129, "Value": "v"}],
        [{"Key": "k", "Value": "v" * 257}],
    ):
        with pytest.raises(ClientError) as refused:
            s3.put_object_tagging(Bucket="tagged", Key="new", Tagging={"TagSet": tag_set})
        assert error_code(refused) == "InvalidTag"
    upload = s3.create_multipart_upload(Bucket="tagged", Key="parts", Tagging="from=parts")
    part = s3.upload_part(
        Bucket="tagged", Key="parts", UploadId=upload["UploadId"], PartNumber=1, Body=b"p"
    )
    s3.complete_multipart_upload(
        Bucket="tagged",
        Key="parts",
        UploadId=upload["UploadId"],
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]},
    )
    assert s3.get_object_tagging(Bucket="tagged", Key="parts")["TagSet"] == [
        {"Key": "from", "Value": "parts"}
    ]
    s3.delete_object_tagging(Bucket="tagged", Key="build.tgz")
    assert s3.get_object_tagging(Bucket="tagged", Key="build.tgz")["TagSet"] == []
    assert (
        "x-amz-tagging-count"
        not in s3.head_object(Bucket="tagged", Key="build.tgz")["ResponseMetadata"]["HTTPHeaders"]
    )
    assert s3.get_object(Bucket="tagged", Key="build.tgz")["Body"].read() == b"x"
