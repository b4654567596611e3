"""Buckets among several users through boto3 and plain HTTP: one bucket namespace for all,
other users' buckets reached by name, Djinn's visibility and collaborators as the access
rules, canned ACLs as visibility, and roots that share a name told apart by owner."""

from __future__ import annotations

import io
import subprocess
import sys
from collections.abc import Iterator
from urllib.parse import urlsplit

import boto3
import httpx
import pytest
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.client import BaseClient
from botocore.config import Config
from botocore.exceptions import ClientError

from stowage.core.access import RESOURCES

from .test_s3_api import VIRTUAL_HOST_DOMAIN, S3Server, error_code, key, s3, s3_server

__all__ = ["key", "s3", "s3_server"]  # the fixtures this module shares

ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"
SIGNED_IN = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers"


def cli(server: S3Server, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "stowage.cli", *args],
        env=server.env,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


class User:
    """A user with an S3 client and a Djinn token."""

    def __init__(self, server: S3Server, name: str) -> None:
        cli(server, "users", "create", name)
        self.name = name
        self.s3 = server.client(*server.create_key(name))
        every_scope = " ".join(f"{r}:read,write,delete" for r in RESOURCES)
        token = cli(server, "tokens", "create", "--user", name, "--scope", every_scope)
        self.djinn = httpx.Client(
            base_url=server.base, headers={"Authorization": f"Bearer {token}"}
        )


@pytest.fixture(scope="module")
def bob(s3_server: S3Server) -> User:
    return User(s3_server, "bob")


@pytest.fixture(scope="module")
def carol(s3_server: S3Server) -> User:
    return User(s3_server, "carol")


def refused(call: object, *args: object, **kwargs: object) -> str:
    """The S3 error code of a call that must fail."""
    assert callable(call)
    with pytest.raises(ClientError) as exc:
        call(*args, **kwargs)
    return error_code(exc)


def grants(s3: BaseClient, bucket: str) -> set[tuple[str, str]]:
    policy = s3.get_bucket_acl(Bucket=bucket)
    return {(g["Grantee"].get("URI", "owner"), g["Permission"]) for g in policy["Grants"]}


def test_a_bucket_name_is_held_by_one_user_and_found_by_every_other(
    s3_server: S3Server, s3: BaseClient, bob: User
) -> None:
    s3.create_bucket(Bucket="team-builds")
    s3.put_object(Bucket="team-builds", Key="app.tgz", Body=b"v1")
    assert refused(bob.s3.create_bucket, Bucket="team-builds") == "BucketAlreadyExists"
    assert refused(s3.create_bucket, Bucket="team-builds") == "BucketAlreadyOwnedByYou"
    # Private: found, but nothing in it is bob's to read, write or delete.
    assert refused(bob.s3.get_object, Bucket="team-builds", Key="app.tgz") == "AccessDenied"
    assert refused(bob.s3.list_objects_v2, Bucket="team-builds") == "AccessDenied"
    assert refused(bob.s3.head_bucket, Bucket="team-builds") == "403"
    assert refused(bob.s3.put_object, Bucket="team-builds", Key="x", Body=b"x") == "AccessDenied"
    assert refused(bob.s3.delete_bucket, Bucket="team-builds") == "AccessDenied"
    assert refused(bob.s3.get_object, Bucket="no-such-one", Key="k") == "NoSuchBucket"
    anonymous = httpx.get(f"{s3_server.endpoint}/team-builds/app.tgz")
    assert anonymous.status_code == 403 and b"<Code>AccessDenied</Code>" in anonymous.content
    # ListBuckets shows the caller's own buckets only, as S3's does.
    assert "team-builds" not in [b["Name"] for b in bob.s3.list_buckets()["Buckets"]]
    assert "Contents" in s3.list_objects_v2(Bucket="team-builds")


