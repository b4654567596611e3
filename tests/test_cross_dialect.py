"""One store, two dialects: what one API writes, the other reads, in both directions."""

from __future__ import annotations

import hashlib
import os

import httpx

from .harness import ThreadServer


def test_runloop_object_is_readable_through_djinn(server: ThreadServer) -> None:
    data = os.urandom(700_000)
    with server.client() as c:
        created = c.post(
            "/v1/objects", json={"name": "from-runloop.bin", "content_type": "binary"}
        ).json()
        httpx.put(created["upload_url"], content=data).raise_for_status()
        c.post(f"/v1/objects/{created['id']}/complete").raise_for_status()

        found = c.get("/objects", params={"search": "from-runloop"}).json()
        assert [o["object_id"] for o in found] == [created["id"]]
        djinn = found[0]
        assert djinn["md5"] == hashlib.md5(data).hexdigest()
        assert djinn["sha256"] == hashlib.sha256(data).hexdigest()
        assert djinn["size"] == len(data)
        assert djinn["type"] == "application/octet-stream"
        r = c.get(f"/objects/{djinn['id']}", headers={"Accept": "application/octet-stream"})
        assert r.content == data

        assert c.delete(f"/objects/{djinn['id']}").status_code == 204
        assert c.get(f"/v1/objects/{created['id']}").json()["state"] == "DELETED"


def test_unfinished_runloop_uploads_are_invisible_to_djinn(server: ThreadServer) -> None:
    with server.client() as c:
        pending = c.post("/v1/objects", json={"name": "pending", "content_type": "text"}).json()
        httpx.put(pending["upload_url"], content=b"half").raise_for_status()
        stored = server.run(server.stowage.meta.get_object(pending["id"]))
        assert c.get("/objects").json() == []
        assert c.get(f"/objects/{stored.id}").status_code == 404
        assert c.delete(f"/objects/{stored.id}").status_code == 404


def test_djinn_object_is_readable_through_runloop(server: ThreadServer) -> None:
    text = "line\n" * 200
    with server.client() as c:
        obj = c.post("/objects", params={"name": "notes.txt"}, content=text.encode()).json()
        view = c.get(f"/v1/objects/{obj['object_id']}").json()
        assert view["name"] == "notes.txt"
        assert view["state"] == "READ_ONLY"
        assert view["size_bytes"] == len(text)
        assert view["content_type"] == "text"
        url = c.get(f"/v1/objects/{obj['object_id']}/download").json()["download_url"]
        assert httpx.get(url).text == text
        listed = c.get("/v1/objects", params={"name": "notes"}).json()
        assert [o["id"] for o in listed["objects"]] == [obj["object_id"]]

        # Deleting through Runloop frees the Djinn name at once.
        assert c.post(f"/v1/objects/{obj['object_id']}/delete").json()["state"] == "DELETED"
        assert c.get(f"/objects/{obj['id']}").status_code == 404
        again = c.post("/objects", params={"name": "notes.txt"}, content=b"new")
        assert again.status_code == 201


def test_runloop_names_repeat_without_blocking_djinn_names(server: ThreadServer) -> None:
    with server.client() as c:
        for _ in range(2):
            r = c.post("/v1/objects", json={"name": "shared.txt", "content_type": "text"})
            assert r.status_code == 200
        assert c.post("/objects", params={"name": "shared.txt"}, content=b"1").status_code == 201
        assert c.post("/objects", params={"name": "shared.txt"}, content=b"2").status_code == 400
        assert (
            c.post("/v1/objects", json={"name": "shared.txt", "content_type": "text"}).status_code
            == 200
        )


def test_public_namespace_objects_appear_in_runloop_list_public(server: ThreadServer) -> None:
    other = server.new_user_token("reader", "object:read")
    with server.client() as c:
        c.post("/namespaces", json={"name": "releases", "visibility": "public"})
        obj = c.post(
            "/objects",
            params={"name": "v1.tgz", "namespace": "releases"},
            content=b"\x1f\x8b\x08rest",
        ).json()
        assert obj["type"] == "application/x-gzip"
    with server.client(other) as r:
        public = r.get("/v1/objects/list_public").json()
        assert [o["id"] for o in public["objects"]] == [obj["object_id"]]
        assert public["objects"][0]["content_type"] == "tgz"
        assert r.get(f"/v1/objects/{obj['object_id']}").status_code == 200
        assert r.get("/v1/objects").json()["objects"] == []  # readable, but not hers
        assert r.post(f"/v1/objects/{obj['object_id']}/delete").status_code == 403  # no scope
