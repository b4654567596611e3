"""The official runloop-api-client, unchanged, against ``stowage serve`` in a real process."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from runloop_api_client import (
    AuthenticationError,
    BadRequestError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    Runloop,
    RunloopSDK,
)

from .harness import ProcServer
from .tcpproxy import TcpProxy


@pytest.fixture
def client(proc_server: ProcServer) -> Runloop:
    return Runloop(base_url=proc_server.base_url, bearer_token=proc_server.token)


@pytest.fixture
def sdk(proc_server: ProcServer) -> RunloopSDK:
    return RunloopSDK(base_url=proc_server.base_url, bearer_token=proc_server.token)


def test_env_vars_point_the_sdk_at_stowage(
    proc_server: ProcServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNLOOP_BASE_URL", proc_server.base_url)
    monkeypatch.setenv("RUNLOOP_API_KEY", proc_server.token)
    obj = RunloopSDK().storage_object.upload_from_text("via env", name="env.txt")
    assert obj.download_as_text() == "via env"


def test_three_step_flow_with_every_low_level_method(
    client: Runloop, proc_server: ProcServer
) -> None:
    payload = os.urandom(300_000)
    created = client.objects.create(
        name="artefact.bin", content_type="binary", metadata={"build": "42"}, ttl_ms=3_600_000
    )
    assert created.state == "UPLOADING"
    assert created.size_bytes is None
    assert created.upload_url and created.upload_url.startswith("http://127.0.0.1:")
    assert created.delete_after_time_ms == created.create_time_ms + 3_600_000

    put = httpx.put(created.upload_url, content=payload)
    assert put.status_code == 200
    assert put.headers["etag"] == f'"{hashlib.md5(payload).hexdigest()}"'

    done = client.objects.complete(created.id)
    assert done.state == "READ_ONLY"
    assert done.size_bytes == len(payload)

    got = client.objects.retrieve(created.id)
    assert (got.id, got.name, got.metadata) == (created.id, "artefact.bin", {"build": "42"})
    assert got.upload_url is None

    url = client.objects.download(created.id, duration_seconds=60).download_url
    assert httpx.get(url).content == payload

    listed = client.objects.list(search=created.id)
    assert [o.id for o in listed.objects] == [created.id]
    assert listed.total_count == 1

    deleted = client.objects.delete(created.id)
    assert deleted.state == "DELETED"
    with pytest.raises(BadRequestError):
        client.objects.download(created.id)
    # A URL stowage serves is refused at once. One the bucket serves (S3 mode) works until
    # it expires or the reaper collects the blob, STOWAGE_BLOB_GRACE_SECONDS after the
    # delete (tests/test_ttl.py shows it gone then).
    direct = proc_server.env.get("STOWAGE_BLOB_STORE") == "s3"
    assert httpx.get(url).status_code == (200 if direct else 404)


def test_auto_pagination_follows_the_cursor(client: Runloop) -> None:
    names = {f"page-item-{i}.txt" for i in range(7)}
    for name in names:
        client.objects.create(name=name, content_type="text")
    pages = client.objects.list(name="page-item-", limit=3)
    assert pages.total_count == 7
    assert len(pages.objects) == 3 and pages.has_more
    seen = [o.name for o in pages]  # iterates every page via starting_after
    assert sorted(seen) == sorted(names)
    assert len(seen) == len(set(seen))


def test_list_filters_and_list_public(client: Runloop, sdk: RunloopSDK) -> None:
    sdk.storage_object.upload_from_text("x", name="filter-me.txt")
    client.objects.create(name="filter-me-pending.txt", content_type="text")
    done = client.objects.list(name="filter-me", state="READ_ONLY")
    assert [o.name for o in done.objects] == ["filter-me.txt"]
    pending = client.objects.list(name="filter-me", state="UPLOADING", content_type="text")
    assert [o.name for o in pending.objects] == ["filter-me-pending.txt"]
    # Nothing is public until namespaces exist; the endpoint answers a valid empty page.
    public = client.objects.list_public()
    assert public.objects == [] and public.has_more is False


def test_storage_object_helpers_round_trip_bytes(sdk: RunloopSDK, tmp_path: Path) -> None:
    text_obj = sdk.storage_object.upload_from_text("héllo wörld\n", name="greeting.txt")
    assert text_obj.download_as_text() == "héllo wörld\n"
    assert text_obj.refresh().content_type == "text"

    data = os.urandom(2 * 1024 * 1024 + 17)
    bytes_obj = sdk.storage_object.upload_from_bytes(
        data, name="blob.bin", content_type="binary", metadata={"k": "v"}, ttl=timedelta(hours=1)
    )
    assert bytes_obj.download_as_bytes() == data
    info = bytes_obj.refresh()
    assert info.size_bytes == len(data)
    assert info.delete_after_time_ms == info.create_time_ms + 3_600_000

    path = tmp_path / "notes.tar.gz"
    path.write_bytes(os.urandom(1000))
    file_obj = sdk.storage_object.upload_from_file(path)
    assert file_obj.refresh().content_type == "tgz"
    assert file_obj.download_as_bytes() == path.read_bytes()

    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "a.txt").write_text("alpha")
    (tree / "sub" / "b.txt").write_text("beta")
    dir_obj = sdk.storage_object.upload_from_dir(tree)
    with tarfile.open(fileobj=io.BytesIO(dir_obj.download_as_bytes()), mode="r:gz") as tar:
        files = [m for m in tar.getmembers() if m.isfile()]
        members = {m.name.removeprefix("./"): tar.extractfile(m).read() for m in files}
    assert members == {"a.txt": b"alpha", "sub/b.txt": b"beta"}

    url = bytes_obj.get_download_url(duration_seconds=120).download_url
    assert httpx.get(url).content == data
    bytes_obj.delete()
    assert bytes_obj.refresh().state == "DELETED"


def test_sdk_errors_map_to_the_right_classes(proc_server: ProcServer, client: Runloop) -> None:
    with pytest.raises(NotFoundError) as missing:
        client.objects.retrieve("obj_doesnotexist")
    assert missing.value.body == {"message": "Object not found"}

    obj = client.objects.create(name="twice.txt", content_type="text")
    with pytest.raises(ConflictError) as early:
        client.objects.complete(obj.id)  # nothing uploaded yet
    assert "upload_url" in early.value.body["message"]
    httpx.put(obj.upload_url, content=b"x").raise_for_status()
    client.objects.complete(obj.id)
    with pytest.raises(ConflictError) as conflict:
        client.objects.complete(obj.id)
    assert conflict.value.response.headers["x-should-retry"] == "false"

    bad = Runloop(base_url=proc_server.base_url, bearer_token="stw_wrong", max_retries=0)
    with pytest.raises(AuthenticationError):
        bad.objects.list()

    scoped = proc_server.cli("tokens", "create", "--user", "admin", "--scope", "object:read")
    reader = Runloop(base_url=proc_server.base_url, bearer_token=scoped.stdout.strip())
    assert reader.objects.retrieve(obj.id).id == obj.id
    with pytest.raises(PermissionDeniedError):
        reader.objects.create(name="nope.txt", content_type="text")


def test_one_idempotency_key_is_one_object(client: Runloop, sdk: RunloopSDK) -> None:
    name = f"keyed-{os.urandom(4).hex()}.txt"
    first = client.objects.create(name=name, content_type="text", idempotency_key=name)
    again = client.objects.create(name=name, content_type="text", idempotency_key=name)
    helper = sdk.storage_object.create(name=name, content_type="text", idempotency_key=name)
    assert again.id == first.id == helper.id
    assert [o.id for o in client.objects.list(name=name)] == [first.id]
    with pytest.raises(ConflictError) as reused:
        client.objects.create(name=name, content_type="binary", idempotency_key=name)
    assert "different request" in reused.value.body["message"]


def test_answers_lost_on_the_way_back_are_retried_into_one_object(
    proc_server: ProcServer,
) -> None:
    """The SDK resends a request whose answer never came, with the same x-request-id: the
    resent create gets the object the first one made, the resent complete its result."""
    port = int(proc_server.base_url.rsplit(":", 1)[1])
    proxy = TcpProxy("127.0.0.1", port)
    try:
        lossy = Runloop(
            base_url=f"http://127.0.0.1:{proxy.port}",
            bearer_token=proc_server.token,
            max_retries=2,
        )
        name = f"lossy-{os.urandom(4).hex()}.bin"
        proxy.lose_answers(1)
        created = lossy.objects.create(name=name, content_type="binary")
        assert [o.id for o in lossy.objects.list(name=name)] == [created.id]

        assert created.upload_url is not None
        httpx.put(created.upload_url, content=b"once").raise_for_status()
        proxy.lose_answers(1)
        done = lossy.objects.complete(created.id)  # not a ConflictError on the resend
        assert (done.state, done.size_bytes) == ("READ_ONLY", 4)

        proxy.lose_answers(1)
        assert lossy.objects.delete(created.id).state == "DELETED"
    finally:
        proxy.close()
