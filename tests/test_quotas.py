"""Quotas through every dialect, on both backends: what a user is refused and told, what
is kept of a refused upload (nothing), what deletes and expiry give back (at once), and
that concurrent uploads across the server's workers never together pass a limit."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import boto3
import httpx
import pytest
from botocore.client import BaseClient
from botocore.config import Config
from botocore.exceptions import ClientError
from runloop_api_client import PermissionDeniedError, Runloop

from stowage.processes import free_port

from .backends import BACKENDS
from .harness import ProcServer, ThreadServer, create_s3_key, proc_server_on

SCOPES = "object:read,write,delete namespace:read,write,delete"


@pytest.fixture(scope="module", params=BACKENDS)
def served(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    pg_base_url: str | None,
) -> Iterator[ProcServer]:
    """``stowage serve`` with its workers (one per CPU) and its S3 port."""
    port = str(free_port())
    with proc_server_on(
        request.param, request, tmp_path_factory, pg_base_url, s3_api_port=port
    ) as server:
        yield server


def new_user(server: ProcServer | ThreadServer, scopes: str = SCOPES) -> tuple[str, str]:
    """A user of the test's own (servers are shared within the module) and a token."""
    name = "u" + uuid.uuid4().hex[:10]
    server.cli("users", "create", name)
    token = server.cli("tokens", "create", "--user", name, "--scope", scopes).stdout.strip()
    return name, token


def set_quota(server: ProcServer | ThreadServer, *args: str) -> None:
    done = server.cli("quotas", "set", *args)
    assert done.returncode == 0, done.stderr


def client(server: ProcServer | ThreadServer, token: str) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"}
    return httpx.Client(base_url=server.base_url, headers=headers, timeout=60)


def held(c: httpx.Client) -> tuple[dict[str, int], dict[str, int | None]]:
    me = c.get("/user").json()
    return me["usage"], me["quota"]


def djinn_put(
    c: httpx.Client, name: str, body: bytes, namespace: str | None = None
) -> httpx.Response:
    params = {"name": name, **({"namespace": namespace} if namespace else {})}
    return c.post("/objects", params=params, content=body)


def blob_count(server: ProcServer) -> int | None:
    """Blob files on local disk (None on S3, where the store is shared by the servers)."""
    blobs = server.data_dir / "blobs"
    if "STOWAGE_DATABASE_URL" in server.env:
        return None
    return sum(1 for p in blobs.rglob("*") if p.is_file()) if blobs.exists() else 0


def test_djinn_refuses_past_the_byte_quota_keeps_nothing_and_deletes_give_back(
    served: ProcServer,
) -> None:
    name, token = new_user(served)
    set_quota(served, "--user", name, "--max-bytes", "100")
    with client(served, token) as c:
        assert held(c) == ({"objects": 0, "bytes": 0}, {"max_bytes": 100, "max_objects": None})
        first = djinn_put(c, "first.bin", b"a" * 60)
        assert first.status_code == 201
        blobs = blob_count(served)
        refused = djinn_put(c, "second.bin", b"b" * 60)
        assert refused.status_code == 400
        assert refused.json() == {"file": ["File exceeds the user quota of 100 B"]}
        assert blob_count(served) == blobs  # the refused upload's bytes are gone
        assert [o["name"] for o in c.get("/objects").json()] == ["first.bin"]
        assert held(c)[0] == {"objects": 1, "bytes": 60}
        assert djinn_put(c, "fits.bin", b"c" * 40).status_code == 201  # exactly at the limit
        assert held(c)[0] == {"objects": 2, "bytes": 100}

        assert c.delete(f"/objects/{first.json()['id']}").status_code == 204
        assert held(c)[0] == {"objects": 1, "bytes": 40}  # at once, not when reaped
        assert djinn_put(c, "second.bin", b"b" * 60).status_code == 201


