"""TTL expiry and the reaper, driven by a manual clock: no sleeping."""

from __future__ import annotations

import httpx

from .harness import ThreadServer


def make(server: ThreadServer, c: httpx.Client, name: str, ttl_ms: int | None) -> dict:
    created = c.post(
        "/v1/objects", json={"name": name, "content_type": "text", "ttl_ms": ttl_ms}
    ).json()
    assert httpx.put(created["upload_url"], content=name.encode()).status_code == 200
    return c.post(f"/v1/objects/{created['id']}/complete").json()


def test_expired_objects_vanish_at_once_and_the_reaper_removes_them(server: ThreadServer) -> None:
    with server.client() as c:
        short = make(server, c, "short.txt", 1000)
        keep = make(server, c, "keep.txt", None)
        assert short["delete_after_time_ms"] == short["create_time_ms"] + 1000
        url = c.get(f"/v1/objects/{short['id']}/download").json()["download_url"]
        assert httpx.get(url).status_code == 200
        blob = server.run(server.stowage.meta.get_object(short["id"])).blob_key
        assert blob in server.stored_blobs()

        server.clock.advance(999)
        assert c.get(f"/v1/objects/{short['id']}").status_code == 200

        server.clock.advance(1)  # now == delete_after_time_ms: expired
        assert c.get(f"/v1/objects/{short['id']}").status_code == 404
        assert c.get(f"/v1/objects/{short['id']}/download").status_code == 404
        if not server.direct:  # the URL's lifetime was capped at the object's (S3 keeps time
            assert httpx.get(url).status_code == 403  # by its own clock, not the test's)
        listed = c.get("/v1/objects").json()
        assert [o["id"] for o in listed["objects"]] == [keep["id"]]
        assert listed["total_count"] == 1
        assert c.post(f"/v1/objects/{short['id']}/delete").status_code == 404

        assert blob in server.stored_blobs()  # until the reaper runs
        assert server.run(server.stowage.reaper.run_once()) == 1
        assert server.run(server.stowage.meta.get_object(short["id"])) is None
        assert blob in server.stored_blobs()  # released, collected after the grace
        assert server.collect_blobs() == 1
        assert blob not in server.stored_blobs()
        assert httpx.get(url).status_code in (403, 404)  # gone for every kind of URL
        assert server.run(server.stowage.reaper.run_once()) == 0
        assert c.get(f"/v1/objects/{keep['id']}").json()["state"] == "READ_ONLY"


def test_uploading_objects_expire_too(server: ThreadServer) -> None:
    with server.client() as c:
        created = c.post(
            "/v1/objects", json={"name": "p", "content_type": "text", "ttl_ms": 50}
        ).json()
        server.clock.advance(50)
        r = httpx.put(created["upload_url"], content=b"late")
        if server.direct:  # S3 takes it into staging; the reaper removes it with the row
            assert r.status_code == 200
            assert len(server.stored_blobs()) == 1
        else:
            assert r.status_code == 404
        assert server.run(server.stowage.reaper.run_once()) == 1
        assert server.stored_blobs() == set()


def test_tombstones_are_purged_after_the_retention(server: ThreadServer) -> None:
    retention_ms = server.settings.deleted_retention_seconds * 1000
    with server.client() as c:
        obj = make(server, c, "gone.txt", None)
        c.post(f"/v1/objects/{obj['id']}/delete").raise_for_status()
        assert server.run(server.stowage.reaper.run_once()) == 0
        assert c.get(f"/v1/objects/{obj['id']}").json()["state"] == "DELETED"
        server.clock.advance(retention_ms)
        assert server.run(server.stowage.reaper.run_once()) == 1
        assert c.get(f"/v1/objects/{obj['id']}").status_code == 404


def test_reaper_drains_more_than_one_batch(server: ThreadServer) -> None:
    with server.client() as c:
        for i in range(12):
            c.post("/v1/objects", json={"name": f"b{i}", "content_type": "text", "ttl_ms": 1})
    server.clock.advance(1)
    reaped = server.run(server.stowage.objects.reap(batch=5))
    assert len(reaped.object_ids) == 5
    assert server.run(server.stowage.reaper.run_once()) == 7


def test_unfinished_uploads_expire_after_the_upload_ttl_and_are_reaped(
    server: ThreadServer,
) -> None:
    """An object nobody completes (any path: Runloop, a console upload cut off) vanishes
    STOWAGE_UPLOAD_TTL_SECONDS after its creation, and the reaper removes it and its
    bytes; completed objects without a TTL stay."""
    with server.client() as c:
        created = c.post("/v1/objects", json={"name": "left", "content_type": "text"}).json()
        assert created["delete_after_time_ms"] is None  # no TTL was asked for
        assert httpx.put(created["upload_url"], content=b"abandoned").status_code == 200
        kept = make(server, c, "kept.txt", None)
        kept_blob = server.run(server.stowage.meta.get_object(kept["id"])).blob_key
        assert len(server.stored_blobs()) == 2

        server.clock.advance(server.settings.upload_ttl_seconds * 1000 - 1)
        assert c.get(f"/v1/objects/{created['id']}").status_code == 200
        server.clock.advance(1)
        assert c.get(f"/v1/objects/{created['id']}").status_code == 404
        assert c.post(f"/v1/objects/{created['id']}/complete").status_code == 404
        listed = c.get("/v1/objects").json()["objects"]
        assert [o["id"] for o in listed] == [kept["id"]]

        server.run(server.stowage.reaper.run_once())
        assert server.run(server.stowage.meta.get_object(created["id"])) is None
        server.collect_blobs()
        assert server.stored_blobs() == {kept_blob}
        assert c.get(f"/v1/objects/{kept['id']}").json()["state"] == "READ_ONLY"
