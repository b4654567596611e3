"""Wire-level checks of the Runloop dialect: status codes, error bodies, filters, auth."""

from __future__ import annotations

import httpx
import pytest

from .harness import ThreadServer


def create(c: httpx.Client, **body: object) -> httpx.Response:
    return c.post("/v1/objects", json={"name": "a.txt", "content_type": "text", **body})


def upload_and_complete(c: httpx.Client, data: bytes = b"hello", **body: object) -> dict:
    created = create(c, **body).json()
    assert httpx.put(created["upload_url"], content=data).status_code == 200
    done = c.post(f"/v1/objects/{created['id']}/complete")
    assert done.status_code == 200
    return done.json()


def total(c: httpx.Client) -> int:
    return c.get("/v1/objects", params={"state": "UPLOADING"}).json()["total_count"]


BAD_CREATES = [
    pytest.param({"content_type": "text"}, "name is required", id="missing-name"),
    pytest.param({"name": "", "content_type": "text"}, "name must not be empty", id="empty-name"),
    pytest.param({"name": "a", "content_type": "image/png"}, "content_type", id="mime-type"),
    pytest.param({"name": "a"}, "content_type is required", id="missing-type"),
    pytest.param(
        {"name": "a", "content_type": "text", "ttl_ms": -5},
        "ttl_ms must be a positive",
        id="neg-ttl",
    ),
    pytest.param({"name": "a", "content_type": "text", "ttl_ms": 0}, "ttl_ms", id="zero-ttl"),
    pytest.param(
        {"name": "a", "content_type": "text", "ttl_ms": 10**18}, "at most", id="absurd-ttl"
    ),
    pytest.param({"name": "a", "content_type": "text", "ttl_ms": 1.5}, "ttl_ms", id="float-ttl"),
    pytest.param(
        {"name": "a", "content_type": "text", "metadata": {"n": 1}}, "metadata.n", id="int-meta"
    ),
    pytest.param(
        {"name": "a", "content_type": "text", "metadata": {"n": {"deep": "x"}}},
        "metadata.n",
        id="nested-meta",
    ),
    pytest.param(
        {"name": "a", "content_type": "text", "metadata": {"k": "v" * 70_000}},
        "the limit is 65536 bytes",
        id="huge-meta",
    ),
    pytest.param(
        {"name": "a", "content_type": "text", "metadata": {"": "v"}}, "keys", id="empty-key"
    ),
    pytest.param({"name": "é" * 513, "content_type": "text"}, "1024 bytes", id="long-name"),
    pytest.param({"name": "a\x00b", "content_type": "text"}, "NUL", id="nul-name"),
    pytest.param({"name": "a\nb", "content_type": "text"}, "control", id="newline-name"),
    pytest.param(
        {"name": "a", "content_type": "text", "public": True}, "unknown field", id="extra"
    ),
    pytest.param({"name": 5, "content_type": "text"}, "name", id="int-name"),
]


@pytest.mark.parametrize(("body", "message"), BAD_CREATES)
def test_bad_create_is_a_400_with_a_message_and_writes_nothing(
    server: ThreadServer, body: dict, message: str
) -> None:
    with server.client() as c:
        before = total(c)
        r = c.post("/v1/objects", json=body)
        assert r.status_code == 400
        assert r.headers["content-type"] == "application/json"
        assert message in r.json()["message"]
        assert total(c) == before


@pytest.mark.parametrize(
    "raw",
    [b'{"name": "a", "content_type": ', b"not json", b"", b"[1, 2]"],
    ids=["truncated", "garbage", "empty", "array"],
)
def test_malformed_json_is_a_400(server: ThreadServer, raw: bytes) -> None:
    with server.client() as c:
        r = c.post("/v1/objects", content=raw, headers={"content-type": "application/json"})
        assert r.status_code == 400
        assert r.json()["message"]


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"]
)
def test_a_json_body_labelled_otherwise_is_a_400(server: ThreadServer, content_type: str) -> None:
    """FastAPI reads a body as JSON only without a Content-Type or with a JSON one; the
    short path for creates (api/common/hot.py) must refuse the same bodies."""
    with server.client() as c:
        before = total(c)
        body = b'{"name": "n.txt", "content_type": "text"}'
        r = c.post("/v1/objects", content=body, headers={"content-type": content_type})
        assert r.status_code == 400 and r.json()["message"]
        assert total(c) == before
        labelled = {"content-type": "application/vnd.api+json"}
        assert c.post("/v1/objects", content=body, headers=labelled).status_code == 200


