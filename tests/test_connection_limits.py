"""What one client can hold before the app sees a request: header bytes and count (431),
time to send the headers, connections when file descriptors run short, and requests in
flight from one address (429). Against ``stowage serve`` as it ships."""

from __future__ import annotations

import contextlib
import re
import resource
import socket
import threading
from collections.abc import Callable, Iterator

import boto3
import httpx
import pytest
from botocore.config import Config

from stowage.processes import free_port

from .backends import BACKENDS
from .harness import ProcServer, proc_server_on

S3_SCOPES = "object:read,write namespace:read,write"


def head_of(base_url: str, headers: dict[str, str]) -> int:
    """The status of a GET with these headers. The server may answer and close before a
    huge head is all sent: read its answer all the same."""
    head = b"GET /healthz HTTP/1.1\r\nHost: test\r\nConnection: close\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()).encode() + b"\r\n"
    with socket.create_connection(address_of(base_url), timeout=30) as conn:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            conn.sendall(head)
        status_line = conn.recv(64).split(b"\r\n", 1)[0]
    return int(status_line.split()[1])


def address_of(base_url: str) -> tuple[str, int]:
    host, port = base_url.removeprefix("http://").split(":")
    return host, int(port)


def test_oversized_headers_are_refused_431(proc_server: ProcServer) -> None:
    base = proc_server.base_url
    assert head_of(base, {"X-Fill": "a" * 48 * 1024}) == 200  # under the 64 KiB default
    assert head_of(base, {"X-Fill": "a" * 100 * 1024}) == 431
    assert head_of(base, {"X-Fill": "a" * 4 * 1024 * 1024}) == 431
    assert head_of(base, {f"X-Many-{i}": "v" for i in range(500)}) == 431  # too many
    assert httpx.get(f"{base}/healthz").status_code == 200  # and the server is unharmed


def test_oversized_headers_over_http2_are_refused(proc_server: ProcServer) -> None:
    with httpx.Client(http1=False, http2=True) as h2:
        assert h2.get(f"{proc_server.base_url}/healthz").http_version == "HTTP/2"
        with pytest.raises(httpx.TransportError):  # the stream or connection refused
            h2.get(f"{proc_server.base_url}/healthz", headers={"X-Fill": "a" * 200 * 1024})
    assert httpx.get(f"{proc_server.base_url}/healthz").status_code == 200


def trickle_head(base_url: str) -> socket.socket:
    """A connection that has sent part of a request head and then nothing more."""
    conn = socket.create_connection(address_of(base_url))
    conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: test\r\nX-Slow: ")
    return conn


@contextlib.contextmanager
def served(request: pytest.FixtureRequest, **settings: str) -> Iterator[ProcServer]:
    """A ``stowage serve`` of its own with these settings, on the test's backend."""
    backend = request.node.callspec.params["backend"]
    factory = request.getfixturevalue("tmp_path_factory")
    pg_base = request.getfixturevalue("pg_base_url")
    with proc_server_on(backend, request, factory, pg_base, **settings) as server:
        yield server


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_slow_request_head_is_cut_off(backend: str, request: pytest.FixtureRequest) -> None:
    with served(request, header_timeout_seconds="1") as server:
        conn = trickle_head(server.base_url)
        conn.settimeout(30)  # a bound for the test, far above the server's 1 s
        assert conn.recv(1024) == b""  # closed by the server, the head never finished
        conn.close()


@pytest.mark.parametrize("backend", BACKENDS)
def test_slow_heads_beyond_the_file_limit_do_not_lock_others_out(
    backend: str, request: pytest.FixtureRequest
) -> None:
    """With 200 file descriptors, 250 slow heads exhaust them; each is cut off after the
    header timeout, so a normal client still gets in (it waited forever before)."""
    with served(request, header_timeout_seconds="2") as server:
        for pid in server.processes():
            resource.prlimit(pid, resource.RLIMIT_NOFILE, (200, 200))
        slow = [trickle_head(server.base_url) for _ in range(250)]
        try:
            reply = httpx.get(f"{server.base_url}/healthz", timeout=30)
            assert reply.status_code == 200
        finally:
            for conn in slow:
                conn.close()


HELD = (b"first chunk", b"last chunk")


@contextlib.contextmanager
def uploads_held_open(send: Callable[[str, Iterator[bytes]], int]) -> Iterator[list[int]]:
    """Two uploads through ``send(name, body) -> status``, each holding its request open
    after its first chunk until the block ends; then their statuses, once done."""
    started = threading.Semaphore(0)
    release = threading.Event()
    replies: list[int] = []

    def held(name: str) -> None:
        def body() -> Iterator[bytes]:
            yield HELD[0]
            started.release()
            assert release.wait(60)
            yield HELD[1]

        replies.append(send(name, body()))

    uploads = [threading.Thread(target=held, args=(f"u{i}",)) for i in range(2)]
    for upload in uploads:
        upload.start()
    try:
        for _ in uploads:
            assert started.acquire(timeout=60)
        yield replies
    finally:
        release.set()
        for upload in uploads:
            upload.join(60)


