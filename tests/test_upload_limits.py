"""Concurrent-upload limits: 429 with Retry-After per token and per server, never a queue."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from .harness import SMALL_UPLOAD_LIMIT, ThreadServer


class HeldUpload:
    """An upload whose body stays open until released, holding its slot meanwhile: a
    Djinn upload with ``token``, or a PUT to ``url`` (a presigned upload URL)."""

    def __init__(self, server: ThreadServer, token: str, name: str, url: str | None = None) -> None:
        self.release = threading.Event()
        self.result: httpx.Response | None = None

        def body() -> Iterator[bytes]:
            yield b"first part"
            self.release.wait(30)
            yield b" and the rest"

        def run() -> None:
            if url is not None:
                self.result = httpx.put(url, content=body(), timeout=60)
                return
            self.result = httpx.post(
                f"{server.base_url}/objects",
                params={"name": name},
                content=body(),
                headers={"Authorization": f"Bearer {token}"},
                timeout=60,
            )

        self.thread = threading.Thread(target=run)
        self.thread.start()

    def finish(self) -> httpx.Response:
        self.release.set()
        self.thread.join(30)
        assert self.result is not None
        return self.result


def wait_for_slots(server: ThreadServer, count: int) -> None:
    deadline = time.monotonic() + 10
    while server.stowage.uploads.in_use < count:
        assert time.monotonic() < deadline, "the held uploads never reached the server"
        time.sleep(0.01)


def test_per_token_and_server_limits(server: ThreadServer) -> None:
    slots = server.stowage.uploads
    slots.per_caller, slots.total = 1, 2
    other = server.new_user_token("other", "object:read,write")
    third = server.new_user_token("third", "object:read,write")

    held = HeldUpload(server, server.token, "held.txt")
    wait_for_slots(server, 1)
    with server.client() as c:
        r = c.post("/objects", params={"name": "second.txt"}, content=b"x")
        assert (r.status_code, r.headers["retry-after"]) == (429, "1")
        assert "per token" in r.json()["message"]

    held_other = HeldUpload(server, other, "other.txt")
    wait_for_slots(server, 2)
    with server.client(third) as c:
        r = c.post("/objects", params={"name": "third.txt"}, content=b"x")
        assert r.status_code == 429
        assert "as many uploads as it can" in r.json()["message"]

    assert held.finish().status_code == 201
    assert held_other.finish().status_code == 201
    with server.client(third) as c:
        assert c.post("/objects", params={"name": "third.txt"}, content=b"x").status_code == 201
    assert slots.in_use == 0


def test_presigned_uploads_take_the_slots_of_the_token_that_created_them(
    server: ThreadServer,
) -> None:
    """Upload URLs are no way around the per-token limit: each PUT counts against the
    token that created its object, however many objects (and URLs) it made."""
    if server.direct:
        pytest.skip("in S3 mode upload URLs point at the bucket, not at stowage")
    slots = server.stowage.uploads
    slots.per_caller, slots.total = 1, 10
    other = server.new_user_token("other", "object:read,write")

    def upload_url(token: str, name: str) -> str:
        with server.client(token) as c:
            created = c.post("/v1/objects", json={"name": name, "content_type": "text"})
        return created.json()["upload_url"]

    first, second = upload_url(server.token, "a"), upload_url(server.token, "b")
    held = HeldUpload(server, server.token, "a", url=first)
    wait_for_slots(server, 1)
    r = httpx.put(second, content=b"x")
    assert (r.status_code, r.headers["retry-after"]) == (429, "1")
    assert "per token" in r.json()["message"]
    with server.client() as c:  # the same token's Djinn uploads share those slots
        assert c.post("/objects", params={"name": "c.txt"}, content=b"x").status_code == 429
    assert httpx.put(upload_url(other, "theirs"), content=b"x").status_code == 200
    assert held.finish().status_code == 200
    assert httpx.put(second, content=b"x").status_code == 200
    assert slots.in_use == 0


def test_a_failed_console_upload_answers_413_and_leaves_nothing(server: ThreadServer) -> None:
    """The console cleans up its own failed upload with the object:write scope that made
    it: a token without object:delete sees the 413, not a 403, and no UPLOADING object
    stays behind."""
    token = server.new_user_token("writer", "object:read,write")
    with httpx.Client(base_url=server.base_url, cookies={"stowage_console": token}) as c:
        page = c.get("/console")
        found = re.search(r'name="csrf-token" content="([^"]+)"', page.text)
        assert found is not None

        def too_big() -> Iterator[bytes]:  # no Content-Length: crosses the limit mid-body
            for _ in range(SMALL_UPLOAD_LIMIT // 65536 + 2):
                yield b"y" * 65536

        r = c.post(
            "/console/upload",
            params={"name": "big.bin"},
            content=too_big(),
            headers={"x-csrf-token": found.group(1)},
        )
        assert r.status_code == 413
        assert str(SMALL_UPLOAD_LIMIT) in r.json()["message"]
    with server.client(token) as c:
        assert c.get("/v1/objects", params={"state": "UPLOADING"}).json()["objects"] == []
    assert server.stored_blobs() == set()