def test_explicit_nulls_are_accepted(server: ThreadServer) -> None:
    with server.client() as c:
        r = c.post(
            "/v1/objects",
            json={"name": "n.txt", "content_type": "text", "metadata": None, "ttl_ms": None},
        )
        assert r.status_code == 200
        assert r.json()["delete_after_time_ms"] is None


def test_limit_ttl_is_accepted_at_ten_years(server: ThreadServer) -> None:
    with server.client() as c:
        assert create(c, ttl_ms=10 * 365 * 24 * 3600 * 1000).status_code == 200


def test_auth_failures(server: ThreadServer) -> None:
    with httpx.Client(base_url=server.base_url) as anon:
        r = anon.get("/v1/objects")
        assert r.status_code == 401
        assert "bearer token" in r.json()["message"]
        r = anon.get("/v1/objects", headers={"Authorization": "Bearer stw_nope"})
        assert r.status_code == 401
        r = anon.get("/v1/objects", headers={"Authorization": f"Basic {server.token}"})
        assert r.status_code == 401

    reader = server.new_user_token("reader", "object:read")
    with server.client(reader) as c:
        assert c.get("/v1/objects").status_code == 200
        r = create(c)
        assert r.status_code == 403
        assert "object:write" in r.json()["message"]

    nothing = server.new_user_token("nobody", "namespace:read")
    with server.client(nothing) as c:
        r = c.get("/v1/objects")
        assert r.status_code == 403
        assert "object:read" in r.json()["message"]


def test_other_users_objects_are_404(server: ThreadServer) -> None:
    with server.client() as admin:
        obj = upload_and_complete(admin)
    other = server.new_user_token("mallory")
    with server.client(other) as c:
        for path in ["", "/download"]:
            r = c.get(f"/v1/objects/{obj['id']}{path}")
            assert r.status_code == 404
            assert r.json() == {"message": "Object not found"}
        for action in ["complete", "delete"]:
            assert c.post(f"/v1/objects/{obj['id']}/{action}").status_code == 404
        assert c.get("/v1/objects").json()["objects"] == []
    with server.client() as admin:
        assert admin.get(f"/v1/objects/{obj['id']}").json()["state"] == "READ_ONLY"


def test_unknown_id_and_unknown_route(server: ThreadServer) -> None:
    with server.client() as c:
        assert c.get("/v1/objects/obj_missing").status_code == 404
        assert c.post("/v1/objects/obj_missing/complete").status_code == 404
        r = c.get("/v1/nothing-here")
        assert r.status_code == 404
        assert r.json()["message"]
        r = c.delete("/v1/objects/obj_missing")
        assert r.status_code == 405
        assert r.json()["message"]


