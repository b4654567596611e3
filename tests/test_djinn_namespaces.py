"""Namespaces, collaborators and invites through the Djinn dialect."""

from __future__ import annotations

import httpx
import pytest

from .harness import ThreadServer

FULL = "object:read,write,delete namespace:read,write,delete invite:read,write"
EMPTY_NAME = [  # Djinn runs every rule: an empty name breaks all three
    "Name field required",
    "Name must be between 3 and 32 characters in length",
    "Name can only have letters, and numbers",
]


def client(server: ThreadServer, token: str) -> httpx.Client:
    return server.client(token)


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        ({}, {"name": EMPTY_NAME}),
        ({"name": ""}, {"name": EMPTY_NAME}),
        ({"name": "ab"}, {"name": ["Name must be between 3 and 32 characters in length"]}),
        (
            {"name": "has space"},
            {"name": ["Name can only have letters, and numbers"]},
        ),
        ({"name": "x" * 33}, {"name": ["Name must be between 3 and 32 characters in length"]}),
        (
            {"name": "okay", "description": "d" * 256},
            {"description": ["Description cannot be longer than 255 characters in length"]},
        ),
        (
            {"name": "okay", "visibility": "secret"},
            {"visibility": ["Visibility must be one of private, internal, public"]},
        ),
        ({"name": "okay", "parent": "missing"}, {"parent": ["Parent namespace does not exist"]}),
    ],
)
def test_create_validation(server: ThreadServer, body: dict, errors: dict) -> None:
    with server.client() as c:
        r = c.post("/namespaces", json=body)
        assert r.status_code == 400
        assert r.json() == errors
        assert c.get("/namespaces").json() == []


def test_children_inherit_and_updates_cascade(server: ThreadServer) -> None:
    with server.client() as c:
        root = c.post("/namespaces", json={"name": "proj", "visibility": "internal"}).json()
        assert (root["root_id"], root["parent_id"]) == (root["id"], None)
        child = c.post(
            "/namespaces", data={"Name": "docs", "Parent": "proj", "Visibility": "public"}
        ).json()  # form body, field names in any case
        assert child["root_id"] == root["id"] and child["parent_id"] == root["id"]
        assert child["path"] == "proj/docs"
        assert child["visibility"] == "internal"  # inherited, not what was asked
        assert c.post("/namespaces", json={"name": "proj"}).json() == {
            "name": ["Name already exists"]
        }

        r = c.patch("/n/admin/proj", json={"visibility": "public", "description": "hello"})
        assert r.json()["visibility"] == "public" and r.json()["description"] == "hello"
        assert c.get("/n/admin/proj/docs").json()["visibility"] == "public"
        r = c.patch("/n/admin/proj/docs", json={"visibility": "private"})
        assert r.json()["visibility"] == "public"  # a child keeps what it inherits

        obj = c.post("/objects", params={"name": "f.txt", "namespace": "proj/docs"}, content=b"f")
        assert obj.json()["namespace"]["path"] == "proj/docs"
        assert c.delete("/n/admin/proj").status_code == 204
        assert c.get("/n/admin/proj/docs").status_code == 404
        kept = c.get(f"/objects/{obj.json()['id']}").json()
        assert kept["namespace_id"] is None and kept["user_id"] == obj.json()["user_id"]
        assert c.get("/namespaces").json() == []


def test_upload_auto_creates_only_missing_segments_in_own_account(server: ThreadServer) -> None:
    with server.client() as c:
        c.post("/namespaces", json={"name": "base", "visibility": "public"})
        r = c.post("/objects", params={"name": "a.txt", "namespace": "base/x/y"}, content=b"a")
        assert r.status_code == 201
        paths = {n["path"]: n for n in c.get("/namespaces").json()}
        assert sorted(paths) == ["base", "base/x", "base/x/y"]
        assert paths["base/x/y"]["visibility"] == "public"
        assert paths["base/x/y"]["root_id"] == paths["base"]["id"]
        r = c.post("/objects", params={"name": "b.txt", "namespace": "base/x@admin"}, content=b"b")
        assert r.json()["namespace_id"] == paths["base/x"]["id"]
        assert c.get("/n/admin/base/x/y/-/objects").json()[0]["name"] == "a.txt"


def test_names_are_unique_per_namespace_not_globally(server: ThreadServer) -> None:
    with server.client() as c:
        for namespace in (None, "one", "two"):
            params = {"name": "same.txt", **({"namespace": namespace} if namespace else {})}
            assert c.post("/objects", params=params, content=b"s").status_code == 201
            again = c.post("/objects", params=params, content=b"s")
            assert again.json() == {"name": ["Name already exists"]}


