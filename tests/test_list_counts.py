"""Lists at scale keep their answers: ``total_count`` comes from counters the triggers keep
(migration 0006), and SQLite finds name substrings through an FTS5 trigram index. Every
count is compared with a real COUNT(*) over the rows, through each write path."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Connection, Engine, create_engine, text

from stowage.meta import listing
from stowage.meta.database import driver_url
from stowage.meta.migrate import locked_connection, upgrade

from .backends import database_url, migrate_to
from .harness import ThreadServer

FULL = "object:read,write,delete namespace:read,write,delete invite:read,write"
STATES = [None, "UPLOADING", "READ_ONLY", "DELETED"]
# Counters (summed over their slots) and the rows they count, per key: how many, and their
# bytes (which quotas read, migration 0013).
COUNTERS = text(
    "SELECT owner_id, namespace_id, state, content_type, sum(n), sum(bytes) FROM object_counts"
    " GROUP BY owner_id, namespace_id, state, content_type HAVING sum(n) <> 0"
)
ROWS = text(
    "SELECT owner_id, coalesce(namespace_id, 0), state, content_type, count(*),"
    " coalesce(sum(size), 0) FROM objects"
    " GROUP BY owner_id, coalesce(namespace_id, 0), state, content_type"
)
# What a user's list shows, counted row by row: their own objects and those in namespaces
# whose root they collaborate on, in the state asked for (else all but DELETED), unexpired.
VISIBLE = text(
    "SELECT count(*) FROM objects WHERE (owner_id = :viewer OR namespace_id IN ("
    "   SELECT id FROM namespaces WHERE root_id IN ("
    "     SELECT namespace_id FROM namespace_collaborators WHERE user_id = :viewer)))"
    " AND (state = :state OR (CAST(:state AS VARCHAR) IS NULL AND state <> 'DELETED'))"
    " AND (delete_after_time_ms IS NULL OR delete_after_time_ms > :now)"
    " AND (state <> 'UPLOADING' OR upload_deadline_ms IS NULL OR upload_deadline_ms > :now)"
)


@contextmanager
def database(server: ThreadServer) -> Iterator[Engine]:
    engine = create_engine(driver_url(server.settings.sqlalchemy_url))
    try:
        yield engine
    finally:
        engine.dispose()


def counters_match(conn: Connection) -> None:
    counted = {tuple(r[:4]): tuple(r[4:]) for r in conn.execute(COUNTERS)}
    assert counted == {tuple(r[:4]): tuple(r[4:]) for r in conn.execute(ROWS)}


class Users:
    """Users who list, and the check that each one's total_count is exact."""

    def __init__(self, server: ThreadServer, names: list[str]) -> None:
        self.server = server
        self.tokens = {name: server.new_user_token(name, FULL) for name in names}

    def client(self, name: str) -> httpx.Client:
        return self.server.client(self.tokens[name])

    def check(self) -> None:
        with database(self.server) as engine, engine.connect() as conn:
            counters_match(conn)
            ids = {r.name: r.id for r in conn.execute(text("SELECT name, id FROM users"))}
            now = self.server.clock.now_ms()
            for name in self.tokens:
                with self.client(name) as c:
                    for state in STATES:
                        params: dict[str, Any] = {"limit": 1, **({"state": state} if state else {})}
                        answer = c.get("/v1/objects", params=params).json()
                        real = conn.execute(
                            VISIBLE, {"viewer": ids[name], "state": state, "now": now}
                        ).scalar_one()
                        assert answer["total_count"] == real, (name, state)


def runloop_object(c: httpx.Client, name: str, *, complete: bool = True, **extra: Any) -> dict:
    created = c.post("/v1/objects", json={"name": name, "content_type": "text", **extra}).json()
    if not complete:
        return created
    assert httpx.put(created["upload_url"], content=name.encode()).status_code == 200
    return c.post(f"/v1/objects/{created['id']}/complete").json()


