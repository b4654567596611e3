"""A client that stops sending mid-body gets 408 and leaves nothing behind."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from .harness import SMALL_UPLOAD_LIMIT, ThreadServer, proc_server_on
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


BOUNDARY = "stowageboundary"


def form_start(name: str) -> bytes:
    """A multipart form up to the first bytes of its ``file`` part (the name field first)."""
    return (
        f"--{BOUNDARY}\r\n"
        'Content-Disposition: form-data; name="name"\r\n\r\n'
        f"{name}\r\n--{BOUNDARY}\r\n"
        f'Content-Disposition: form-data; name="file"; filename="{name}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()


FORM_HEADERS = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}


def nothing_stored(blob_dir: Path, stored: set[str]) -> None:
    assert stored == set()
    assert [p for p in blob_dir.rglob("*") if p.is_file()] == []


def test_stalled_multipart_upload_times_out(server: ThreadServer) -> None:
    server.settings.body_timeout_seconds = 0.3
    start = form_start("stalled.bin") + b"0123456789"
    auth = {"Authorization": f"Bearer {server.token}"}
    headers = {**FORM_HEADERS, **auth, "Content-Length": "100000"}
    reply = raw_request(
        server.base_url, "POST", "/objects", headers=headers, body=start, timeout=10
    )
    assert reply is not None
    assert reply.status == 408
    assert "no body data" in reply.json()["message"]
    nothing_stored(server.settings.blob_dir, server.stored_blobs())


def test_multipart_upload_over_the_limit_is_refused_before_the_body_ends(
    server: ThreadServer,
) -> None:
    """The file part streams into the blob store under the limit: the 400 comes as soon as
    the limit is crossed (and at once when Content-Length already proves it), with nothing
    kept, instead of after the whole body was spooled to a temporary file."""
    auth = {"Authorization": f"Bearer {server.token}"}
    too_large = {"file": ["file too large, cannot exceed 32 MB"]}
    start = form_start("big.bin")
    announced = {**FORM_HEADERS, **auth, "Content-Length": str(3 * SMALL_UPLOAD_LIMIT)}
    reply = raw_request(server.base_url, "POST", "/objects", headers=announced, body=start)
    assert reply is not None and (reply.status, reply.json()) == (400, too_large)

    sent = start + b"y" * (SMALL_UPLOAD_LIMIT + 1)  # and then nothing more, for now
    promised = {**FORM_HEADERS, **auth, "Content-Length": str(len(sent) + 1000)}
    reply = raw_request(
        server.base_url, "POST", "/objects", headers=promised, body=sent, timeout=20
    )
    assert reply is not None and (reply.status, reply.json()) == (400, too_large)
    nothing_stored(server.settings.blob_dir, server.stored_blobs())
    with server.client() as c:
        assert c.get("/objects").json() == []


def trickle_request(
    base_url: str, method: str, target: str, headers: dict[str, str], first: bytes = b""
) -> tuple[int, dict]:
    """Send ``first``, then one byte whenever the server has not answered within 20 ms
    (far faster than the idle timeout), up to 2,000 bytes; return the answer."""
    fields = {"Host": "test", "Connection": "close", "Content-Length": str(len(first) + 2000)}
    head = f"{method} {target} HTTP/1.1\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in {**fields, **headers}.items()) + "\r\n"
    with socket.create_connection(("127.0.0.1", urlsplit(base_url).port), timeout=30) as s:
        s.sendall(head.encode() + first)
        s.settimeout(0.02)
        reply = b""
        for _ in range(2000):
            try:
                data = s.recv(65536)
            except TimeoutError:
                s.sendall(b"x")
                continue
            reply += data
            break
        s.settimeout(30)
        while data := s.recv(65536):
            reply += data
    top, body = reply.split(b"\r\n\r\n", 1)
    return int(top.split(b" ", 2)[1]), json.loads(body)


def assert_too_slow(status: int, body: dict) -> None:
    assert status == 408
    assert "averaged under 1000 bytes/s" in body["message"]


def trickle_djinn_uploads(base_url: str, token: str) -> None:
    """A raw and a multipart Djinn upload, each trickling: both must get 408."""
    auth = {"Authorization": f"Bearer {token}"}
    headers = {"Content-Type": "application/octet-stream", **auth}
    assert_too_slow(*trickle_request(base_url, "POST", "/objects?name=t.bin", headers))
    form = {**FORM_HEADERS, **auth}
    assert_too_slow(*trickle_request(base_url, "POST", "/objects", form, form_start("f.bin")))


def test_trickling_uploads_are_abandoned(server: ThreadServer) -> None:
    """A byte every few milliseconds never trips the idle timeout, but the upload must
    average STOWAGE_UPLOAD_MIN_RATE once the grace period is over: raw, multipart and
    presigned uploads alike get 408, and nothing of theirs is kept."""
    server.settings.body_timeout_seconds = 0.3
    server.settings.upload_min_rate = 1000
    trickle_djinn_uploads(server.base_url, server.token)
    if not server.direct:
        with server.client() as c:
            created = c.post("/v1/objects", json={"name": "s", "content_type": "text"}).json()
        target = created["upload_url"].split(server.base_url, 1)[1]
        assert_too_slow(*trickle_request(server.base_url, "PUT", target, {}))
    nothing_stored(server.settings.blob_dir, server.stored_blobs())
    assert server.stowage.uploads.in_use == 0
    with server.client() as c:  # a fast upload is unaffected
        assert c.post("/objects", params={"name": "ok.bin"}, content=b"x" * 5000).is_success


def test_stalled_and_trickling_uploads_on_the_default_server(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    pg_base_url: str | None,
) -> None:
    settings = {"body_timeout_seconds": "0.3", "upload_min_rate": "1000"}
    with proc_server_on("sqlite-local", request, tmp_path_factory, pg_base_url, **settings) as proc:
        trickle_djinn_uploads(proc.base_url, proc.token)
        auth = {"Authorization": f"Bearer {proc.token}"}
        stalled = {**FORM_HEADERS, **auth, "Content-Length": "100000"}
        start = form_start("f.bin")
        reply = raw_request(
            proc.base_url, "POST", "/objects", headers=stalled, body=start, timeout=10
        )
        assert reply is not None and reply.status == 408
        blob_dir = proc.data_dir / "blobs"
        assert [p for p in blob_dir.rglob("*") if p.is_file()] == []
        assert httpx.get(f"{proc.base_url}/objects", headers=auth).json() == []