def test_invite_accept_collaborate_and_remove(server: ThreadServer) -> None:
    alice = server.new_user_token("alice", FULL, email="alice@example.test")
    bob = server.new_user_token("bob", FULL, email="bob@example.test")
    with client(server, alice) as a, client(server, bob) as b:
        a.post("/namespaces", json={"name": "team"})
        assert b.post(
            "/objects", params={"name": "x", "namespace": "team@alice"}, content=b"x"
        ).json() == {"namespace": ["Namespace permission denied"]}
        for handle, answer in [
            ("nobody", {"message": "No such user"}),
            ("alice", {"handle": ["Cannot invite self"]}),
            ("alice@example.test", {"handle": ["Cannot invite self"]}),
            ("", {"handle": ["Username Or Email field required"]}),
        ]:
            r = a.post("/n/alice/team/-/invites", json={"handle": handle})
            assert (r.status_code, r.json()) == (400, answer), handle
        assert a.post("/n/alice/team/-/invites", json={}).json() == {
            "handle": ["Username Or Email field required"]
        }
        invite = a.post("/n/alice/team/-/invites", json={"handle": "bob@example.test"}).json()
        assert invite["invitee"]["username"] == "bob"
        assert a.post("/n/alice/team/-/invites", json={"handle": "bob"}).json() == {
            "handle": ["Invite already sent"]
        }
        assert [i["id"] for i in b.get("/invites").json()] == [invite["id"]]
        assert a.patch(f"/invites/{invite['id']}").status_code == 404  # not hers to accept
        assert b.patch(f"/invites/{invite['id']}").status_code == 200
        assert b.get("/invites").json() == []

        people = a.get("/n/alice/team/-/collaborators").json()
        assert [p["username"] for p in people] == ["bob"]
        assert people[0]["url"].endswith("/n/alice/team/-/collaborators/bob")
        assert b.get("/n/alice/team/-/collaborators").status_code == 404  # owner only
        up = b.post("/objects", params={"name": "x", "namespace": "team@alice"}, content=b"x")
        assert up.status_code == 201
        assert a.post("/n/alice/team/-/invites", json={"handle": "bob"}).json() == {
            "handle": ["Already a collaborator"]
        }

        assert a.delete("/n/alice/team/-/collaborators/bob").status_code == 204
        for gone, message in [("bob", "No such collaborator"), ("nobody", "No such user")]:
            r = a.delete(f"/n/alice/team/-/collaborators/{gone}")
            assert (r.status_code, r.json()) == (400, {"message": message})
        assert b.delete("/n/alice/team/-/collaborators/bob").status_code == 404  # owner only
        assert b.get(f"/objects/{up.json()['id']}").status_code == 404  # access is gone


def test_reject_and_withdraw_invites(server: ThreadServer) -> None:
    alice = server.new_user_token("alice", FULL)
    bob = server.new_user_token("bob", FULL)
    with client(server, alice) as a, client(server, bob) as b:
        a.post("/namespaces", json={"name": "team"})
        first = a.post("/n/alice/team/-/invites", json={"handle": "bob"}).json()
        assert b.delete(f"/invites/{first['id']}").status_code == 204  # declined
        second = a.post("/n/alice/team/-/invites", json={"handle": "bob"}).json()
        assert a.delete(f"/invites/{second['id']}").status_code == 204  # withdrawn
        assert b.get("/invites").json() == []
        assert b.get("/n/alice/team").status_code == 404


def test_json_sent_as_a_form_is_read_as_json(server: ThreadServer) -> None:
    """``curl -d '{...}'`` labels JSON as a form; the fields still count."""
    with server.client() as c:
        form = {"content-type": "application/x-www-form-urlencoded"}
        r = c.post("/namespaces", content=b'{"name":"curlish"}', headers=form)
        assert r.status_code == 201
        r = c.patch("/n/admin/curlish", content=b'{"visibility":"public"}', headers=form)
        assert r.json()["visibility"] == "public"
        r = c.post("/namespaces", content=b"name=formish&visibility=internal", headers=form)
        assert r.json()["visibility"] == "internal"


def test_bad_bodies_are_400_not_500(server: ThreadServer) -> None:
    with server.client() as c:
        for raw in (b"{not json", b"[1]", b'{"name": 5}'):
            r = c.post("/namespaces", content=raw, headers={"content-type": "application/json"})
            assert r.status_code == 400, raw
        assert c.get("/n/admin/bad-path!").status_code == 404
