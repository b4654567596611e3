"""Presigned blob URLs: signatures, expiry, limits, Range and conditional GET."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import httpx
import pytest

from .harness import SMALL_UPLOAD_LIMIT, ThreadServer, run_thread_server

DATA = os.urandom(3 * 1024 * 1024 + 123)


def with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    query.update(changes)
    return urlunsplit(parts._replace(query=urlencode(query)))


@pytest.fixture
def server(
    request: pytest.FixtureRequest, tmp_path: Path, pg_base_url: str | None
) -> Iterator[ThreadServer]:
    """stowage signs its own URLs only when it holds the bytes (local blobs); with S3 the
    URLs are the store's own, covered by the SDK and cross-dialect tests."""
    yield from run_thread_server("sqlite-local", request, tmp_path, pg_base_url)


@pytest.fixture
def stored(server: ThreadServer) -> tuple[dict, str]:
    """A completed object holding DATA, and a download URL for it."""
    with server.client() as c:
        created = c.post("/v1/objects", json={"name": "r.bin", "content_type": "binary"}).json()
        assert httpx.put(created["upload_url"], content=DATA).status_code == 200
        c.post(f"/v1/objects/{created['id']}/complete").raise_for_status()
        url = c.get(f"/v1/objects/{created['id']}/download").json()["download_url"]
    return created, url


def test_download_whole_with_headers(stored: tuple[dict, str]) -> None:
    _, url = stored
    r = httpx.get(url)
    assert r.status_code == 200
    assert r.content == DATA
    assert r.headers["content-length"] == str(len(DATA))
    assert r.headers["etag"] == f'"{hashlib.md5(DATA).hexdigest()}"'
    assert r.headers["accept-ranges"] == "bytes"
    assert r.headers["content-type"] == "application/octet-stream"
    assert "filename*=UTF-8''r.bin" in r.headers["content-disposition"]
    head = httpx.head(url)
    assert head.status_code == 200
    assert head.headers["content-length"] == str(len(DATA))
    assert head.content == b""


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        ("bytes=0-0", 0, 0),
        ("bytes=10-1048586", 10, 1048586),
        ("bytes=3000000-", 3000000, len(DATA) - 1),
        ("bytes=-500", len(DATA) - 500, len(DATA) - 1),
        ("bytes=100-99999999", 100, len(DATA) - 1),
        ("bytes=-99999999", 0, len(DATA) - 1),
    ],
)
def test_range_requests(stored: tuple[dict, str], header: str, start: int, end: int) -> None:
    _, url = stored
    r = httpx.get(url, headers={"Range": header})
    assert r.status_code == 206
    assert r.content == DATA[start : end + 1]
    assert r.headers["content-range"] == f"bytes {start}-{end}/{len(DATA)}"
    assert r.headers["content-length"] == str(end - start + 1)


@pytest.mark.parametrize("header", [f"bytes={len(DATA)}-", "bytes=-0", "bytes=99999999-"])
def test_unsatisfiable_range_is_416(stored: tuple[dict, str], header: str) -> None:
    _, url = stored
    r = httpx.get(url, headers={"Range": header})
    assert r.status_code == 416
    assert r.headers["content-range"] == f"bytes */{len(DATA)}"


@pytest.mark.parametrize("header", ["bytes=5-2", "items=0-1", "bytes=0-1,5-6", "garbage"])
def test_unusable_range_headers_are_ignored(stored: tuple[dict, str], header: str) -> None:
    _, url = stored
    r = httpx.get(url, headers={"Range": header})
    assert r.status_code == 200
    assert r.content == DATA