@pytest.mark.parametrize("backend", BACKENDS)
def test_requests_in_flight_per_client_address_are_capped(
    backend: str, request: pytest.FixtureRequest
) -> None:
    """The cap holds in each worker process (docs/operations.md, Limits): with several,
    which one a connection reaches is the kernel's choice, so this runs one."""
    with served(request, max_requests_per_client="2", workers="1") as server:
        base, token = server.base_url, server.token
        auth = {"Authorization": f"Bearer {token}"}

        def upload(name: str, body: Iterator[bytes]) -> int:
            params = {"name": name}
            reply = httpx.post(f"{base}/objects", params=params, content=body, headers=auth)
            return reply.status_code

        with uploads_held_open(upload) as replies:
            refused = httpx.get(f"{base}/objects", headers=auth)
            assert refused.status_code == 429
            assert "too many requests at once" in refused.json()["message"]
            assert refused.headers["retry-after"]
        assert replies == [201, 201]
        assert httpx.get(f"{base}/objects", headers=auth).status_code == 200


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_s3_port_caps_requests_in_flight_per_client_too(
    backend: str, request: pytest.FixtureRequest
) -> None:
    port = free_port()
    settings = {"max_requests_per_client": "2", "workers": "1", "s3_api_port": str(port)}
    with served(request, **settings) as server:
        printed = server.cli("keys", "create", "--user", "admin", "--scope", S3_SCOPES).stdout
        exported = dict(re.findall(r"(?m)^export (AWS_[A-Z_]+)=(\S+)$", printed))
        endpoint = f"http://127.0.0.1:{port}"
        s3 = boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id=exported["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=exported["AWS_SECRET_ACCESS_KEY"],
            region_name="us-east-1",
            config=Config(s3={"addressing_style": "path"}),
        )
        s3.create_bucket(Bucket="held")
        length = {"Content-Length": str(len(b"".join(HELD)))}

        def upload(name: str, body: Iterator[bytes]) -> int:
            url = s3.generate_presigned_url("put_object", Params={"Bucket": "held", "Key": name})
            return httpx.put(url, content=body, headers=length, timeout=60).status_code

        with uploads_held_open(upload) as replies:
            refused = httpx.get(f"{endpoint}/held")
            assert refused.status_code == 503
            assert b"<Code>SlowDown</Code>" in refused.content
            assert b"too many requests at once" in refused.content
        assert replies == [200, 200]
        listed = s3.list_objects_v2(Bucket="held")["Contents"]
        assert sorted(o["Key"] for o in listed) == ["u0", "u1"]


def create_behind_proxy(base: str, token: str) -> str:
    """The URL that stowage gives for an object it was sent through a proxy."""
    created = httpx.post(
        f"{base}/objects",
        params={"name": "p.txt"},
        content=b"behind a proxy",
        headers={
            "Authorization": f"Bearer {token}",
            "X-Forwarded-Proto": "https",
            "X-Forwarded-For": "203.0.113.9",
        },
    )
    return created.json()["url"]


def test_a_trusted_proxy_sets_the_scheme(proc_server: ProcServer) -> None:
    """From 127.0.0.1, trusted by default: the URLs stowage builds follow the client's
    https (so do presigned URLs and the console's Secure cookie)."""
    assert create_behind_proxy(proc_server.base_url, proc_server.token).startswith("https://")


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_untrusted_peer_cannot_claim_a_scheme(
    backend: str, request: pytest.FixtureRequest
) -> None:
    with served(request, forwarded_allow_ips="192.0.2.1") as server:
        assert create_behind_proxy(server.base_url, server.token).startswith("http://127.0.0.1")


def test_a_refusal_before_the_body_says_the_connection_closes(proc_server: ProcServer) -> None:
    """The unread body is still on the wire: a client that reused the connection would fail
    its next request with "server disconnected"."""
    with httpx.Client(base_url=proc_server.base_url) as c:
        auth = {"Authorization": f"Bearer {proc_server.token}"}
        refused = c.post("/v1/objects", content=b"{" + b" " * 2_000_000 + b"}", headers=auth)
        assert refused.status_code == 413 and refused.headers["connection"] == "close"
        assert c.get("/v1/objects", headers=auth).status_code == 200
        answered = c.post("/v1/objects", json={"name": "n", "content_type": "text"}, headers=auth)
        assert "connection" not in answered.headers  # a body read whole: the connection stays