def test_state_machine_errors(server: ThreadServer) -> None:
    with server.client() as c:
        created = create(c).json()
        oid = created["id"]
        r = c.get(f"/v1/objects/{oid}/download")
        assert r.status_code == 400
        assert "UPLOADING" in r.json()["message"]
        r = c.post(f"/v1/objects/{oid}/complete")
        assert r.status_code == 409  # Runloop: complete is a 409 when it cannot be done now
        assert r.headers["x-should-retry"] == "false"
        assert "upload_url" in r.json()["message"]

        assert httpx.put(created["upload_url"], content=b"one").status_code == 200
        assert httpx.put(created["upload_url"], content=b"two!").status_code == 200  # replaces
        done = c.post(f"/v1/objects/{oid}/complete")
        assert done.json()["size_bytes"] == 4

        r = c.post(f"/v1/objects/{oid}/complete")
        assert r.status_code == 409
        assert r.headers["x-should-retry"] == "false"
        r = httpx.put(created["upload_url"], content=b"late")
        if server.direct:  # S3 accepts the PUT, but the completed object no longer reads it
            url = c.get(f"/v1/objects/{oid}/download").json()["download_url"]
            assert httpx.get(url).content == b"two!"
        else:
            assert r.status_code == 409
            assert "READ_ONLY" in r.json()["message"]

        for bad in (0, -1, 7 * 24 * 3600 + 1):
            r = c.get(f"/v1/objects/{oid}/download", params={"duration_seconds": bad})
            assert r.status_code == 400
        r = c.get(f"/v1/objects/{oid}/download", params={"duration_seconds": "soon"})
        assert r.status_code == 400

        deleted = c.post(f"/v1/objects/{oid}/delete", headers={"content-type": "application/json"})
        assert deleted.status_code == 200
        assert deleted.json()["state"] == "DELETED"
        assert c.post(f"/v1/objects/{oid}/delete", json={}).json()["state"] == "DELETED"
        r = c.get(f"/v1/objects/{oid}/download")
        assert r.status_code == 400
        assert "deleted" in r.json()["message"]
        assert c.get("/v1/objects", params={"search": oid}).json()["objects"] == []
        listed = c.get("/v1/objects", params={"search": oid, "state": "DELETED"}).json()
        assert [o["id"] for o in listed["objects"]] == [oid]


def test_list_pagination_and_filters(server: ThreadServer) -> None:
    with server.client() as c:
        ids = [create(c, name=f"Report_{i}.txt").json()["id"] for i in range(5)]
        create(c, name="other.bin", content_type="binary")
        page = c.get("/v1/objects", params={"limit": 2, "name": "report_"}).json()
        assert page["total_count"] == 5
        assert page["has_more"] is True
        assert [o["id"] for o in page["objects"]] == ids[::-1][:2]  # newest first
        rest = c.get(
            "/v1/objects",
            params={"limit": 10, "name": "report_", "starting_after": page["objects"][-1]["id"]},
        ).json()
        assert [o["id"] for o in rest["objects"]] == ids[::-1][2:]
        assert rest["has_more"] is False

        no_total = c.get("/v1/objects", params={"include_total_count": "false"}).json()
        assert no_total["total_count"] is None
        assert c.get("/v1/objects", params={"search": "%"}).json()["objects"] == []
        assert len(c.get("/v1/objects", params={"search": "_3"}).json()["objects"]) == 1
        binaries = c.get("/v1/objects", params={"content_type": "binary"}).json()
        assert [o["name"] for o in binaries["objects"]] == ["other.bin"]

        for bad in ({"limit": 0}, {"limit": 5001}, {"state": "GONE"}, {"content_type": "x"}):
            r = c.get("/v1/objects", params=bad)
            assert r.status_code == 400, bad
            assert r.json()["message"]


def test_metadata_keys_and_values(server: ThreadServer) -> None:
    with server.client() as c:
        create(c, metadata={"branch": "main", "build": "1"})
        create(c, metadata={"branch": "dev"})
        gone = create(c, metadata={"secret": "x"}).json()
        c.post(f"/v1/objects/{gone['id']}/delete")
        assert c.get("/v1/objects/metadata/keys").json() == {"keys": ["branch", "build"]}
        values = c.get("/v1/objects/metadata/keys/branch/values").json()
        assert values == {"key": "branch", "values": ["dev", "main"]}
        assert c.get("/v1/objects/metadata/keys/none/values").json()["values"] == []
        r = c.get("/v1/objects/metadata/keys/" + "k" * 300 + "/values")
        assert r.status_code == 400
    with server.client(server.new_user_token("meta-other")) as other:
        assert other.get("/v1/objects/metadata/keys").json() == {"keys": []}


def test_public_url_setting_shapes_presigned_urls(server: ThreadServer) -> None:
    server.settings.public_url = "https://objects.example.test/"
    try:
        with server.client() as c:
            url = create(c).json()["upload_url"]
        if server.direct:  # presigned by the S3 store, at its own address
            assert url.startswith(f"{server.settings.s3_endpoint}/stowage-test/")
            assert "X-Amz-Signature=" in url
        else:
            assert url.startswith("https://objects.example.test/blobs/obj_")
    finally:
        server.settings.public_url = None