def test_conditional_requests(stored: tuple[dict, str]) -> None:
    _, url = stored
    etag = httpx.head(url).headers["etag"]
    r = httpx.get(url, headers={"If-None-Match": etag})
    assert r.status_code == 304
    assert r.content == b""
    assert r.headers["etag"] == etag
    assert httpx.get(url, headers={"If-None-Match": f'"other", W/{etag}'}).status_code == 304
    assert httpx.get(url, headers={"If-None-Match": "*"}).status_code == 304
    assert httpx.get(url, headers={"If-None-Match": '"stale"'}).status_code == 200
    assert httpx.get(url, headers={"If-Match": '"stale"'}).status_code == 412
    assert httpx.get(url, headers={"If-Match": etag}).status_code == 200
    ranged = httpx.get(url, headers={"Range": "bytes=0-9", "If-Range": etag})
    assert ranged.status_code == 206
    stale = httpx.get(url, headers={"Range": "bytes=0-9", "If-Range": '"stale"'})
    assert stale.status_code == 200
    assert len(stale.content) == len(DATA)


Fetch = Callable[[str, dict[str, str]], httpx.Response]


def check_date_conditions(fetch: Fetch, created_at: datetime) -> None:
    """``Last-Modified`` is the creation time; the date conditions answer 304 and 412, and
    give way to the entity-tag ones when both are sent (RFC 9110 §13.2.2)."""
    whole = fetch("GET", {})
    modified, etag = whole.headers["last-modified"], whole.headers["etag"]
    assert parsedate_to_datetime(modified) == created_at.replace(microsecond=0)
    second = timedelta(seconds=1)
    before = format_datetime(parsedate_to_datetime(modified) - second, usegmt=True)
    after = format_datetime(parsedate_to_datetime(modified) + second, usegmt=True)
    for method in ("GET", "HEAD"):
        for headers, status in [
            ({"If-Modified-Since": modified}, 304),
            ({"If-Modified-Since": before}, 200),
            ({"If-Modified-Since": "yesterday"}, 200),  # not a date: ignored
            ({"If-Unmodified-Since": before}, 412),
            ({"If-Unmodified-Since": modified}, 200),
            ({"If-Unmodified-Since": "soon"}, 200),
            ({"If-None-Match": '"other"', "If-Modified-Since": modified}, 200),
            ({"If-None-Match": etag, "If-Modified-Since": before}, 304),
            ({"If-Match": etag, "If-Unmodified-Since": before}, 200),
            ({"If-Match": '"other"', "If-Unmodified-Since": after}, 412),
        ]:
            r = fetch(method, headers)
            assert r.status_code == status, (method, headers)
            assert r.headers["last-modified"] == modified, (method, headers)
    assert fetch("GET", {"Range": "bytes=0-0", "If-Range": modified}).status_code == 206
    assert fetch("GET", {"Range": "bytes=0-0", "If-Range": before}).status_code == 200


def test_last_modified_and_date_conditions(stored: tuple[dict, str]) -> None:
    created, url = stored
    when = datetime.fromtimestamp(created["create_time_ms"] / 1000, UTC)
    check_date_conditions(lambda method, headers: httpx.request(method, url, headers=headers), when)


def test_tampered_and_misused_signatures_are_403(
    server: ThreadServer, stored: tuple[dict, str]
) -> None:
    created, url = stored
    sig = parse_qs(urlsplit(url).query)["signature"][0]
    flipped = ("0" if sig[0] != "0" else "1") + sig[1:]
    cases = {
        "tampered signature": with_query(url, signature=flipped),
        "extended expiry": with_query(
            url, expires=str(int(parse_qs(urlsplit(url).query)["expires"][0]) + 3600)
        ),
        "no signature": url.split("?")[0],
        "non-numeric expiry": with_query(url, expires="tomorrow"),
    }
    for label, bad in cases.items():
        r = httpx.get(bad)
        assert r.status_code == 403, label
        assert r.json()["message"], label

    with server.client() as c:
        other = c.post("/v1/objects", json={"name": "o", "content_type": "text"}).json()
    cross = url.replace(created["id"], other["id"])
    assert httpx.get(cross).status_code == 403
    # A download signature does not authorise an upload, nor an upload URL a download.
    put = httpx.put(url, content=b"overwrite")
    assert put.status_code == 403
    assert "signature" in put.json()["message"]
    assert httpx.get(other["upload_url"]).status_code == 403