def test_runloop_refuses_with_a_message_the_sdk_raises(served: ProcServer) -> None:
    name, token = new_user(served)
    set_quota(served, "--user", name, "--max-objects", "2", "--max-bytes", "1KiB")
    sdk = Runloop(base_url=served.base_url, bearer_token=token, max_retries=0)
    kept = sdk.objects.create(name="kept.bin", content_type="binary")
    assert httpx.put(kept.upload_url or "", content=b"k" * 1000).status_code == 200
    assert sdk.objects.complete(kept.id).size_bytes == 1000

    # bytes: the second object's bytes would pass 1 KiB (refused at the PUT when stowage
    # takes the bytes, at complete when they go straight to the S3 store)
    over = sdk.objects.create(name="over.bin", content_type="binary")
    put = httpx.put(over.upload_url or "", content=b"o" * 100)
    direct = "STOWAGE_DATABASE_URL" in served.env
    if direct:
        assert put.status_code == 200
        with pytest.raises(PermissionDeniedError, match="quota exceeded") as raised:
            sdk.objects.complete(over.id)
    else:
        assert put.status_code == 403
        assert "quota exceeded" in put.json()["message"]
        with pytest.raises(Exception, match="Nothing has been uploaded"):
            sdk.objects.complete(over.id)
    assert sdk.objects.retrieve(over.id).state == "UPLOADING"  # without bytes

    # objects: a third is refused when it is created
    with pytest.raises(PermissionDeniedError) as raised:
        sdk.objects.create(name="third.bin", content_type="binary")
    assert "may hold 2 objects" in str(raised.value)
    sdk.objects.delete(over.id)
    assert sdk.objects.create(name="third.bin", content_type="binary").state == "UPLOADING"


def s3_client(server: ProcServer, user: str) -> BaseClient:
    key, secret = create_s3_key(server.env, user, SCOPES)
    return boto3.client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{server.env['STOWAGE_S3_API_PORT']}",
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        region_name="us-east-1",
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )


def test_s3_answers_quota_exceeded_and_a_bucket_quota_covers_its_children(
    served: ProcServer,
) -> None:
    name, token = new_user(served)
    s3 = s3_client(served, name)
    bucket = f"b-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    set_quota(served, "--namespace", f"{bucket}@{name}", "--max-bytes", "1000")
    s3.put_object(Bucket=bucket, Key="a", Body=b"a" * 600)
    with pytest.raises(ClientError) as raised:
        s3.put_object(Bucket=bucket, Key="b", Body=b"b" * 600)
    error = raised.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert error["Error"]["Code"] == "QuotaExceeded"
    assert "namespace may hold 1000 bytes" in error["Error"]["Message"]
    # replacing a key frees the old bytes in the same step
    s3.put_object(Bucket=bucket, Key="a", Body=b"A" * 900)
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert keys == ["a"]

    with client(served, token) as c:
        # a child namespace counts toward its root's quota, through Djinn too
        assert c.post("/namespaces", json={"name": "child", "parent": bucket}).status_code in (
            200,
            201,
        )
        refused = djinn_put(c, "c.bin", b"c" * 200, namespace=f"{bucket}/child")
        assert refused.status_code == 400
        assert refused.json() == {"file": ["File exceeds the namespace quota of 1000 B"]}
        # outside the namespace the user has no limit
        assert djinn_put(c, "free.bin", b"f" * 5000).status_code == 201
        assert held(c)[0] == {"objects": 2, "bytes": 5900}

    listed = served.cli("quotas", "list", "--bytes").stdout
    assert re.search(rf"{re.escape(bucket)}@{name}\s*│\s*1\s*│\s*│\s*900\s*│\s*1000", listed)


def test_s3_multipart_parts_count_while_they_arrive(served: ProcServer) -> None:
    name, token = new_user(served)
    s3 = s3_client(served, name)
    bucket = f"m-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    set_quota(served, "--user", name, "--max-bytes", "11MiB")
    mib = 1024 * 1024
    upload = s3.create_multipart_upload(Bucket=bucket, Key="big")["UploadId"]

    def part(number: int, size: int, upload_id: str = upload, key: str = "big") -> str:
        body = bytes([number]) * size
        answer = s3.upload_part(
            Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=body
        )
        return str(answer["ETag"])

    etags = [part(1, 5 * mib), part(2, 5 * mib)]
    with client(served, token) as c:
        assert held(c)[0] == {"objects": 0, "bytes": 10 * mib}
        with pytest.raises(ClientError) as raised:
            part(3, 2 * mib)
        assert raised.value.response["Error"]["Code"] == "QuotaExceeded"
        assert held(c)[0] == {"objects": 0, "bytes": 10 * mib}
        s3.complete_multipart_upload(
            Bucket=bucket,
            Key="big",
            UploadId=upload,
            MultipartUpload={
                "Parts": [{"PartNumber": i + 1, "ETag": e} for i, e in enumerate(etags)]
            },
        )
        assert held(c)[0] == {"objects": 1, "bytes": 10 * mib}
        another = s3.create_multipart_upload(Bucket=bucket, Key="more")["UploadId"]
        part(1, mib, another, "more")
        assert held(c)[0] == {"objects": 1, "bytes": 11 * mib}
        s3.abort_multipart_upload(Bucket=bucket, Key="more", UploadId=another)
        assert held(c)[0] == {"objects": 1, "bytes": 10 * mib}  # an abort gives back at once


