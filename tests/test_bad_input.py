"""The bad-input catalogue: each answered with a 4xx and a message, nothing stored.

Covered elsewhere: Runloop body validation (test_runloop_api: bad ttl_ms, nested and
non-string metadata, NUL and control characters in names), tampered, expired and
cross-object presigned URLs (test_presigned), stalled bodies (test_stalled_clients), bad
scope strings (test_cli), oversized uploads (test_presigned, test_djinn_api).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from .harness import SMALL_UPLOAD_LIMIT, ThreadServer
from .rawhttp import raw_request

HUGE = "9" * 4301  # one digit past what int() will convert
SURROGATE = "%ED%A0%80"  # U+D800 as UTF-8 would spell it, were lone surrogates allowed
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
        payload = b"payload" * 3000  # past STOWAGE_INLINE_MAX_BYTES: a blob store's
        assert httpx.put(created["upload_url"], content=payload).status_code == 200
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
    if not target.isascii():  # raw bytes never reach stowage: the HTTP layer refuses them
        assert reply.status == 400
    elif reply.status >= 400:
        assert reply.json()  # stowage's own answer, in the dialect's JSON
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


def test_a_json_body_over_the_cap_without_a_length_is_a_413(server: ThreadServer) -> None:
    """Chunked, so only counting the bytes finds it too big: the refusal is raised inside
    the body read, on the short path for creates (api/common/hot.py) as on FastAPI's."""

    def chunks() -> Iterator[bytes]:
        yield b'{"name": "big", "content_type": "text", "metadata": {"k": "'
        for _ in range(40):
            yield b"v" * 65536
        yield b'"}}'

    with server.client() as c:
        for path in ("/v1/objects", "/namespaces"):
            r = c.post(path, content=chunks(), headers={"Content-Type": "application/json"})
            assert r.status_code == 413, (path, r.text)
            assert "limit" in r.json()["message"]
    assert_nothing_stored(server)


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


@pytest.mark.parametrize("huge", ["9" * 25, HUGE], ids=["25-digits", "4301-digits"])
def test_page_numbers_too_big_for_any_offset_are_past_the_end(
    server: ThreadServer, huge: str
) -> None:
    with server.client() as c:
        c.post("/objects", params={"name": "one.txt", "namespace": "pages"}, content=b"1")
        for path in ("/objects", "/namespaces", "/n/admin/pages/-/objects"):
            r = c.get(path, params={"page": huge})
            assert (r.status_code, len(r.json())) == (200, 1), (path, r.text)  # the last page
            assert 'page=1>; rel="next"' in r.headers["link"]


def test_numbers_too_long_for_int_are_a_clear_4xx_in_every_place(server: ThreadServer) -> None:
    """Path ids, Range positions, pages and Runloop numbers over 4,300 digits: int()
    refuses them, which was a 500 (and a dropped connection), even without a token."""
    accept = {"Accept": "application/octet-stream"}
    with server.client() as c, httpx.Client(base_url=server.base_url) as anonymous:
        stored = c.post("/objects", params={"name": "five.txt"}, content=b"hello").json()
        for client in (c, anonymous):
            for path in (f"/objects/{HUGE}", f"/api/objects/{HUGE}", f"/invites/{HUGE}"):
                for method in ("GET", "DELETE", "PATCH"):
                    r = client.request(method, path)
                    if r.status_code != 405:
                        answer = (r.status_code, r.json())
                        assert answer == (404, {"message": "Not Found"}), path[:30]
        for params, words in [
            ({"limit": HUGE}, "limit"),
            ({"duration_seconds": HUGE}, "duration_seconds"),
        ]:
            path = (
                "/v1/objects"
                if "limit" in params
                else f"/v1/objects/{stored['object_id']}/download"
            )
            assert words in refused(c.get(path, params=params))["message"]
        body = b'{"name":"n","content_type":"text","ttl_ms":%s}' % HUGE.encode()
        r = c.post("/v1/objects", content=body, headers={"Content-Type": "application/json"})
        assert "not valid JSON" in refused(r)["message"]
        # Past the end is "to the end" (RFC 9110), however many digits it takes to say so.
        downloads = [(c, f"/objects/{stored['id']}", accept)]
        if not server.direct:
            url = c.get(f"/v1/objects/{stored['object_id']}/download").json()["download_url"]
            downloads.append((anonymous, url, {}))
        for client, url, headers in downloads:
            for spec, status, body in [
                (f"bytes=0-{HUGE}", 206, b"hello"),
                (f"bytes=-{HUGE}", 206, b"hello"),
                (f"bytes=1-{HUGE}", 206, b"ello"),
                (f"bytes={HUGE}-", 416, b""),
                (f"bytes={HUGE}-{HUGE}", 416, b""),
            ]:
                r = client.get(url, headers={**headers, "Range": spec})
                assert (r.status_code, r.content) == (status, body), spec
        assert c.get("/user").status_code == 200  # the same keep-alive connection, still fine


