"""The Djinn dialect on the wire: the seed document's curl examples, the original
integration tests' expectations, validation, pagination and downloads."""

from __future__ import annotations

import asyncio
import hashlib
import shlex
import subprocess
from pathlib import Path

import httpx
import pytest

from .harness import SMALL_UPLOAD_LIMIT, ThreadServer
from .test_sniff import png

ALL = "object:read,write,delete namespace:read,write,delete invite:read,write"


def upload(c: httpx.Client, name: str, data: bytes, namespace: str | None = None) -> httpx.Response:
    params = {"name": name, **({"namespace": namespace} if namespace else {})}
    return c.post(
        "/objects",
        params=params,
        content=data,
        headers={"content-type": "application/octet-stream"},
    )


# The curl examples of the seed document, verbatim but for host and token.
SEED_EXAMPLES = [
    """curl -X GET \\
           -H "Content-Type: application/json" \\
           -H "Authorization: Bearer 1a2b3c4d5f" \\
           {{index .Vars "apihost"}}/objects""",
    """curl -X GET \\
           -H "Content-Type: application/json" \\
           -H "Authorization: Bearer 1a2b3c4d5f" \\
           {{index .Vars "apihost"}}/objects?search=data""",
    """curl -X POST \\
           -H "Content-Type: text/plain; charset=utf-8" \\
           -H "Authorization: Bearer 1a2b3c4d5f" \\
           -d "@data" \\
           {{index .Vars "apihost"}}/objects?name=data""",
    """curl -X GET \\
           -H "Content-Type: application/json" \\
           -H "Authorization: Bearer 1a2b3c4d5f" \\
           {{index .Vars "apihost"}}/objects/1""",
    """curl -X DELETE \\
           -H "Content-Type: application/json" \\
           -H "Authorization: Bearer 1a2b3c4d5f" \\
           {{index .Vars "apihost"}}/objects/1""",
]


def run_seed(server: ThreadServer, example: str, cwd: Path) -> tuple[int, bytes, str]:
    command = example.replace('{{index .Vars "apihost"}}', server.base_url).replace(
        "1a2b3c4d5f", server.token
    )
    body = cwd / "body"
    body.unlink(missing_ok=True)
    pasted = f"{command} -s -D - -o {shlex.quote(str(body))}"  # run as a user pastes it
    head = subprocess.run(
        ["bash", "-c", pasted], cwd=cwd, capture_output=True, text=True, check=True
    ).stdout
    status = int(head.split()[1])
    return status, body.read_bytes() if body.exists() else b"", head


def test_seed_curl_examples(server: ThreadServer, tmp_path: Path) -> None:
    tmp_path = tmp_path / "curl"
    tmp_path.mkdir()
    (tmp_path / "data").write_text("x" * 600)
    listed, body, _ = run_seed(server, SEED_EXAMPLES[0], tmp_path)
    assert (listed, body) == (200, b"[]\n")

    created, body, _ = run_seed(server, SEED_EXAMPLES[2], tmp_path)
    assert created == 201
    obj = httpx.Response(200, content=body).json()
    assert obj["id"] == 1 and obj["name"] == "data" and obj["size"] == 600
    assert obj["type"] == "text/plain; charset=utf-8"
    assert obj["md5"] == hashlib.md5(b"x" * 600).hexdigest()
    assert obj["url"] == f"{server.base_url}/objects/1"

    searched, body, head = run_seed(server, SEED_EXAMPLES[1], tmp_path)
    assert searched == 200
    assert [o["name"] for o in httpx.Response(200, content=body).json()] == ["data"]
    assert f"<{server.base_url}/objects?page=1&search=data>; rel=" in head

    got, body, _ = run_seed(server, SEED_EXAMPLES[3], tmp_path)
    assert got == 200
    assert httpx.Response(200, content=body).json()["sha256"] == obj["sha256"]

    deleted, body, _ = run_seed(server, SEED_EXAMPLES[4], tmp_path)
    assert (deleted, body) == (204, b"")
    again, body, _ = run_seed(server, SEED_EXAMPLES[3], tmp_path)
    assert (again, body) == (404, b'{"message":"Not Found"}\n')


def test_validation_reports_every_field_at_once(server: ThreadServer) -> None:
    with server.client() as c:
        r = c.post("/objects")
        assert r.status_code == 400
        assert r.json() == {
            "name": ["Name field required", r"Name does not match ^[a-zA-Z0-9\._\-]+$"],
            "file": ["File field required"],
        }
        r = upload(c, "bad name!", b"")
        assert set(r.json()) == {"name", "file"}
        assert upload(c, "ok.txt", b"1").status_code == 201
        r = upload(c, "ok.txt", b"2")
        assert r.json() == {"name": ["Name already exists"]}


def test_limit_plus_one_is_a_file_error_and_nothing_is_kept(server: ThreadServer) -> None:
    with server.client() as c:
        r = upload(c, "big.bin", b"\x00" * (SMALL_UPLOAD_LIMIT + 1))
        assert r.status_code == 400
        assert r.json() == {"file": ["file too large, cannot exceed 32 MB"]}
        assert upload(c, "big.bin", b"\x00" * SMALL_UPLOAD_LIMIT).status_code == 201
    assert len(server.stored_blobs()) == 1


