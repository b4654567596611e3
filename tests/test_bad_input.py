"""The bad-input catalogue: each answered with a 4xx and a message, nothing stored.

Covered elsewhere: Runloop body validation (test_runloop_api: bad ttl_ms, nested and
non-string metadata, NUL and control characters in names), tampered, expired and
cross-object presigned URLs (test_presigned), stalled bodies (test_stalled_clients), bad
scope strings (test_cli), oversized uploads (test_presigned, test_djinn_api).
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from .conftest import SMALL_UPLOAD_LIMIT, ThreadServer
from .rawhttp import raw_request

DJINN_BAD_NAMES = [
    "../escape.txt",
    "a/b.txt",
    "..\\..\\win.txt",
    "tab\tname",
    "bell\x07",
    "caf\u00e9.txt",
    "x" * 10_240,
    "",
]


def assert_nothing_stored(server: ThreadServer) -> None:
    with server.client() as c:
        assert c.get("/objects").json() == []
        assert c.get("/v1/objects").json()["objects"] == []
    assert server.stored_blobs() == set()


def refused(response: httpx.Response, *statuses: int) -> dict:
    assert response.status_code in (statuses or (400,)), response.text
    body = response.json()
    assert body  # a message, or Djinn's {"field": ["Msg"]}
    return body


@pytest.mark.parametrize("name", DJINN_BAD_NAMES, ids=lambda n: repr(n)[:24])
def test_djinn_refuses_names_that_are_not_plain(server: ThreadServer, name: str) -> None:
    with server.client() as c:
        body = refused(c.post("/objects", params={"name": name}, content=b"data"))
    assert body["name"], body
    assert_nothing_stored(server)


def test_nul_bytes_in_any_url_are_refused(server: ThreadServer) -> None:
    with server.client() as c:
        for path, params in [
            ("/objects", {"name": "a\x00b"}),
            ("/objects", {"name": "ok.txt", "namespace": "ns\x00"}),
            ("/v1/objects", {"search": "\x00"}),
            ("/v1/objects/list_public", {"name": "a\x00"}),
            ("/namespaces", {"search": "a\x00"}),
            ("/v1/objects/obj_%00", {}),
            ("/n/admin/ns%00/-/objects", {}),
        ]:
            r = c.post(path, params=params, content=b"x") if path == "/objects" else None
            r = r or c.get(path, params=params)
            assert "NUL" in refused(r)["message"]
        form = {"name": "ok.txt", "namespace": "ns@ad\x00min"}  # in a body, not the URL
        r = c.post("/objects", data=form, files={"file": ("ok.txt", b"x")})
        assert "NUL" in refused(r)["namespace"][0]
    assert_nothing_stored(server)


@pytest.mark.parametrize(
    "namespace", ["../x", "a/../../b", "/", "@", "x@nobody", "a b", "a" * 5000, "/".join("a" * 21)]
)
def test_djinn_namespace_references_are_checked(server: ThreadServer, namespace: str) -> None:
    with server.client() as c:
        r = c.post("/objects", params={"name": "n.txt", "namespace": namespace}, content=b"d")
        refused(r, 400, 404)
    assert_nothing_stored(server)


@pytest.mark.parametrize(
    "name", ["../../../../tmp/stowage-escape", "/etc/passwd", "C:\\Windows\\x", "a/./b/../c"]
)
def test_runloop_names_are_opaque_and_never_become_paths(server: ThreadServer, name: str) -> None:
    """Runloop names are free text; they name nothing on disk or in the bucket."""
    with server.client() as c:
        created = c.post("/v1/objects", json={"name": name, "content_type": "text"}).json()
        assert httpx.put(created["upload_url"], content=b"payload").status_code == 200
        done = c.post(f"/v1/objects/{created['id']}/complete").json()
        assert done["name"] == name
    assert not Path("/tmp/stowage-escape").exists()
    keys = server.stored_blobs()
    assert len(keys) == 1 and not any(part in next(iter(keys)) for part in ("..", "etc", "tmp"))
    if not server.direct:
        blob_dir = server.settings.blob_dir.resolve()
        files = [p for p in blob_dir.rglob("*") if p.is_file()]
        assert len(files) == 1 and files[0].resolve().is_relative_to(blob_dir)


NON_UTF8_TARGETS = [
    ("GET", b"/v1/objects?search=%FF%FE"),
    ("GET", b"/v1/objects?name=%C3%28&content_type=%FF"),
    ("GET", b"/v1/objects/list_public?starting_after=%80"),
    ("GET", b"/v1/objects/%FF%FE"),
    ("GET", b"/v1/objects/metadata/keys/%FF/values"),
    ("GET", b"/objects?search=%FF&page=%FE"),
    ("GET", b"/objects/%FF"),
    ("GET", b"/namespaces?search=%C0%AF"),
    ("GET", b"/n/admin/%FF/-/objects"),
    ("GET", b"/blobs/x?expires=%FF&signature=%FE"),
    ("GET", b"/blobs/x?expires=1&signature=%C3%8E"),
    ("POST", b"/objects?name=%FF%FE.txt"),
    ("POST", b"/objects?name=ok.txt&namespace=%FF"),
    ("GET", b"/v1/objects?search=\xff\xfe"),  # raw bytes, not even percent-encoded
]


@pytest.mark.parametrize(("method", "target"), NON_UTF8_TARGETS, ids=lambda v: repr(v)[:40])
def test_non_utf8_urls_never_cause_a_server_error(
    server: ThreadServer, method: str, target: bytes
) -> None:
    auth = {"Authorization": f"Bearer {server.token}"}
    reply = raw_request(server.base_url, method, target, headers=auth, body=b"data")
    assert reply is not None
    assert reply.status < 500, reply.body
    if reply.status >= 400:  # raw bytes never reach stowage: uvicorn answers in plain text
        assert reply.body
        if reply.headers["content-type"].startswith("application/json"):
            assert reply.json()
    with server.client() as c:  # whatever was accepted is whole and readable
        for obj in c.get("/objects").json():
            assert obj["size"] == 4


def test_content_length_over_the_limit_is_refused_before_the_body(server: ThreadServer) -> None:
    """Nothing is read: the client declared too much, and hears so at once."""
    auth = {"Authorization": f"Bearer {server.token}"}
    huge = {"Content-Length": str(SMALL_UPLOAD_LIMIT + 1)}
    reply = raw_request(
        server.base_url, "POST", "/objects?name=big.bin", headers=auth | huge, timeout=10
    )
    assert reply is not None and reply.status == 400
    assert "too large" in reply.json()["file"][0]
    if not server.direct:
        with server.client() as c:
            created = c.post("/v1/objects", json={"name": "b", "content_type": "binary"}).json()
        target = created["upload_url"].split(server.base_url, 1)[1]
        reply = raw_request(server.base_url, "PUT", target, headers=huge, timeout=10)
        assert reply is not None and reply.status == 413
        assert "limit" in reply.json()["message"]
    with server.client() as c:
        assert c.get("/objects").json() == []
    assert server.stored_blobs() == set()


def test_a_body_shorter_than_its_content_length_stores_nothing(server: ThreadServer) -> None:
    auth = {"Authorization": f"Bearer {server.token}", "Content-Length": "1000"}
    raw_request(
        server.base_url,
        "POST",
        "/objects?name=short.bin",
        headers=auth,
        body=b"only ten b",
        then_close_writes=True,
    )
    # The client is gone, so its answer is moot; what matters is that nothing was kept.
    with server.client() as c:
        assert c.get("/objects").json() == []
        assert c.post("/objects", params={"name": "short.bin"}, content=b"ok").status_code == 201
    assert len(server.stored_blobs()) == 1


def test_bytes_past_the_content_length_are_not_part_of_the_object(server: ThreadServer) -> None:
    auth = {"Authorization": f"Bearer {server.token}", "Content-Length": "5"}
    reply = raw_request(
        server.base_url, "POST", "/objects?name=five.txt", headers=auth, body=b"helloEXTRA"
    )
    assert reply is not None and reply.status == 201
    assert reply.json()["size"] == 5
    with server.client() as c:
        accept = {"Accept": "application/octet-stream"}
        assert c.get(f"/objects/{reply.json()['id']}", headers=accept).content == b"hello"


def test_json_bodies_and_numbers_out_of_range(server: ThreadServer) -> None:
    with server.client() as c:
        base = {"name": "n", "content_type": "text"}
        cases = [
            ({**base, "metadata": {"k": "v" * 70_000}}, 400, "limit"),
            ({**base, "metadata": {"k": "v" * 2_000_000}}, 413, "limit"),
            ({**base, "ttl_ms": 10**30}, 400, "ttl_ms"),
            ({**base, "ttl_ms": -(2**63)}, 400, "ttl_ms"),
            ({**base, "ttl_ms": True}, 400, "ttl_ms"),
            ({**base, "metadata": {f"k{i}": "v" for i in range(20_000)}}, 400, "limit"),
        ]
        for body, status, words in cases:
            r = c.post("/v1/objects", json=body)
            assert words in refused(r, status)["message"], r.text
        r = c.post("/namespaces", json={"name": "ns1", "description": "d" * 2_000_000})
        assert "limit" in refused(r, 413)["message"]
        assert c.get("/namespaces").json() == []
        for duration in ("99999999999999999999999999", "-1", "1e3"):
            r = c.get("/v1/objects/obj_x/download", params={"duration_seconds": duration})
            refused(r, 400)
    assert_nothing_stored(server)


def _fill(path: str) -> str:
    values = {
        "object_id": "1",
        "key": "k",
        "username": "admin",
        "path": "ns",
        "collaborator": "bob",
        "invite_id": "1",
    }
    for name, value in values.items():
        path = path.replace("{" + name + "}", value)
    return path


def test_every_route_answers_a_wrong_method_with_405_and_allow(server: ThreadServer) -> None:
    spec = httpx.get(f"{server.base_url}/openapi.json").json()
    tried = 0
    with server.client() as c:
        for template, operations in spec["paths"].items():
            allowed = {m.upper() for m in operations}
            for method in sorted({"GET", "POST", "PUT", "PATCH", "DELETE"} - allowed):
                r = c.request(method, _fill(template))
                assert r.status_code == 405, (method, template, r.text)
                assert set(r.headers["allow"].split(", ")) == allowed, (method, template)
                assert r.json()["message"]
                tried += 1
    assert tried > 50
    assert_nothing_stored(server)


def test_page_numbers_too_big_for_any_offset_are_past_the_end(server: ThreadServer) -> None:
    huge = "9" * 25
    with server.client() as c:
        c.post("/objects", params={"name": "one.txt", "namespace": "pages"}, content=b"1")
        for path in ("/objects", "/namespaces", "/n/admin/pages/-/objects"):
            r = c.get(path, params={"page": huge})
            assert (r.status_code, len(r.json())) == (200, 1), (path, r.text)  # the last page
            assert 'page=1>; rel="next"' in r.headers["link"]
