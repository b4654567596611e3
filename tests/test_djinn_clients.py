"""Djinn's own clients as their users run them: the Go test client's requests and the
scenarios of Djinn's integration tests, against a real ``stowage serve``."""

from __future__ import annotations

from datetime import datetime

import httpx

from .harness import ProcServer, ThreadServer
from .test_presigned import check_date_conditions
from .test_sniff import png

FULL = "object:read,write,delete namespace:read,write,delete invite:read,write"


def user_with_token(server: ProcServer, name: str) -> httpx.Client:
    """A user made with the CLI, and a client carrying a token with every scope above."""
    server.cli("users", "create", name, "--email", f"{name}@example.test")
    token = server.cli("tokens", "create", "--user", name, "--scope", FULL).stdout.strip()
    return httpx.Client(
        base_url=server.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    )


def test_dotted_and_underscored_user_names_work_everywhere(proc_server: ProcServer) -> None:
    """``gordon.freeman`` is a Djinn username; ``_`` stays valid for stowage's own users."""
    with (
        user_with_token(proc_server, "gordon.freeman") as gordon,
        user_with_token(proc_server, "alyx_vance") as alyx,
    ):
        made = gordon.post("/namespaces", json={"name": "lambda", "visibility": "internal"})
        assert made.status_code == 201, made.text
        assert made.json()["url"].endswith("/n/gordon.freeman/lambda")
        assert gordon.get("/n/gordon.freeman/lambda").json()["id"] == made.json()["id"]
        invite = gordon.post("/n/gordon.freeman/lambda/-/invites", json={"handle": "alyx_vance"})
        assert invite.status_code == 201, invite.text
        assert alyx.patch(f"/invites/{invite.json()['id']}").status_code == 200
        up = alyx.post(
            "/objects",
            params={"name": "crowbar.bin", "namespace": "lambda@gordon.freeman"},
            content=b"crowbar",
            headers={"content-type": "application/octet-stream"},
        )
        assert up.status_code == 201, up.text
        assert up.json()["user"]["username"] == "gordon.freeman"
        listed = alyx.get("/n/gordon.freeman/lambda/-/objects").json()
        assert [o["name"] for o in listed] == ["crowbar.bin"]
        people = gordon.get("/n/gordon.freeman/lambda/-/collaborators").json()
        assert [p["username"] for p in people] == ["alyx_vance"]
        assert (
            gordon.delete("/n/gordon.freeman/lambda/-/collaborators/alyx_vance").status_code == 204
        )
    for bad in ("..", "bad name!", "élise"):
        refused = proc_server.cli("users", "create", bad, check=False)
        assert refused.returncode == 1 and "user name must be" in refused.stderr, bad


def go_update(description: str, visibility: str) -> dict[str, str]:
    """The body Djinn's Go client sends on PATCH: every field, Go's field names."""
    return {"Parent": "", "Name": "", "Description": description, "Visibility": visibility}


def test_namespace_update_as_the_go_client_sends_it(proc_server: ProcServer) -> None:
    with user_with_token(proc_server, "eli.vance") as eli:
        eli.post(
            "/namespaces", json={"name": "mesa", "description": "black", "visibility": "internal"}
        )
        child = eli.post(
            "/namespaces", json={"name": "sector", "parent": "mesa", "description": "c"}
        )
        assert child.json()["visibility"] == "internal"

        r = eli.patch("/n/eli.vance/mesa/sector", json=go_update("", "public"))
        assert r.status_code == 200, r.text
        assert (r.json()["visibility"], r.json()["description"]) == ("internal", "c")

        r = eli.patch("/n/eli.vance/mesa", json=go_update("", "public"))
        assert r.status_code == 200, r.text
        assert (r.json()["visibility"], r.json()["description"]) == ("public", "black")
        assert eli.get("/n/eli.vance/mesa/sector").json()["visibility"] == "public"

        r = eli.patch("/n/eli.vance/mesa/sector", json=go_update("lab", "private"))
        assert (r.json()["visibility"], r.json()["description"]) == ("public", "lab")