def test_canned_acls_are_the_namespace_visibility(
    s3_server: S3Server, s3: BaseClient, bob: User
) -> None:
    s3.create_bucket(Bucket="open-artefacts", ACL="public-read")
    s3.put_object(Bucket="open-artefacts", Key="log.txt", Body=b"hello", ACL="public-read")
    djinn = bob.djinn.get("/n/admin/open-artefacts").json()
    assert djinn["visibility"] == "public"
    assert grants(s3, "open-artefacts") == {("owner", "FULL_CONTROL"), (ALL_USERS, "READ")}
    # Anyone reads and lists; only the owner (and collaborators) write.
    assert bob.s3.get_object(Bucket="open-artefacts", Key="log.txt")["Body"].read() == b"hello"
    anonymous = httpx.get(f"{s3_server.endpoint}/open-artefacts/log.txt")
    assert anonymous.status_code == 200 and anonymous.content == b"hello"
    listed = httpx.get(f"{s3_server.endpoint}/open-artefacts?list-type=2")
    assert listed.status_code == 200 and b"<Key>log.txt</Key>" in listed.content
    assert httpx.put(f"{s3_server.endpoint}/open-artefacts/x", content=b"x").status_code == 403
    assert refused(bob.s3.put_object, Bucket="open-artefacts", Key="x", Body=b"x") == (
        "AccessDenied"
    )
    # authenticated-read is Djinn's internal: every signed-in user, not the anonymous.
    s3.put_bucket_acl(Bucket="open-artefacts", ACL="authenticated-read")
    assert grants(s3, "open-artefacts") == {("owner", "FULL_CONTROL"), (SIGNED_IN, "READ")}
    assert bob.s3.get_object(Bucket="open-artefacts", Key="log.txt")["Body"].read() == b"hello"
    assert httpx.get(f"{s3_server.endpoint}/open-artefacts/log.txt").status_code == 403
    s3.put_bucket_acl(Bucket="open-artefacts", ACL="private")
    assert grants(s3, "open-artefacts") == {("owner", "FULL_CONTROL")}
    assert refused(bob.s3.get_object, Bucket="open-artefacts", Key="log.txt") == "AccessDenied"
    assert refused(bob.s3.put_bucket_acl, Bucket="open-artefacts", ACL="public-read") == (
        "AccessDenied"
    )


def test_acls_that_a_visibility_cannot_grant_are_refused_and_change_nothing(
    s3: BaseClient,
) -> None:
    assert refused(s3.create_bucket, Bucket="rw-bucket", ACL="public-read-write") == (
        "NotImplemented"
    )
    assert "rw-bucket" not in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    s3.create_bucket(Bucket="closed-bucket", ACL="private")
    # An object's ACL is its bucket's: asking for what is true already is fine.
    s3.put_object(Bucket="closed-bucket", Key="a", Body=b"a", ACL="private")
    s3.put_object(Bucket="closed-bucket", Key="b", Body=b"b", ACL="bucket-owner-full-control")
    s3.put_object_acl(Bucket="closed-bucket", Key="a", ACL="private")
    assert refused(
        s3.put_object, Bucket="closed-bucket", Key="c", Body=b"c", ACL="public-read"
    ) == ("NotImplemented")
    assert refused(s3.put_object_acl, Bucket="closed-bucket", Key="a", ACL="public-read") == (
        "NotImplemented"
    )
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="closed-bucket")["Contents"]]
    assert keys == ["a", "b"]
    object_acl = s3.get_object_acl(Bucket="closed-bucket", Key="a")
    assert [g["Permission"] for g in object_acl["Grants"]] == ["FULL_CONTROL"]
    assert refused(s3.put_bucket_acl, Bucket="closed-bucket", ACL="no-such-acl") == (
        "InvalidArgument"
    )


def test_collaborators_write_and_read_but_only_the_owner_deletes_the_bucket(
    s3: BaseClient, bob: User, carol: User
) -> None:
    carol.s3.create_bucket(Bucket="carols-cache")
    carol.s3.put_object(Bucket="carols-cache", Key="seed", Body=b"seed")
    invite = carol.djinn.post("/n/carol/carols-cache/-/invites", json={"handle": "bob"})
    assert invite.status_code == 201, invite.text
    assert bob.djinn.patch(f"/invites/{invite.json()['id']}").status_code == 200
    bob.s3.put_object(Bucket="carols-cache", Key="from-bob", Body=b"bob")
    assert bob.s3.get_object(Bucket="carols-cache", Key="seed")["Body"].read() == b"seed"
    listed = carol.s3.list_objects_v2(Bucket="carols-cache")["Contents"]
    assert [o["Key"] for o in listed] == ["from-bob", "seed"]
    assert refused(bob.s3.delete_bucket, Bucket="carols-cache") == "AccessDenied"
    assert refused(s3.get_object, Bucket="carols-cache", Key="seed") == "AccessDenied"


