"""A client that stops sending mid-body gets 408 and leaves nothing behind."""

from __future__ import annotations

import pytest

from .conftest import ThreadServer
from .rawhttp import raw_request


def stalled_request(
    server: ThreadServer, method: str, target: str, token: str | None
) -> tuple[int, dict]:
    """Promise 100,000 bytes, send 10, then wait for the server's answer."""
    headers = {"Content-Type": "application/octet-stream", "Content-Length": "100000"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    reply = raw_request(server.base_url, method, target, headers=headers, body=b"0123456789")
    assert reply is not None
    return reply.status, reply.json()


def test_stalled_djinn_upload_times_out(server: ThreadServer) -> None:
    server.settings.body_timeout_seconds = 0.3
    status, body = stalled_request(server, "POST", "/objects?name=stalled.bin", server.token)
    assert status == 408
    assert "no body data" in body["message"]
    assert server.stored_blobs() == set()
    with server.client() as c:
        assert c.get("/objects").json() == []
        assert c.post("/objects", params={"name": "stalled.bin"}, content=b"ok").status_code == 201


def test_stalled_presigned_upload_times_out(server: ThreadServer) -> None:
    if server.direct:
        pytest.skip("in S3 mode the upload URL is the bucket's own; S3 times its clients out")
    server.settings.body_timeout_seconds = 0.3
    with server.client() as c:
        created = c.post("/v1/objects", json={"name": "s", "content_type": "text"}).json()
    target = created["upload_url"].split(server.base_url, 1)[1]
    status, body = stalled_request(server, "PUT", target, None)
    assert status == 408
    assert "abandoned" in body["message"]
    assert server.stored_blobs() == set()
    assert [p for p in server.settings.blob_dir.rglob("*") if p.is_file()] == []