def advertised_urls(value: object) -> set[str]:
    """Every ``*_url`` (and ``url``) in a JSON value, at any depth."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, str) and (key == "url" or key.endswith("_url")):
                found.add(item)
            else:
                found |= advertised_urls(item)
    elif isinstance(value, list):
        for item in value:
            found |= advertised_urls(item)
    return found


def test_every_advertised_url_answers(server: ThreadServer) -> None:
    """Djinn clients follow the URLs in the JSON they get: none may be a dead end."""
    bob = server.new_user_token("bob", FULL)
    with server.client() as c:
        c.post("/namespaces", json={"name": "hub", "visibility": "public"})
        c.post("/namespaces", json={"name": "spoke", "parent": "hub"})
        obj = c.post("/objects", params={"name": "o.bin", "namespace": "hub/spoke"}, content=b"o")
        c.post("/n/admin/hub/-/invites", json={"handle": "bob"})
        server.client(bob).patch(f"/invites/{c.get('/n/admin/hub/-/invites').json()[0]['id']}")
        for prefix in ("", "/api"):
            documents = [
                c.get(f"{prefix}/").json(),
                c.get(f"{prefix}/objects/{obj.json()['id']}").json(),
                c.get(f"{prefix}/namespaces").json(),
                c.get(f"{prefix}/n/admin/hub/-/collaborators").json(),
            ]
            urls = advertised_urls(documents)
            assert f"{server.base_url}{prefix}/n/admin/hub/-/webhooks" in urls
            assert f"{server.base_url}{prefix}/objects/{obj.json()['id']}/builds" in urls
            for url in sorted(urls):
                assert c.get(url).status_code != 404, url

        children = c.get("/n/admin/hub/-/namespaces")
        assert [n["path"] for n in children.json()] == ["hub/spoke"]
        assert children.headers["link"].endswith('/n/admin/hub/-/namespaces?page=1>; rel="next"')
        assert c.get("/n/admin/hub/spoke/-/namespaces").json() == []
        builds = c.get(obj.json()["builds_url"])
        assert (builds.json(), builds.headers["link"].count("page=0")) == ([], 2)


def test_absent_resources_keep_djinns_gates(server: ThreadServer) -> None:
    """Empty, but behind the scopes and access checks of Djinn's routes."""
    reader = server.token_for("admin", "object:read namespace:read")
    with server.client() as c, server.client(reader) as r:
        c.post("/namespaces", json={"name": "open", "visibility": "public"})
        c.post("/namespaces", json={"name": "shut"})
        obj = c.post("/objects", params={"name": "p.bin", "namespace": "open"}, content=b"p")
        builds = f"/objects/{obj.json()['id']}/builds"
        assert c.get(builds).status_code == 200
        assert r.get(builds).status_code == 404  # object:read alone: Djinn wants build:read
        assert httpx.get(server.base_url + builds).status_code == 404
        for resource in ("builds", "cron", "images", "variables", "keys"):
            assert (c.get(f"/{resource}").status_code, r.get(f"/{resource}").status_code) == (
                200,
                404,
            ), resource
        for resource in ("builds", "images", "variables", "keys", "namespaces"):
            assert httpx.get(f"{server.base_url}/n/admin/open/-/{resource}").status_code == 200
            assert httpx.get(f"{server.base_url}/n/admin/shut/-/{resource}").status_code == 404
            assert r.get(f"/n/admin/shut/-/{resource}").status_code == 200
        assert c.get("/n/admin/shut/-/webhooks").status_code == 200
        assert r.get("/n/admin/shut/-/webhooks").status_code == 404


def test_djinn_downloads_carry_last_modified(server: ThreadServer) -> None:
    """Djinn serves bytes with Go's ``http.ServeContent(name, created_at)``."""
    with server.client() as c:
        obj = c.post("/objects", params={"name": "p.png"}, content=png()).json()
        url = f"/objects/{obj['id']}"
        when = datetime.fromisoformat(obj["created_at"])

        def fetch(method: str, headers: dict[str, str]) -> httpx.Response:
            return c.request(method, url, headers={"Accept": obj["type"], **headers})

        check_date_conditions(fetch, when)