def test_expired_urls_are_403(server: ThreadServer, stored: tuple[dict, str]) -> None:
    _, url = stored
    with server.client() as c:
        created = c.post("/v1/objects", json={"name": "late", "content_type": "text"}).json()
        short = c.get(
            f"/v1/objects/{stored[0]['id']}/download", params={"duration_seconds": 5}
        ).json()["download_url"]
    assert httpx.get(short).status_code == 200
    server.clock.advance(5_000)
    r = httpx.get(short)
    assert r.status_code == 403
    assert "expired" in r.json()["message"]
    assert httpx.get(url).status_code == 200  # the hour-long one still works
    server.clock.advance(3600 * 1000)
    r = httpx.put(created["upload_url"], content=b"x")
    assert r.status_code == 403
    assert "expired" in r.json()["message"]


def test_oversized_upload_is_413_and_leaves_nothing(server: ThreadServer) -> None:
    with server.client() as c:
        created = c.post("/v1/objects", json={"name": "big", "content_type": "binary"}).json()
        too_big = b"x" * (SMALL_UPLOAD_LIMIT + 1)
        r = httpx.put(created["upload_url"], content=too_big)
        assert r.status_code == 413
        assert str(SMALL_UPLOAD_LIMIT) in r.json()["message"]

        def stream() -> Iterator[bytes]:  # no Content-Length: the limit is enforced mid-body
            for _ in range(SMALL_UPLOAD_LIMIT // 65536 + 2):
                yield b"y" * 65536

        r = httpx.put(created["upload_url"], content=stream())
        assert r.status_code == 413
        assert server.stored_blobs() == set()
        assert [p for p in server.settings.blob_dir.rglob("*") if p.is_file()] == []
        assert c.get(f"/v1/objects/{created['id']}").json()["state"] == "UPLOADING"
        ok = httpx.put(created["upload_url"], content=b"z" * SMALL_UPLOAD_LIMIT)
        assert ok.status_code == 200


def test_chunked_upload_is_hashed_and_stored_exactly(server: ThreadServer) -> None:
    pieces = [os.urandom(n) for n in (1, 70_000, 1024 * 1024, 5, 2 * 1024 * 1024 + 3)]
    data = b"".join(pieces)
    with server.client() as c:
        created = c.post("/v1/objects", json={"name": "c", "content_type": "binary"}).json()
        assert httpx.put(created["upload_url"], content=iter(pieces)).status_code == 200
        c.post(f"/v1/objects/{created['id']}/complete").raise_for_status()
        url = c.get(f"/v1/objects/{created['id']}/download").json()["download_url"]
    assert httpx.get(url).content == data
    obj = server.run(server.stowage.meta.get_object(created["id"]))
    assert obj.sha256 == hashlib.sha256(data).hexdigest()
    assert obj.md5 == hashlib.md5(data).hexdigest()
    assert obj.size == len(data)
    assert server.stored_blobs() == {obj.blob_key}


def test_empty_object(server: ThreadServer) -> None:
    with server.client() as c:
        created = c.post("/v1/objects", json={"name": "e", "content_type": "text"}).json()
        assert httpx.put(created["upload_url"], content=b"").status_code == 200
        assert c.post(f"/v1/objects/{created['id']}/complete").json()["size_bytes"] == 0
        url = c.get(f"/v1/objects/{created['id']}/download").json()["download_url"]
    r = httpx.get(url)
    assert r.status_code == 200 and r.content == b""
    assert httpx.get(url, headers={"Range": "bytes=0-"}).status_code == 416


def test_upload_and_download_memory_does_not_grow_with_size(server: ThreadServer) -> None:
    """A 32 MiB object streams through in bounded memory (the server runs in this process)."""
    import tracemalloc

    size = SMALL_UPLOAD_LIMIT
    chunk = os.urandom(256 * 1024)
    with server.client() as c:
        created = c.post("/v1/objects", json={"name": "m", "content_type": "binary"}).json()
        tracemalloc.start()
        try:
            body = (chunk for _ in range(size // len(chunk)))
            assert httpx.put(created["upload_url"], content=body).status_code == 200
            c.post(f"/v1/objects/{created['id']}/complete").raise_for_status()
            url = c.get(f"/v1/objects/{created['id']}/download").json()["download_url"]
            received = 0
            with httpx.stream("GET", url) as r:
                for part in r.iter_bytes():
                    received += len(part)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert received == size
    assert peak < 8 * 1024 * 1024, f"peak traced memory {peak / 2**20:.1f} MiB"


@pytest.fixture
def s3_server(
    request: pytest.FixtureRequest, tmp_path: Path, pg_base_url: str | None
) -> Iterator[ThreadServer]:
    yield from run_thread_server("postgres-s3", request, tmp_path, pg_base_url)


def test_s3_upload_urls_are_spent_by_complete_and_delete(s3_server: ThreadServer) -> None:
    """S3 still answers 200 to a PUT on an upload URL after complete or delete (it cannot
    know), but those bytes land on a staging key nobody reads, and once the URL can no
    longer be used the reaper removes them."""
    server = s3_server
    with server.client() as c:
        done = c.post("/v1/objects", json={"name": "d", "content_type": "text"}).json()
        assert httpx.put(done["upload_url"], content=b"first").status_code == 200
        assert c.post(f"/v1/objects/{done['id']}/complete").json()["size_bytes"] == 5
        gone = c.post("/v1/objects", json={"name": "g", "content_type": "text"}).json()
        assert c.post(f"/v1/objects/{gone['id']}/delete").json()["state"] == "DELETED"

        for created in (done, gone):
            assert httpx.put(created["upload_url"], content=b"late bytes").status_code == 200
        url = c.get(f"/v1/objects/{done['id']}/download").json()["download_url"]
        assert httpx.get(url).content == b"first"
        assert c.post(f"/v1/objects/{done['id']}/complete").status_code == 409
    blob = server.run(server.stowage.meta.get_object(done["id"])).blob_key
    assert len(server.stored_blobs() - {blob}) == 2  # the late bytes, for now

    server.clock.advance(server.settings.upload_ttl_seconds * 1000)
    server.run(server.stowage.reaper.run_once())
    assert server.stored_blobs() == {blob}
    assert httpx.get(url).content == b"first"


def test_s3_complete_never_adopts_more_than_the_limit(s3_server: ThreadServer) -> None:
    """PUTs racing with complete: whatever complete attaches is what it measured, and
    never over the limit. (It used to HEAD the staging key and then copy it; a PUT in
    between was attached unchecked, in 2 of 45 tries. The window is too small to hit on
    demand: this holds the invariant under load rather than replaying that race.)"""
    server = s3_server
    limit = 4096
    objects = server.stowage.objects
    objects.limits = dataclasses.replace(objects.limits, max_upload_bytes=limit)
    small, big = b"s" * 100, os.urandom(256 * 1024)
    with server.client() as c:
        for n in range(10):
            created = c.post("/v1/objects", json={"name": f"r{n}", "content_type": "text"}).json()
            assert httpx.put(created["upload_url"], content=small).status_code == 200
            completed = threading.Event()

            def race(url: str = created["upload_url"], done: threading.Event = completed) -> None:
                while not done.is_set():  # overwrite the staging key until complete answers
                    httpx.put(url, content=big)

            racer = threading.Thread(target=race)
            racer.start()
            r = c.post(f"/v1/objects/{created['id']}/complete")
            completed.set()
            racer.join(30)
            assert r.status_code in (200, 413), r.text
            if r.status_code == 200:
                assert r.json()["size_bytes"] <= limit
                url = c.get(f"/v1/objects/{created['id']}/download").json()["download_url"]
                got = httpx.get(url).content
                assert got == small
                stored = server.run(server.stowage.meta.get_object(created["id"]))
                assert stored.sha256 == hashlib.sha256(got).hexdigest()
