"""Retention rules on root namespaces: set through the CLI, shown in Djinn's JSON and the
console, enforced by the reaper (driven by the server's manual clock: no sleeping), with
the bytes freed and the expiries counted in /metrics."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from stowage.core.ids import new_object_id
from stowage.core.models import ContentType, NewObject

from .backends import BACKENDS, backend_settings
from .harness import ThreadServer, run_thread_server_with

HOUR_MS = 3_600_000
BODY = 64 * 1024  # big enough for the data directory to shrink visibly


@pytest.fixture(params=BACKENDS)
def server(
    request: pytest.FixtureRequest, tmp_path: Path, pg_base_url: str | None
) -> Iterator[ThreadServer]:
    """With the shortest blob grace: released blobs are collected a minute on
    (``collect_blobs``), which keeps the tests' clock close to the rules' ages."""
    with backend_settings(request.param, request, pg_base_url) as extra:
        yield from run_thread_server_with(tmp_path, {**extra, "blob_grace_seconds": "60"})


def upload(c: httpx.Client, namespace: str, name: str, size: int = 16) -> dict:
    """Bytes of their own (identical ones would share one blob)."""
    content = (f"{namespace}/{name}|".encode() * size)[:size]
    r = c.post("/objects", params={"name": name, "namespace": namespace}, content=content)
    assert r.status_code == 201, r.text
    return r.json()


def names_in(c: httpx.Client, path: str) -> set[str]:
    return {o["name"] for o in c.get(f"/n/admin/{path}/-/objects").json()}


def cli_ok(server: ThreadServer, *args: str) -> str:
    done = server.cli("retention", *args)
    assert done.returncode == 0, done.stderr
    return done.stdout


def retention_metrics(server: ThreadServer) -> dict[tuple[str, str], float]:
    text = httpx.get(server.base_url + "/metrics").text
    found = re.findall(r'^stowage_retention_expired_(\w+)_total\{rule="(\w+)"\} (\S+)$', text, re.M)
    return {(what, rule): float(value) for what, rule, value in found}


def console_page(server: ThreadServer, path: str | None) -> str:
    """The console's view of a namespace (None: of one's objects), as a browser signed in
    with the token sees it."""
    with httpx.Client(base_url=server.base_url) as browser:
        signed_in = browser.post("/console/login", data={"token": server.token})
        assert signed_in.status_code == 303, signed_in.text
        shown = browser.get(f"/console/n/admin/{path}" if path else "/console")
        shown.raise_for_status()
        return " ".join(shown.text.split())


def disk_bytes(server: ThreadServer) -> int:
    """What the blobs take on disk (local backend) or in the bucket (S3), in bytes."""
    if server.direct:
        return len(server.stored_blobs()) * BODY
    blobs = Path(server.settings.blob_dir)
    return sum(f.stat().st_size for f in blobs.rglob("*") if f.is_file())


def test_the_cli_sets_lists_and_clears_rules_on_roots_only(server: ThreadServer) -> None:
    with server.client() as c:
        upload(c, "ci/early", "a.txt")
        said = cli_ok(server, "set", "ci@admin", "--keep-newest", "5")
        assert "retention of ci@admin: keep newest 5" in said
        upload(c, "ci/late", "b.txt")  # a child made after the rule inherits it too
        upload(c, "other", "c.txt")
        cli_ok(server, "set", "ci@admin", "--max-age", "36h", "--keep-newest", "20")

        listed = cli_ok(server, "list")
        assert re.search(r"ci@admin\s.*36h\s.*20", listed), listed
        assert "other" not in listed
        rule = {"max_age_seconds": 36 * 3600, "keep_newest": 20}
        assert "objects older than 36h expire; only the newest 20" in console_page(server, "ci")
        for path in ("ci", "ci/early", "ci/late"):
            assert c.get(f"/n/admin/{path}").json()["retention"] == rule, path
        assert c.get("/n/admin/other").json()["retention"] is None
        assert "only the newest 20 objects stay" in console_page(server, "ci/late")
        assert "Retention" not in console_page(server, "other")
        assert "Retention" not in console_page(server, None)
        namespaces = {n["path"]: n["retention"] for n in c.get("/namespaces").json()}
        assert namespaces["ci/late"] == rule and namespaces["other"] is None

        refused = server.cli("retention", "set", "ci/early@admin", "--keep-newest", "1")
        assert refused.returncode == 1
        assert "only a root namespace takes a retention rule" in refused.stderr
        assert "ci@admin" in refused.stderr
        for args, words in (
            (("set", "ci@admin", "--max-age", "30 days"), "not a duration"),
            (("set", "ci@admin", "--max-age", "0d"), "not a duration"),
            (("set", "ci@admin", "--keep-newest", "0"), "at least 1"),
            (("set", "ci@admin"), "--max-age"),
            (("set", "ci", "--keep-newest", "3"), "@OWNER"),
            (("set", "nothing@admin", "--keep-newest", "3"), "no namespace"),
            (("clear", "ci@nobody"), "no namespace"),
        ):
            failed = server.cli("retention", *args)
            assert failed.returncode == 1, args
            assert words in failed.stderr, (args, failed.stderr)

        assert "none" in cli_ok(server, "clear", "ci@admin")
        assert c.get("/n/admin/ci/late").json()["retention"] is None
        assert "ci@admin" not in cli_ok(server, "list")


def test_max_age_hides_objects_exactly_at_their_age_and_frees_their_bytes(
    server: ThreadServer,
) -> None:
    with server.client() as c:
        old = upload(c, "builds", "old.bin", BODY)
        server.clock.advance(HOUR_MS // 2)
        new = upload(c, "builds/nightly", "new.bin", BODY)
        outside = upload(c, "elsewhere", "kept.bin", BODY)
        cli_ok(server, "set", "builds@admin", "--max-age", "1h")
        before = disk_bytes(server)

        server.clock.advance(HOUR_MS // 2 - 120_000)  # two minutes before old's age
        server.run(server.stowage.reaper.run_once())
        assert c.get(f"/objects/{old['id']}").status_code == 200
        server.clock.advance(90_000)  # within the reaper's lookahead: its expiry is set
        assert server.run(server.stowage.reaper.run_once()) == 0
        server.clock.advance(29_999)
        assert c.get(f"/objects/{old['id']}").status_code == 200
        server.clock.advance(1)  # exactly an hour old
        assert c.get(f"/objects/{old['id']}").status_code == 404
        assert names_in(c, "builds") == set()
        assert names_in(c, "builds/nightly") == {"new.bin"}
        assert disk_bytes(server) == before  # until the reaper removes it

        assert server.run(server.stowage.reaper.run_once()) == 1
        server.collect_blobs()  # the blob it released, a minute on
        assert disk_bytes(server) <= before - BODY
        assert server.run(server.stowage.meta.get_object(old["id"])) is None
        metrics = retention_metrics(server)
        assert metrics[("objects", "max_age")] == 1
        assert metrics[("bytes", "max_age")] == BODY

        server.clock.advance(HOUR_MS)  # new is past its age too; elsewhere has no rule
        assert server.run(server.stowage.reaper.run_once()) == 1
        assert c.get(f"/objects/{new['id']}").status_code == 404
        assert c.get(f"/objects/{outside['id']}").status_code == 200
        server.collect_blobs()
        assert disk_bytes(server) <= before - 2 * BODY
        assert retention_metrics(server)[("bytes", "max_age")] == 2 * BODY


def test_keep_newest_keeps_the_newest_completed_objects_of_each_namespace(
    server: ThreadServer,
) -> None:
    with server.client() as c:
        made = {name: upload(c, "cache/a", name, BODY) for name in ("a1", "a2", "a3", "a4")}
        for name in ("b1", "b2", "b3"):
            upload(c, "cache/b", name, BODY)
        for name in ("o1", "o2", "o3"):
            upload(c, "other", name, BODY)
        assert c.delete(f"/objects/{made['a4']['id']}").status_code == 204  # no longer counts
        cli_ok(server, "set", "cache@admin", "--keep-newest", "2")
        before = disk_bytes(server)

        assert server.run(server.stowage.reaper.run_once()) == 2  # a1 and b1
        server.collect_blobs()  # their blobs, and the deleted a4's
        before -= BODY  # a4's
        assert names_in(c, "cache/a") == {"a2", "a3"}
        assert names_in(c, "cache/b") == {"b2", "b3"}
        assert names_in(c, "other") == {"o1", "o2", "o3"}
        assert disk_bytes(server) == before - 2 * BODY
        metrics = retention_metrics(server)
        assert metrics[("objects", "keep_newest")] == 2
        assert metrics[("bytes", "keep_newest")] == 2 * BODY

        upload(c, "cache/a", "a5", BODY)
        assert names_in(c, "cache/a") == {"a2", "a3", "a5"}  # until the next sweep
        server.run(server.stowage.reaper.run_once())
        assert names_in(c, "cache/a") == {"a3", "a5"}
        assert server.run(server.stowage.reaper.run_once()) == 0


def test_an_earlier_ttl_of_the_object_stands(server: ThreadServer) -> None:
    """No dialect puts an object with a TTL into a namespace today; the store must still
    keep the earlier of its TTL and the namespace's max_age."""
    with server.client() as c:
        upload(c, "ttl", "plain.txt")
    meta = server.stowage.meta
    admin = server.run(meta.get_user_by_name("admin")).id
    namespace = server.run(meta.get_namespace_by_path(admin, "ttl"))
    now = server.clock.now_ms()

    def made(name: str, ttl_ms: int) -> int:
        new = NewObject(
            public_id=new_object_id(now),
            owner_id=admin,
            author_id=admin,
            name=name,
            content_type=ContentType.TEXT,
            metadata=None,
            create_time_ms=now,
            delete_after_time_ms=now + ttl_ms,
            namespace_id=namespace.id,
        )
        return server.run(meta.create_object(new)).id

    soon, late = made("soon", HOUR_MS // 2), made("late", 3 * HOUR_MS)
    cli_ok(server, "set", "ttl@admin", "--max-age", "1h")
    server.clock.advance(HOUR_MS - 1000)
    server.run(server.stowage.reaper.run_once())
    assert server.run(meta.get_object(soon)) is None  # reaped at its own TTL
    assert server.run(meta.get_object(late)).delete_after_time_ms == now + HOUR_MS


def test_reapers_sweeping_at_once_expire_and_count_each_object_once(server: ThreadServer) -> None:
    """Two sweeps at once (on PostgreSQL each on its own connection, as two replicas'
    reapers): SKIP LOCKED and the second look at each row keep them from counting an
    object twice or removing one too many."""
    with server.client() as c:
        for i in range(12):
            upload(c, "fleet", f"f{i:02}")
        server.clock.advance(HOUR_MS)
        for i in range(12, 20):
            upload(c, "fleet", f"f{i:02}")
        cli_ok(server, "set", "fleet@admin", "--max-age", "1h", "--keep-newest", "5")

        async def two_sweeps() -> list[int]:
            reaper = server.stowage.reaper
            return list(await asyncio.gather(reaper.run_once(), reaper.run_once()))

        assert sum(server.run(two_sweeps())) == 15
        assert names_in(c, "fleet") == {f"f{i:02}" for i in range(15, 20)}
        metrics = retention_metrics(server)
        assert metrics[("objects", "max_age")] + metrics[("objects", "keep_newest")] == 15
        assert metrics[("objects", "max_age")] == 12