def test_png_round_trip_by_accept_type(server: ThreadServer) -> None:
    image = png()
    with server.client() as c:
        obj = upload(c, "pixel.png", image).json()
        assert obj["type"] == "image/png"
        r = c.get(f"/objects/{obj['id']}", headers={"Accept": obj["type"]})
        assert r.status_code == 200
        assert hashlib.md5(r.content).hexdigest() == obj["md5"]
        assert r.headers["content-type"] == "image/png"
        as_json = c.get(f"/objects/{obj['id']}", headers={"Accept": "application/json"})
        assert as_json.json()["id"] == obj["id"]
        octets = c.get(f"/objects/{obj['id']}", headers={"Accept": "application/octet-stream"})
        assert octets.content == image


def test_download_supports_range_and_conditional_get(server: ThreadServer) -> None:
    data = bytes(range(256)) * 40
    accept = {"Accept": "application/octet-stream"}
    with server.client() as c:
        obj = upload(c, "r.bin", data).json()
        url = f"/objects/{obj['id']}"
        r = c.get(url, headers={**accept, "Range": "bytes=10-19"})
        assert r.status_code == 206 and r.content == data[10:20]
        etag = r.headers["etag"]
        assert c.get(url, headers={**accept, "If-None-Match": etag}).status_code == 304
        assert c.get(url, headers={**accept, "Range": "bytes=99999-"}).status_code == 416
        head = c.head(url, headers=accept)
        assert head.headers["content-length"] == str(len(data))


def test_delete_removes_the_stored_file(server: ThreadServer) -> None:
    with server.client() as c:
        obj = upload(c, "gone.bin", b"bytes").json()
        stored = server.run(server.stowage.meta.get_object(obj["id"]))
        assert stored.blob_key in server.stored_blobs()
        assert c.delete(f"/objects/{obj['id']}").status_code == 204
        assert server.collect_blobs() == 1  # once the grace for uploads in flight is over
        assert stored.blob_key not in server.stored_blobs()
        assert c.delete(f"/objects/{obj['id']}").status_code == 404
        assert upload(c, "gone.bin", b"again").status_code == 201  # the name is free


def test_multipart_upload(server: ThreadServer) -> None:
    with server.client() as c:
        r = c.post(
            "/objects",
            data={"name": "form.txt"},
            files={"file": ("form.txt", b"y" * 700, "text/plain")},
        )
        assert r.status_code == 201, r.text
        assert r.json()["size"] == 700
        assert r.json()["type"] == "text/plain; charset=utf-8"
        r = c.post("/objects", data={"name": "nofile.txt"}, files={"other": ("x", b"z")})
        assert r.json() == {"file": ["File field required"]}


def test_api_prefix_and_wire_format(server: ThreadServer) -> None:
    with server.client() as c:
        obj = upload(c, "p.txt", b"p").json()
        r = c.get(f"/api/objects/{obj['id']}")
        assert r.status_code == 200
        assert r.headers["content-type"] == "application/json; charset=utf-8"
        assert r.text.endswith("\n")
        assert r.json()["url"] == f"{server.base_url}/api/objects/{obj['id']}"
        assert c.get("/api/user").json()["username"] == "admin"
        assert c.get("/objects/abc").json() == {"message": "Not Found"}
        assert c.get("/objects/99999999999999999999999").status_code == 404
        r = c.put(f"/objects/{obj['id']}")
        assert (r.status_code, r.json()) == (405, {"message": "Method Not Allowed"})
        index = c.get("/api/").json()
        assert index["objects_url"] == f"{server.base_url}/api/objects"


def test_every_auth_failure_is_404(server: ThreadServer) -> None:
    with server.client() as c:
        obj = upload(c, "secret.txt", b"s").json()
    cases = [
        ({}, "GET", "/objects"),
        ({}, "GET", f"/objects/{obj['id']}"),
        ({}, "POST", "/objects?name=x"),
        ({"Authorization": "Bearer stw_invalid"}, "GET", "/objects"),
        ({"Authorization": "Bearer stw_invalid"}, "GET", "/user"),
    ]
    reader = server.token_for("admin", "namespace:read")
    for method, path in [
        ("GET", "/objects"),
        ("POST", "/objects?name=y"),
        ("DELETE", f"/objects/{obj['id']}"),
    ]:
        cases.append(({"Authorization": f"Bearer {reader}"}, method, path))
    for headers, method, path in cases:
        r = httpx.request(method, server.base_url + path, headers=headers, content=b"data")
        assert (r.status_code, r.json()) == (404, {"message": "Not Found"}), (method, path)