def test_concurrent_uploads_never_pass_the_quota_together(served: ProcServer) -> None:
    """20 at once across the server's workers, room for 7: exactly 7 are stored."""
    name, token = new_user(served)
    set_quota(served, "--user", name, "--max-bytes", "7000")
    body = b"x" * 1000

    def upload(i: int) -> int:
        with client(served, token) as c:
            return djinn_put(c, f"f{i}.bin", body).status_code

    with ThreadPoolExecutor(20) as pool:
        codes = list(pool.map(upload, range(20)))
    assert sorted(codes) == [201] * 7 + [400] * 13
    with client(served, token) as c:
        assert held(c)[0] == {"objects": 7, "bytes": 7000}
        assert len(c.get("/objects").json()) == 7
    usage = served.cli("usage", "--user", name, "--bytes").stdout
    assert re.search(rf"{name}\s*│\s*7\s*│\s*│\s*7000\s*│\s*7000", usage)


def test_concurrent_creates_never_pass_the_object_quota(served: ProcServer) -> None:
    name, token = new_user(served)
    set_quota(served, "--user", name, "--max-objects", "5")

    def create(i: int) -> int:
        with client(served, token) as c:
            answer = c.post("/v1/objects", json={"name": f"o{i}", "content_type": "text"})
            return answer.status_code

    with ThreadPoolExecutor(20) as pool:
        codes = list(pool.map(create, range(20)))
    assert sorted(codes) == [200] * 5 + [403] * 15
    with client(served, token) as c:
        assert held(c)[0] == {"objects": 5, "bytes": 0}


def test_expiry_gives_quota_back_before_the_reaper_runs(server: ThreadServer) -> None:
    name, token = new_user(server)
    set_quota(server, "--user", name, "--max-bytes", "1000")
    with client(server, token) as c:
        created = c.post(
            "/v1/objects", json={"name": "brief.bin", "content_type": "binary", "ttl_ms": 60_000}
        ).json()
        assert httpx.put(created["upload_url"], content=b"t" * 800).status_code == 200
        assert c.post(f"/v1/objects/{created['id']}/complete").status_code == 200
        assert djinn_put(c, "later.bin", b"l" * 800).status_code == 400
        server.clock.advance(60_000)
        assert held(c)[0] == {"objects": 0, "bytes": 0}  # expired, not yet reaped
        assert djinn_put(c, "later.bin", b"l" * 800).status_code == 201
        server.run(server.stowage.reaper.run_once())
        assert held(c)[0] == {"objects": 1, "bytes": 800}


def words(page: httpx.Response) -> str:
    """A page's text as a browser lays it out: runs of whitespace are one space."""
    return " ".join(page.text.split())


def test_the_console_shows_usage_and_refuses_past_the_quota(server: ThreadServer) -> None:
    name, token = new_user(server)
    set_quota(server, "--user", name, "--max-bytes", "2KiB", "--max-objects", "10")
    with httpx.Client(base_url=server.base_url, timeout=30) as browser:
        page = browser.post("/console/login", data={"token": token}, follow_redirects=True)
        assert "You hold 0 objects of 10 allowed, 0 B of 2.0 KiB allowed." in words(page)
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
        headers = {"x-csrf-token": csrf.group(1) if csrf else ""}
        ok = browser.post("/console/upload?name=a.txt", content=b"a" * 1500, headers=headers)
        assert ok.status_code == 200
        refused = browser.post("/console/upload?name=b.txt", content=b"b" * 600, headers=headers)
        assert refused.status_code == 403
        assert "quota exceeded" in refused.json()["message"]
        page = browser.get("/console")
        assert "You hold 1 object of 10 allowed, 1.5 KiB of 2.0 KiB allowed." in words(page)