def test_roots_that_share_a_name_are_told_apart_by_their_owner(
    s3: BaseClient, bob: User, carol: User
) -> None:
    for user in (bob, carol):  # Djinn names namespaces per owner
        made = user.djinn.post("/namespaces", json={"name": "dupe", "visibility": "public"})
        assert made.status_code == 201, made.text
        user.s3.put_object(Bucket="dupe", Key="who", Body=user.name.encode())
    # Each owner reaches their own by the bare name; anyone reaches either by owner.
    assert carol.s3.get_object(Bucket="dupe", Key="who")["Body"].read() == b"carol"
    assert s3.get_object(Bucket="dupe_bob", Key="who")["Body"].read() == b"bob"
    assert s3.get_object(Bucket="dupe_carol", Key="who")["Body"].read() == b"carol"
    # A third user naming no owner gets a clear refusal, not one of the two by chance.
    with pytest.raises(ClientError) as ambiguous:
        s3.get_object(Bucket="dupe", Key="who")
    assert error_code(ambiguous) == "InvalidRequest"
    assert "{bucket}_{owner}" in ambiguous.value.response["Error"]["Message"]
    assert refused(s3.get_object, Bucket="dupe_nobody", Key="who") == "NoSuchBucket"
    assert refused(s3.create_bucket, Bucket="dupe_admin") == "InvalidBucketName"


class _Body(io.BytesIO):
    def stream(self, **_: object) -> Iterator[bytes]:
        yield self.getvalue()


def _through_loopback(request: AWSPreparedRequest, **_: object) -> AWSResponse:
    """Send a request for ``{bucket}.s3.stowage.test`` to 127.0.0.1 with its Host header,
    as DNS would for a real domain."""
    url = urlsplit(request.url)
    loopback = url._replace(netloc=f"127.0.0.1:{url.port}").geturl()
    headers = {k: v for k, v in request.headers.items() if k.lower() != "host"}
    headers["Host"] = url.netloc
    body = request.body.read() if hasattr(request.body, "read") else request.body
    answer = httpx.request(request.method, loopback, headers=headers, content=body)
    return AWSResponse(request.url, answer.status_code, answer.headers, _Body(answer.content))


def test_buckets_are_reached_by_virtual_hosted_names_too(
    s3_server: S3Server, key: tuple[str, str], s3: BaseClient
) -> None:
    port = urlsplit(s3_server.endpoint).port
    hosted = boto3.client(
        "s3",
        endpoint_url=f"http://{VIRTUAL_HOST_DOMAIN}:{port}",
        aws_access_key_id=key[0],
        aws_secret_access_key=key[1],
        region_name="us-east-1",
        config=Config(s3={"addressing_style": "virtual"}, retries={"max_attempts": 1}),
    )
    hosted.meta.events.register("before-send.s3", _through_loopback)
    hosted.create_bucket(Bucket="hosted.bucket")
    hosted.put_object(Bucket="hosted.bucket", Key="dir/a b.txt", Body=b"virtual")
    assert s3.get_object(Bucket="hosted.bucket", Key="dir/a b.txt")["Body"].read() == b"virtual"
    got = hosted.get_object(Bucket="hosted.bucket", Key="dir/a b.txt")
    assert got["Body"].read() == b"virtual"
    listed = hosted.list_objects_v2(Bucket="hosted.bucket", Prefix="dir/")
    assert [o["Key"] for o in listed["Contents"]] == ["dir/a b.txt"]
    # Path-style requests name the bucket in the path, whatever the Host.
    assert "hosted.bucket" in [b["Name"] for b in hosted.list_buckets()["Buckets"]]


def test_a_missing_bucket_is_named_before_access_is_refused(s3_server: S3Server) -> None:
    """As S3 answers: whoever asks, a bucket that does not exist is NoSuchBucket."""
    for method in ("PUT", "DELETE", "GET"):
        reply = httpx.request(method, f"{s3_server.endpoint}/never-made/key", content=b"x")
        assert reply.status_code == 404 and b"<Code>NoSuchBucket</Code>" in reply.content