def test_total_count_stays_exact_through_every_write(server: ThreadServer) -> None:
    users = Users(server, ["alice", "bob", "carol"])
    reap = server.stowage.reaper.run_once
    with users.client("alice") as a, users.client("bob") as b, users.client("carol") as c:
        users.check()
        a.post("/namespaces", json={"name": "team"})
        invite = a.post("/n/alice/team/-/invites", json={"handle": "bob"}).json()
        assert b.patch(f"/invites/{invite['id']}").status_code == 200

        # Runloop: create (UPLOADING), complete (READ_ONLY), delete (DELETED)
        kept = runloop_object(a, "kept.txt")
        runloop_object(a, "pending.txt", complete=False)
        gone = runloop_object(a, "gone.txt")
        assert a.post(f"/v1/objects/{gone['id']}/delete").status_code == 200
        users.check()

        # Djinn: uploads into a namespace (each other's, as collaborators) and outside one
        for name, who, namespace in [
            ("t1.bin", a, "team"),
            ("t2.bin", a, "team"),
            ("b1.bin", b, "team@alice"),
            ("c1.bin", c, None),
        ]:
            params = {"name": name, **({"namespace": namespace} if namespace else {})}
            assert who.post("/objects", params=params, content=b"x").status_code == 201
        users.check()
        t1 = next(o for o in b.get("/objects").json() if o["name"] == "t1.bin")
        assert b.delete(f"/objects/{t1['id']}").status_code == 204  # a collaborator's delete
        users.check()

        # expiry: hidden at once, before the reaper removes the rows
        runloop_object(b, "short.txt", ttl_ms=1000)
        runloop_object(c, "never-finished.txt", complete=False)
        server.clock.advance(1000)
        users.check()
        server.run(reap())
        users.check()
        server.clock.advance(server.settings.upload_ttl_seconds * 1000)
        users.check()  # the unfinished uploads are past their deadline
        server.run(reap())  # and the tombstones, past their retention
        users.check()

        # deleting the namespace keeps the objects with their owners, outside any namespace
        assert a.delete("/n/alice/team").status_code == 204
        users.check()

        # a tombstone purged after its retention
        assert c.post(f"/v1/objects/{kept['id']}/delete").status_code == 404  # not hers
        assert a.post(f"/v1/objects/{kept['id']}/delete").status_code == 200
        users.check()
        server.clock.advance(server.settings.deleted_retention_seconds * 1000)
        server.run(reap())
        users.check()


def test_counts_follow_state_content_type_and_namespace_filters(server: ThreadServer) -> None:
    users = Users(server, ["dora"])
    with users.client("dora") as d:
        d.post("/namespaces", json={"name": "open", "visibility": "public"})
        for i in range(3):
            d.post("/objects", params={"name": f"o{i}", "namespace": "open"}, content=b"o")
        runloop_object(d, "plain.txt")
        d.post("/v1/objects", json={"name": "tarball", "content_type": "tar"})
        users.check()
        by_type = d.get("/v1/objects", params={"content_type": "tar", "limit": 1}).json()
        assert by_type["total_count"] == 1
        public = d.get("/v1/objects/list_public").json()
        assert public["total_count"] == 3
        # an empty page past the first counts the rows: 3 rows make one page, not none
        paged = d.get("/n/dora/open/-/objects", params={"page": 2})
        assert paged.json() == []
        assert "page=1" in paged.headers["link"] and "page=0" not in paged.headers["link"]


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_the_migration_counts_and_indexes_existing_rows(
    backend: str, tmp_path: Path, pg_base_url: str | None
) -> None:
    with database_url(backend, pg_base_url) as url:
        url = url or f"sqlite:///{tmp_path / 'stowage.db'}"
        with locked_connection(url) as connection:
            migrate_to(connection, "0005")
        engine = create_engine(driver_url(url))
        try:
            with engine.begin() as conn:
                conn.execute(
                    text(
                        "INSERT INTO users (name, is_admin, created_at_ms)"
                        " VALUES ('old', false, 0), ('older', false, 0)"
                    )
                )
                for i in range(40):
                    conn.execute(
                        text(
                            "INSERT INTO objects (public_id, owner_id, author_id, name,"
                            " content_type, state, create_time_ms, unique_name)"
                            " VALUES (:pid, :owner, :owner, :name, :type, :state, 0, false)"
                        ),
                        {
                            "pid": f"obj_{i:026d}",
                            "owner": 1 + i % 2,
                            "name": f"Report-{i:03d}.txt",
                            "type": ("text", "binary")[i % 3 == 0],
                            "state": STATES[1 + i % 3],
                        },
                    )
            with locked_connection(url) as connection:
                upgrade(connection)
            with engine.connect() as conn:
                counters_match(conn)
                if backend == "sqlite":
                    found = conn.execute(
                        text("SELECT rowid FROM objects_fts WHERE objects_fts MATCH '\"ort-01\"'")
                    ).scalars()
                    assert sorted(found) == list(range(11, 21))
        finally:
            engine.dispose()


# --- name substrings: the FTS5 path (SQLite) gives what a row-by-row scan gives ----------

