"""Idempotent create and complete over the wire: a request sent again under the same key
(``x-request-id``, which the SDKs keep across retries and fill from ``idempotency_key=``, or
``Idempotency-Key``) is carried out once, and its answer is given again."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import httpx
import pytest

from stowage.processes import start_serve

from .backends import BACKENDS, backend_settings
from .harness import ThreadServer

DAY_MS = 24 * 3600 * 1000
BODY = {"name": "once.txt", "content_type": "text", "metadata": {"k": "v"}, "ttl_ms": 3_600_000}


def ids_named(c: httpx.Client, name: str) -> list[str]:
    """Ids of the caller's objects with this name, in any state but DELETED."""
    return [o["id"] for o in c.get("/v1/objects", params={"name": name}).json()["objects"]]


def post(
    c: httpx.Client, key: str, body: dict | None = None, header: str = "x-request-id"
) -> httpx.Response:
    return c.post("/v1/objects", json=body or BODY, headers={header: key})


@pytest.mark.parametrize("header", ["x-request-id", "Idempotency-Key"])
def test_the_same_key_twice_makes_one_object(server: ThreadServer, header: str) -> None:
    with server.client() as c:
        first = post(c, "retry-1", header=header)
        server.clock.advance(5000)  # the second answer is no newer than the first
        again = post(c, "retry-1", header=header)
        assert first.status_code == again.status_code == 200
        a, b = first.json(), again.json()
        urls = a.pop("upload_url"), b.pop("upload_url")
        assert a == b
        assert ids_named(c, "once.txt") == [a["id"]]

        assert httpx.put(urls[1], content=b"bytes").status_code == 200  # a valid URL
        assert c.post(f"/v1/objects/{a['id']}/complete").json()["size_bytes"] == 5
        late = post(c, "retry-1", header=header).json()  # the object as it is now
        assert (late["id"], late["state"], late.get("upload_url")) == (a["id"], "READ_ONLY", None)


def test_a_key_reused_for_another_request_is_a_409_that_is_not_retried(
    server: ThreadServer,
) -> None:
    with server.client() as c:
        made = post(c, "reused").json()
        r = post(c, "reused", {**BODY, "ttl_ms": 60_000})
        assert r.status_code == 409
        assert r.headers["x-should-retry"] == "false"
        assert "different request" in r.json()["message"]
        r = c.post(f"/v1/objects/{made['id']}/complete", headers={"x-request-id": "reused"})
        assert r.status_code == 409
        assert "different request" in r.json()["message"]
        assert c.get(f"/v1/objects/{made['id']}").json()["state"] == "UPLOADING"
        assert ids_named(c, "once.txt") == [made["id"]]


def test_keys_belong_to_the_token_that_sent_them(server: ThreadServer) -> None:
    other = server.token_for("admin", "object:read,write")
    with server.client() as c, server.client(other) as d:
        mine, theirs = post(c, "shared-key").json(), post(d, "shared-key").json()
        assert mine["id"] != theirs["id"]
        assert sorted(ids_named(c, "once.txt")) == sorted([mine["id"], theirs["id"]])


def test_without_a_key_every_create_is_new(server: ThreadServer) -> None:
    with server.client() as c:
        c.post("/v1/objects", json=BODY).raise_for_status()
        c.post("/v1/objects", json=BODY, headers={"x-request-id": ""}).raise_for_status()
        assert len(ids_named(c, "once.txt")) == 2


def test_concurrent_twins_make_one_object(server: ThreadServer) -> None:
    async def twins() -> list[httpx.Response]:
        headers = {"Authorization": f"Bearer {server.token}", "x-request-id": "twins"}
        async with httpx.AsyncClient(base_url=server.base_url, headers=headers) as c:
            return await asyncio.gather(*(c.post("/v1/objects", json=BODY) for _ in range(8)))

    answers = asyncio.run(twins())
    assert [r.status_code for r in answers] == [200] * 8
    assert len({r.json()["id"] for r in answers}) == 1
    with server.client() as c:
        assert ids_named(c, "once.txt") == [answers[0].json()["id"]]


def test_a_retried_complete_is_answered_not_refused(server: ThreadServer) -> None:
    with server.client() as c:
        made = post(c, "make").json()
        r = c.post(f"/v1/objects/{made['id']}/complete", headers={"x-request-id": "seal"})
        assert r.status_code == 409  # nothing uploaded: Runloop's "not in a state to complete"
        assert r.headers["x-should-retry"] == "false"
        assert "upload_url" in r.json()["message"]

        assert httpx.put(made["upload_url"], content=b"abc").status_code == 200
        done = c.post(f"/v1/objects/{made['id']}/complete", headers={"x-request-id": "seal"})
        again = c.post(f"/v1/objects/{made['id']}/complete", headers={"Idempotency-Key": "seal"})
        assert done.status_code == again.status_code == 200
        assert done.json() == again.json()
        assert again.json()["state"] == "READ_ONLY"

        fresh = c.post(f"/v1/objects/{made['id']}/complete", headers={"x-request-id": "other"})
        assert fresh.status_code == 409  # a new request to complete it again: the spec's 409
        assert fresh.headers["x-should-retry"] == "false"

        deleted = c.post(f"/v1/objects/{made['id']}/delete", headers={"x-request-id": "rm"})
        twice = c.post(f"/v1/objects/{made['id']}/delete", headers={"x-request-id": "rm"})
        assert deleted.status_code == twice.status_code == 200  # delete repeats by itself
        assert deleted.json() == twice.json()
        assert twice.json()["state"] == "DELETED"
        late = post(c, "make").json()  # a create replayed after its object was deleted
        assert (late["id"], late["state"]) == (made["id"], "DELETED")


def test_keys_last_a_day_then_the_reaper_forgets_them_in_batches(server: ThreadServer) -> None:
    with server.client() as c:
        made = [post(c, f"day-{i}", {**BODY, "ttl_ms": None}).json() for i in range(3)]
        server.clock.advance(DAY_MS - 1)
        server.run(server.stowage.reaper.run_once())
        assert post(c, "day-0").status_code == 409  # still known: a different request
        assert post(c, "day-1", {**BODY, "ttl_ms": None}).json()["id"] == made[1]["id"]

        server.clock.advance(1)
        assert server.run(server.stowage.objects.forget_keys(batch=2)) == 2
        # the day also ended the three uploads never finished (STOWAGE_UPLOAD_TTL_SECONDS)
        assert server.run(server.stowage.reaper.run_once()) == 3
        assert server.run(server.stowage.objects.forget_keys(batch=2)) == 0
        again = post(c, "day-0")  # forgotten: a new request like any other
        assert again.status_code == 200
        assert again.json()["id"] not in {m["id"] for m in made}


@pytest.mark.parametrize("backend", BACKENDS)
def test_keys_survive_a_restart(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path, pg_base_url: str | None
) -> None:
    with backend_settings(backend, request, pg_base_url) as settings:
        env = {f"STOWAGE_{k.upper()}": v for k, v in settings.items()}
        answers = []
        for _ in range(2):
            process, base = start_serve(tmp_path / "data", env=env)
            try:
                token = (tmp_path / "data" / "admin-token").read_text().strip()
                headers = {"Authorization": f"Bearer {token}"}
                with httpx.Client(base_url=base, headers=headers) as c:
                    answers.append(post(c, "before-restart"))
                    assert post(c, "before-restart", {**BODY, "name": "x"}).status_code == 409
                    assert ids_named(c, "once.txt") == [answers[0].json()["id"]]
            finally:
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=20)
        assert answers[0].json()["id"] == answers[1].json()["id"]