def test_text_that_is_not_unicode_is_refused_in_every_dialect(server: ThreadServer) -> None:
    """Lone surrogates (as JSON escapes, or percent-encoded) and bytes that are not UTF-8:
    a 400 with a message wherever text comes in, never a 500 and never U+FFFD stored."""
    as_json = {"Content-Type": "application/json"}
    as_form = {"Content-Type": "application/x-www-form-urlencoded"}
    with server.client() as c:
        for body in [
            b'{"name":"\\ud800","content_type":"text"}',
            b'{"name":"ok","content_type":"text","metadata":{"k":"\\udc00"}}',
            b'{"name":"ok","content_type":"text","metadata":{"\\ud800x":"v"}}',
            b'{"name":"ok\xff","content_type":"text"}',
        ]:
            assert (
                "JSON" in refused(c.post("/v1/objects", content=body, headers=as_json))["message"]
            )
        for body, headers in [
            (b'{"name":"abc","description":"\\ud800"}', as_json),
            (f"name=abc&description={SURROGATE}".encode(), as_form),
            (b"name=abc&description=%FF", as_form),
        ]:
            refused(c.post("/namespaces", content=body, headers=headers))
        c.post("/namespaces", json={"name": "ns1"})
        r = c.post("/n/admin/ns1/-/invites", content=f"handle=b{SURROGATE}", headers=as_form)
        refused(r)
        for method, url in [
            ("GET", f"/v1/objects?search={SURROGATE}"),
            ("GET", f"/v1/objects/list_public?name=a{SURROGATE}"),
            ("GET", f"/v1/objects/obj_{SURROGATE}"),
            ("GET", f"/v1/objects/metadata/keys/k{SURROGATE}/values"),
            ("GET", f"/objects?search={SURROGATE}"),
            ("GET", "/namespaces?search=%FF"),
            ("POST", f"/objects?name=a{SURROGATE}.txt"),
            ("POST", f"/objects?name=a.txt&namespace=ns1{SURROGATE}"),
            ("GET", f"/n/admin/ns1/-/objects?search={SURROGATE}"),
        ]:
            r = c.request(method, url, content=b"data")
            assert "UTF-8" in refused(r)["message"], url
        assert c.get("/namespaces").json()[0]["description"] == ""
        form = (
            b'--b\r\nContent-Disposition: form-data; name="name"\r\n\r\nbad\xff.txt\r\n'
            b'--b\r\nContent-Disposition: form-data; name="file"; filename="f"\r\n\r\n'
            b"data\r\n--b--\r\n"
        )
        r = c.post(
            "/objects", content=form, headers={"Content-Type": "multipart/form-data; boundary=b"}
        )
        assert "UTF-8" in refused(r)["message"]  # a multipart upload's fields too
        r = c.post("/console/login", content=f"token={SURROGATE}".encode(), headers=as_form)
        assert "UTF-8" in refused(r)["message"]
        assert c.get("/user").status_code == 200
    with server.client() as c:  # only ns1 was made, and no object at all
        assert [n["path"] for n in c.get("/namespaces").json()] == ["ns1"]
    assert_nothing_stored(server)


def test_console_answers_odd_pages_and_csrf_values_without_a_server_error(
    server: ThreadServer,
) -> None:
    """``?page=²`` passed isdigit() and failed int(); a CSRF value with a non-ASCII
    character made compare_digest raise. Plain requests with the session cookie."""
    with server.client() as c:
        stored = c.post("/objects", params={"name": "keep.txt"}, content=b"keep").json()
    oid = stored["object_id"]
    cookies = {"stowage_console": server.token}
    with httpx.Client(base_url=server.base_url, cookies=cookies, timeout=30) as console:
        for path in ("/console", "/console/namespaces"):
            for page in ("\u00b2", "\u0661", HUGE, "-1", "0"):
                r = console.get(path, params={"page": page})
                assert r.status_code == 200, (path, page, r.text[:200])
        for action, form in [
            ("/console/logout", {"csrf": "caf\u00e9"}),
            (f"/console/objects/{oid}/delete", {"csrf": "\u00e9"}),
            (f"/console/objects/{oid}/share", {"csrf": "\u2603", "seconds": "3600"}),
        ]:
            r = console.post(action, data=form, follow_redirects=False)
            assert (r.status_code, r.headers["location"]) == (303, "/console/login"), action
        r = console.post(
            "/console/upload",
            params={"name": "x.txt"},
            content=b"x",
            headers={"X-CSRF-Token": "caf\u00e9".encode("latin-1")},
        )
        assert (r.status_code, r.json()) == (401, {"message": "sign in again"})
    with server.client() as c:  # nothing was deleted, nothing uploaded
        assert [o["name"] for o in c.get("/objects").json()] == ["keep.txt"]


def test_an_upload_into_a_namespace_deleted_midway_is_refused_and_leaves_nothing(
    server: ThreadServer,
) -> None:
    """The namespace goes while the body is in flight, so the insert breaks the foreign
    key: SQLite answered 500, and PostgreSQL 'Name already exists' (the constraint's name
    holds "name")."""
    # Bigger than any socket buffer on loopback: by the time the client may send more,
    # the server is reading the body, so validation has found the namespace in place.
    first = b"a" * (SMALL_UPLOAD_LIMIT * 3 // 4)
    with server.client() as c, server.client() as other:
        assert c.post("/namespaces", json={"name": "doomed"}).status_code == 201

        def body() -> Iterator[bytes]:
            yield first
            assert other.delete("/n/admin/doomed").status_code == 204
            yield b"the rest"

        r = c.post("/objects", params={"name": "late.bin", "namespace": "doomed"}, content=body())
        assert (r.status_code, r.json()) == (
            400,
            {"namespace": ["Namespace doomed does not exist"]},
        )
        assert c.get("/namespaces").json() == []
    assert_nothing_stored(server)