NAMES = [
    "Ünïcode-Straße.txt",
    "ünïcode-lower.txt",
    "100%_done.log",
    "100xydone.log",
    "a_b.csv",
    "axb.csv",
    'quote"d.txt',
    "build-0012.tar",
    "build-0013.tar",
    "BUILD-0012.TAR.GZ",
]
TERMS = [
    "üNÏ",  # non-ASCII, either case
    "ÜN",  # the same, shorter than a trigram
    "straße",
    "0%_",  # % and _ are literal
    "%",
    "_",
    "a_b",
    'e"d',
    "build-0012",
    "BuIlD",
    "0012.tar",
    "t",
    "no such name",
]
EXPECTED = {
    "üNÏ": ["Ünïcode-Straße.txt", "ünïcode-lower.txt"],
    "ÜN": ["Ünïcode-Straße.txt", "ünïcode-lower.txt"],
    "straße": ["Ünïcode-Straße.txt"],
    "0%_": ["100%_done.log"],
    "%": ["100%_done.log"],
    "_": ["100%_done.log", "a_b.csv"],
    "a_b": ["a_b.csv"],
    'e"d': ['quote"d.txt'],
    "build-0012": ["build-0012.tar", "BUILD-0012.TAR.GZ"],
    "BuIlD": ["build-0012.tar", "build-0013.tar", "BUILD-0012.TAR.GZ"],
    "0012.tar": ["build-0012.tar", "BUILD-0012.TAR.GZ"],
    "no such name": [],
}


def listed(c: httpx.Client, term: str) -> dict[str, Any]:
    """What each list answers for ``term``: Runloop's name= and search= (names, count),
    and Djinn's search."""
    answers: dict[str, Any] = {}
    for param in ("name", "search"):
        page = c.get("/v1/objects", params={param: term, "limit": 100}).json()
        answers[param] = (sorted(o["name"] for o in page["objects"]), page["total_count"])
    answers["djinn"] = sorted(o["name"] for o in c.get("/objects", params={"search": term}).json())
    return answers


def test_name_search_is_a_literal_case_insensitive_substring(
    server: ThreadServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    with server.client() as c:
        for name in NAMES:
            runloop_object(c, name)
        with server.client(server.new_user_token("other")) as o:  # others' names never show
            runloop_object(o, "build-0012-other")
        for term in TERMS:
            found = listed(c, term)
            expected = sorted(EXPECTED.get(term, [n for n in NAMES if term in n.lower()]))
            assert found["name"] == (expected, len(expected)), term
            assert found["search"] == found["name"], term
            assert found["djinn"] == expected, term
            # the same answers when the trigram index is not used (or matches too many)
            monkeypatch.setattr(listing, "TRIGRAM_MATCHES", 0)
            assert listed(c, term) == found, term
            monkeypatch.undo()
        some = c.get("/v1/objects", params={"name": "build", "limit": 1}).json()
        assert [o["name"] for o in some["objects"]] == ["BUILD-0012.TAR.GZ"]  # newest first
        assert some["has_more"] and some["total_count"] == 3
        by_id = c.get("/v1/objects", params={"search": some["objects"][0]["id"]}).json()
        assert [o["name"] for o in by_id["objects"]] == ["BUILD-0012.TAR.GZ"]
        assert by_id["total_count"] == 1


def test_deep_pages_are_the_list_sliced(server: ThreadServer) -> None:
    """Djinn pages past the first (found on the index alone, then read) are slices of the
    whole list, with and without objects shared through a namespace."""
    owner = server.new_user_token("owner", FULL)
    guest = server.new_user_token("guest", FULL)
    with server.client(owner) as o, server.client(guest) as g:
        o.post("/namespaces", json={"name": "shared"})
        invite = o.post("/n/owner/shared/-/invites", json={"handle": "guest"}).json()
        assert g.patch(f"/invites/{invite['id']}").status_code == 200
        for i in range(40):
            who, namespace = [(o, "shared"), (g, None), (o, None)][i % 3]
            params = {"name": f"n{i:02d}", **({"namespace": namespace} if namespace else {})}
            assert who.post("/objects", params=params, content=b"p").status_code == 201
        for c, count in ((o, 27), (g, 27)):
            everything = c.get("/v1/objects", params={"limit": 100}).json()
            names = [obj["name"] for obj in everything["objects"]]
            assert everything["total_count"] == len(names) == count
            pages = [
                [x["name"] for x in c.get("/objects", params={"page": p}).json()] for p in (1, 2)
            ]
            assert pages == [names[:25], names[25:]]
