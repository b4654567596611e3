"""Who may do what, table-driven: every endpoint, caller and scope, present or absent.

The world: alice owns three root namespaces (public, internal, private) and one object in
each, plus one outside any namespace. bob collaborates on all three (invited, accepted);
carol is merely signed in. Each person has a token with every scope (``_full``) and one
with none that matter here (``_none``); ``anon`` sends no token. The expectations below are
written out from Djinn's rules (reference §4.4), not computed from stowage's code.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx
import pytest

from .harness import ThreadServer

FULL = "object:read,write,delete namespace:read,write,delete invite:read,write"
NONE = "build:read"
CALLERS = ["anon", "alice_full", "alice_none", "bob_full", "bob_none", "carol_full", "carol_none"]
PLACES = {"top": None, "pub": "pubspace", "int": "intspace", "priv": "privspace"}
VISIBILITY = {"pub": "public", "int": "internal", "priv": "private"}


@dataclass
class World:
    server: ThreadServer
    tokens: dict[str, str | None]
    objects: dict[str, int]

    def call(self, caller: str, method: str, path: str, **kwargs: object) -> httpx.Response:
        token = self.tokens[caller]
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        headers.update(kwargs.pop("headers", {}))  # type: ignore[arg-type]
        return httpx.request(method, self.server.base_url + path, headers=headers, **kwargs)  # type: ignore[arg-type]

    def upload(self, caller: str, name: str, place: str) -> httpx.Response:
        params = {"name": name}
        if PLACES[place]:
            params["namespace"] = f"{PLACES[place]}@alice"
        return self.call(caller, "POST", "/objects", params=params, content=b"payload")


@pytest.fixture
def world(server: ThreadServer) -> World:
    tokens: dict[str, str | None] = {"anon": None}
    for person in ("alice", "bob", "carol"):
        tokens[f"{person}_full"] = server.new_user_token(person, FULL, f"{person}@example.test")
        tokens[f"{person}_none"] = server.token_for(person, NONE)
    w = World(server, tokens, {})
    for place, namespace in PLACES.items():
        if namespace:
            body = {"name": namespace, "visibility": VISIBILITY[place]}
            assert w.call("alice_full", "POST", "/namespaces", json=body).status_code == 201
            invite = w.call(
                "alice_full", "POST", f"/n/alice/{namespace}/-/invites", json={"handle": "bob"}
            ).json()
            assert w.call("bob_full", "PATCH", f"/invites/{invite['id']}").status_code == 200
        created = w.upload("alice_full", f"{place}.txt", place)
        assert created.status_code == 201, created.text
        w.objects[place] = created.json()["id"]
    return w


def expect(table: dict[str, set[str]], place: str, caller: str) -> bool:
    return caller in table[place]


EVERYONE = set(CALLERS)
SIGNED_IN_READERS = {"alice_full", "bob_full", "carol_full"}
OWNER_AND_COLLABORATOR = {"alice_full", "bob_full"}

# GET /objects/{id} (JSON) and its download: who gets 200 (everyone else: 404).
READ = {
    "top": {"alice_full"},
    "pub": EVERYONE,  # public: no token and no object:read needed
    "int": SIGNED_IN_READERS,
    "priv": OWNER_AND_COLLABORATOR,
}
# POST /objects?namespace=<place>@alice: 201, else 400 "permission denied" or 404.
UPLOAD_OK = {
    "top": set(),
    "pub": OWNER_AND_COLLABORATOR,
    "int": OWNER_AND_COLLABORATOR,
    "priv": OWNER_AND_COLLABORATOR,
}
UPLOAD_DENIED = {"carol_full"}  # signed in with object:write, but not a collaborator
# DELETE /objects/{id}: 204, else 404.
DELETE = {
    "top": {"alice_full"},
    "pub": OWNER_AND_COLLABORATOR,
    "int": OWNER_AND_COLLABORATOR,
    "priv": OWNER_AND_COLLABORATOR,
}
# GET /n/alice/<ns> and GET /n/alice/<ns>/-/objects: 200, else 404.
NAMESPACE_READ = {"pub": EVERYONE, "int": SIGNED_IN_READERS, "priv": OWNER_AND_COLLABORATOR}
# Owner-only namespace operations.
OWNER_ONLY = {"alice_full"}


@pytest.mark.parametrize("place", list(PLACES))
def test_get_and_download(world: World, place: str) -> None:
    oid = world.objects[place]
    for caller in CALLERS:
        allowed = expect(READ, place, caller)
        r = world.call(caller, "GET", f"/objects/{oid}")
        assert r.status_code == (200 if allowed else 404), (caller, place, r.text)
        if allowed:
            assert r.json()["id"] == oid
        else:
            assert r.json() == {"message": "Not Found"}
        d = world.call(
            caller, "GET", f"/objects/{oid}", headers={"Accept": "application/octet-stream"}
        )
        assert d.status_code == (200 if allowed else 404), (caller, place)
        if allowed:
            assert d.content == b"payload"


@pytest.mark.parametrize("place", [p for p in PLACES if p != "top"])
def test_upload_into_alices_namespaces(world: World, place: str) -> None:
    for caller in CALLERS:
        r = world.upload(caller, f"by-{caller.replace('_', '-')}.txt", place)
        if caller in UPLOAD_OK[place]:
            assert r.status_code == 201, (caller, r.text)
            body = r.json()
            assert body["user_id"] == body["namespace"]["user_id"]  # owned by alice
            assert body["author"]["username"] == caller.split("_")[0]
        elif caller in UPLOAD_DENIED:
            assert r.status_code == 400
            assert r.json() == {"namespace": ["Namespace permission denied"]}
        else:
            assert r.status_code == 404, (caller, r.text)


@pytest.mark.parametrize("place", list(PLACES))
def test_delete(world: World, place: str) -> None:
    denied = [c for c in CALLERS if c not in DELETE[place]]
    for caller in denied:
        r = world.call(caller, "DELETE", f"/objects/{world.objects[place]}")
        assert r.status_code == 404, (caller, place)
    assert world.call("alice_full", "GET", f"/objects/{world.objects[place]}").status_code == 200
    for caller in sorted(DELETE[place]):
        fresh = world.upload("alice_full", f"del-{caller.replace('_', '-')}.txt", place).json()
        r = world.call(caller, "DELETE", f"/objects/{fresh['id']}")
        assert r.status_code == 204, (caller, place)
        assert world.call("alice_full", "GET", f"/objects/{fresh['id']}").status_code == 404


@pytest.mark.parametrize("place", [p for p in PLACES if p != "top"])
def test_namespace_endpoints(world: World, place: str) -> None:
    ns = f"/n/alice/{PLACES[place]}"
    for caller in CALLERS:
        ok = expect(NAMESPACE_READ, place, caller)
        r = world.call(caller, "GET", ns)
        assert r.status_code == (200 if ok else 404), (caller, place)
        listed = world.call(caller, "GET", ns + "/-/objects")
        assert listed.status_code == (200 if ok else 404), (caller, place)
        if ok:
            assert [o["name"] for o in listed.json()] == [f"{place}.txt"]
        owner = caller in OWNER_ONLY
        for method, path, kwargs in [
            ("GET", ns + "/-/collaborators", {}),
            ("GET", ns + "/-/invites", {}),
            ("PATCH", ns, {"json": {"description": "changed"}}),
            ("POST", ns + "/-/invites", {"json": {"handle": "carol"}}),
        ]:
            r = world.call(caller, method, path, **kwargs)
            expected = (201 if method == "POST" else 200) if owner else 404
            assert r.status_code == expected, (caller, method, path, r.text)
        world.call("alice_full", "DELETE", f"/invites/{_invite_id(world, place)}")


def _invite_id(world: World, place: str) -> int:
    invites = world.call("alice_full", "GET", f"/n/alice/{PLACES[place]}/-/invites").json()
    return invites[0]["id"] if invites else 0


def test_lists_show_own_and_shared_objects(world: World) -> None:
    expected = {
        "alice_full": {"top.txt", "pub.txt", "int.txt", "priv.txt"},
        "bob_full": {"pub.txt", "int.txt", "priv.txt"},  # shared with him
        "carol_full": set(),  # public objects are readable, but not in her list
    }
    for caller in CALLERS:
        r = world.call(caller, "GET", "/objects")
        if caller in expected:
            assert {o["name"] for o in r.json()} == expected[caller], caller
        else:
            assert r.status_code == 404, caller
    names = {n["path"] for n in world.call("bob_full", "GET", "/namespaces").json()}
    assert names == {"pubspace", "intspace", "privspace"}
    assert world.call("carol_full", "GET", "/namespaces").json() == []


def test_the_runloop_dialect_follows_the_same_rules(world: World) -> None:
    """Cross-tenant reads through /v1 agree with the Djinn table."""
    for place, oid in world.objects.items():
        public_id = world.call("alice_full", "GET", f"/objects/{oid}").json()["object_id"]
        for caller in ("alice_full", "bob_full", "carol_full"):
            r = world.call(caller, "GET", f"/v1/objects/{public_id}")
            allowed = expect(READ, place, caller)
            assert r.status_code == (200 if allowed else 404), (caller, place)
    public = world.call("carol_full", "GET", "/v1/objects/list_public").json()
    assert [o["name"] for o in public["objects"]] == ["pub.txt"]


def _users_in(body: object) -> list[dict[str, object]]:
    """Every user JSON in a reply: the dicts with a ``username``, however deeply nested."""
    if isinstance(body, list):
        return [u for item in body for u in _users_in(item)]
    if not isinstance(body, dict):
        return []
    found = [body] if "username" in body else []
    return found + [u for value in body.values() for u in _users_in(value)]


def test_an_email_address_is_shown_only_to_its_owner(world: World) -> None:
    """Djinn's user JSON carries ``email``; stowage shows it to that user alone and sends
    ``""`` to everyone else (anonymous readers of public things, collaborators, inviters),
    so a Djinn client still decodes a string."""
    invite = world.call(
        "alice_full", "POST", "/n/alice/pubspace/-/invites", json={"handle": "carol"}
    )
    assert invite.status_code == 201
    reads = [
        f"/objects/{world.objects['pub']}",
        f"/objects/{world.objects['priv']}",
        "/objects",
        "/n/alice/pubspace",
        "/n/alice/pubspace/-/objects",
        "/n/alice/privspace/-/collaborators",
        "/n/alice/pubspace/-/invites",
        "/namespaces",
        "/invites",
        "/user",
    ]
    for caller in CALLERS:
        me = caller.split("_")[0]
        for path in reads:
            r = world.call(caller, "GET", path)
            for user in _users_in(r.json()) if r.status_code == 200 else []:
                own = f"{me}@example.test" if user["username"] == me else ""
                assert user["email"] == own, (caller, path, user)
    # The checks above did reach the user JSON of each kind of reply.
    assert world.call("anon", "GET", "/n/alice/pubspace").json()["user"]["email"] == ""
    assert world.call("alice_full", "GET", "/user").json()["email"] == "alice@example.test"
    people = world.call("alice_full", "GET", "/n/alice/privspace/-/collaborators").json()
    assert [(p["username"], p["email"]) for p in people] == [("bob", "")]
    invites = world.call("carol_full", "GET", "/invites").json()
    assert [(i["invitee"]["email"], i["inviter"]["email"]) for i in invites] == [
        ("carol@example.test", "")
    ]


def test_a_namespace_reference_does_not_tell_unknown_users_from_real_ones(world: World) -> None:
    """``path@owner`` gives one answer whether the owner exists, has no such namespace, or
    has one the caller may not use: uniform-404 in spirit, for the upload's field error."""
    for namespace in ("privspace@alice", "nothere@alice", "privspace@nobody", "x@nobody"):
        r = world.call(
            "carol_full",
            "POST",
            "/objects",
            params={"name": "x", "namespace": namespace},
            content=b"x",
        )
        assert (r.status_code, r.json()) == (
            400,
            {"namespace": ["Namespace permission denied"]},
        ), namespace


def test_a_token_without_read_scopes_cannot_tell_others_things_from_absent_ones(
    world: World,
) -> None:
    """The scope is checked after access: carol's scope-less token gets 404 for alice's
    private object and namespace exactly as for ones that do not exist (Runloop and the
    console answer a missing scope with 403, which would otherwise confirm them)."""
    public_id = world.call("alice_full", "GET", f"/objects/{world.objects['priv']}").json()
    for path in (f"/v1/objects/{public_id['object_id']}", "/v1/objects/obj_01nosuchobject"):
        r = world.call("carol_none", "GET", path)
        assert r.status_code == 404, (path, r.text)
    cookies = {"stowage_console": world.tokens["carol_none"] or ""}
    with httpx.Client(base_url=world.server.base_url, cookies=cookies) as console:
        for path in ("/n/alice/privspace", "/n/alice/nothere", "/n/nobody/privspace"):
            assert console.get("/console" + path).status_code == 404, path
