"""What operators and security reviewers check on every response."""

from __future__ import annotations

import httpx

from .conftest import ThreadServer


def test_request_id_is_echoed_or_made(server: ThreadServer) -> None:
    with server.client() as c:
        sent = c.get("/v1/objects", headers={"X-Request-Id": "stainless-python-retry-abc-123"})
        assert sent.headers["x-request-id"] == "stainless-python-retry-abc-123"
        made = c.get("/objects").headers["x-request-id"]
        assert len(made) == 24 and made != c.get("/objects").headers["x-request-id"]
        odd = c.get("/objects", headers={"X-Request-Id": "bad id\twith spaces"})
        assert odd.headers["x-request-id"] != "bad id\twith spaces"


def test_security_headers_on_every_kind_of_response(server: ThreadServer) -> None:
    with server.client() as c:
        created = c.post("/v1/objects", json={"name": "h", "content_type": "text"}).json()
        responses = [
            c.get("/v1/objects"),  # JSON
            c.get("/v1/objects/obj_missing"),  # error
            httpx.put(created["upload_url"], content=b"h"),  # presigned (local or S3)
            c.get("/objects/123456"),  # Djinn 404
            httpx.get(server.base_url + "/nowhere"),  # router 404
        ]
        for r in responses[:2] + responses[3:]:
            assert r.headers["x-content-type-options"] == "nosniff", r.url
            assert r.headers["x-frame-options"] == "DENY"
            assert r.headers["referrer-policy"] == "no-referrer"
            assert "default-src 'none'" in r.headers["content-security-policy"]
        if not server.direct:
            assert responses[2].headers["x-content-type-options"] == "nosniff"
        assert "content-security-policy" not in c.get("/docs").headers


def test_healthz_and_readyz(server: ThreadServer) -> None:
    with httpx.Client(base_url=server.base_url) as c:
        assert c.get("/healthz").json() == {"status": "ok"}
        ready = c.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["checks"] == {"database": "ok", "blobs": "ok"}