def test_pagination_links_and_search(server: ThreadServer) -> None:
    with server.client() as c:
        for i in range(60):
            assert upload(c, f"item{i:02d}.bin", b"i").status_code == 201
        pages = []
        for page in (1, 2, 3):
            r = c.get("/objects", params={"page": page})
            pages.append([o["name"] for o in r.json()])
            prev, nxt = max(page - 1, 1), min(page + 1, 3)
            assert r.headers["link"] == (
                f'<{server.base_url}/objects?page={prev}>; rel="prev", '
                f'<{server.base_url}/objects?page={nxt}>; rel="next"'
            )
        assert [len(p) for p in pages] == [25, 25, 10]
        assert pages[0][0] == "item59.bin"  # newest first
        assert sorted(n for p in pages for n in p) == [f"item{i:02d}.bin" for i in range(60)]
        past = c.get("/objects", params={"page": 9})
        assert past.json() == []
        assert past.headers["link"] == (  # next points back to the last page
            f'<{server.base_url}/objects?page=8>; rel="prev", '
            f'<{server.base_url}/objects?page=3>; rel="next"'
        )
        for i in range(60, 75):  # exactly three full pages: page 3 is the last
            assert upload(c, f"item{i:02d}.bin", b"i").status_code == 201
        assert 'page=3>; rel="next"' in c.get("/objects", params={"page": 3}).headers["link"]
        assert len(c.get("/objects", params={"page": "x"}).json()) == 25

        found = c.get("/objects", params={"search": "ITEM1"})
        assert sorted(o["name"] for o in found.json()) == [f"item{i}.bin" for i in range(10, 20)]
        assert 'search=ITEM1>; rel="prev"' in found.headers["link"]
        assert c.get("/objects", params={"search": "%"}).json() == []  # wildcards escaped
        assert c.get("/objects", params={"search": "_"}).json() == []


def links(r: httpx.Response) -> tuple[str, str]:
    """The page numbers of a Djinn list's ``Link`` header: (prev, next)."""
    prev, next_ = r.headers["link"].split(", ")
    assert prev.endswith('>; rel="prev"') and next_.endswith('>; rel="next"')
    return prev.split("page=")[1].split(">")[0], next_.split("page=")[1].split(">")[0]


def test_pages_past_the_end_as_djinn_paginates(server: ThreadServer) -> None:
    """Djinn's ``database.Paginate``: a page above the row count shows the last page, one
    past the last page but not above the count is empty, and no rows means page=0."""
    with server.client() as c:
        for url in ("/objects", "/namespaces"):
            empty = c.get(url, params={"page": 5})
            assert (empty.json(), links(empty)) == ([], ("0", "0")), url
        for i in range(60):
            assert upload(c, f"row{i:02d}.bin", b"r", namespace="pages").status_code == 201
        for i in range(25):
            assert c.post("/namespaces", json={"name": f"space{i:02d}"}).status_code == 201
        for url, rows, pages in [
            ("/objects", 60, 3),
            ("/n/admin/pages/-/objects", 60, 3),
            ("/namespaces", 26, 2),
        ]:
            last = c.get(url, params={"page": pages}).json()
            clamped = c.get(url, params={"page": 99})  # above the row count
            assert clamped.json() == last and len(last) == rows - (pages - 1) * 25, url
            assert links(clamped) == (str(pages - 1), str(pages)), url
            beyond = c.get(url, params={"page": rows})  # past the last page, not the count
            assert (beyond.json(), links(beyond)) == ([], (str(rows - 1), str(pages))), url


def test_concurrent_uploads_of_one_name_give_one_object(server: ThreadServer) -> None:
    """Losers of the race fail alone: uploads of other names sent at the same moment (and
    committed together with them on SQLite) are all kept."""

    async def race() -> tuple[list[int], list[int]]:
        headers = {"Authorization": f"Bearer {server.token}"}
        async with httpx.AsyncClient(base_url=server.base_url, headers=headers) as c:
            same = [c.post("/objects", params={"name": "one.bin"}, content=b"x") for _ in range(20)]
            others = [
                c.post("/objects", params={"name": f"other-{i}.bin"}, content=b"y")
                for i in range(20)
            ]
            replies = await asyncio.gather(
                *(x for pair in zip(same, others, strict=True) for x in pair)
            )
        return sorted(r.status_code for r in replies[::2]), [r.status_code for r in replies[1::2]]

    same, others = asyncio.run(race())
    assert same == [201] + [400] * 19
    assert others == [201] * 20
    with server.client() as c:
        assert len(c.get("/objects", params={"search": "one.bin"}).json()) == 1
        assert len(c.get("/objects", params={"search": "other-"}).json()) == 20


@pytest.mark.parametrize(
    ("namespace", "message"),
    [
        ("a-b", "a-b: namespace: name can only contain letters and numbers"),
        ("@admin", "@admin: invalid namespace path"),
        ("a//b", "a//b: namespace: name can only contain letters and numbers"),
        ("/".join(["n"] * 21), "namespace: deeper than 20 levels"),
        ("x@nobody", "Namespace permission denied"),  # as for a real owner
    ],
)
def test_bad_namespace_parameter(server: ThreadServer, namespace: str, message: str) -> None:
    with server.client() as c:
        r = upload(c, "n.txt", b"n", namespace=namespace)
        assert r.status_code == 400
        assert message in r.json()["namespace"][0]
        assert c.get("/namespaces").json() == []  # nothing auto-created
