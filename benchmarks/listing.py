"""List latency with a large table: rows are inserted straight into the database (a million
uploads would take an hour), then pages are fetched one at a time over HTTP."""

from __future__ import annotations

import hashlib
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg

from stowage.core.ids import new_object_id

from .loadgen import Connection, drive
from .stack import StowageServer

COLUMNS = (
    "public_id",
    "owner_id",
    "author_id",
    "name",
    "content_type",
    "state",
    "create_time_ms",
    "size",
    "md5",
    "sha256",
    "blob_key",
    "mime_type",
    "unique_name",
)
BUDGET_S = 10
MD5, SHA = hashlib.md5(b"x").hexdigest(), hashlib.sha256(b"x").hexdigest()


@dataclass
class Latency:
    what: str
    p50_ms: float
    p99_ms: float
    goal_ms: float | None  # p99 goal (issue 15)


SEARCH = "build-00123"  # a name substring of 100 rows of a million (10 of 100,000)


def rows(count: int, owner_id: int, middle: list[str]) -> Iterator[tuple[object, ...]]:
    """Finished uploads, one millisecond apart, with distinct names.
    The id half-way down the list is appended to ``middle``."""
    start_ms = int(time.time() * 1000) - count
    for i in range(count):
        public_id = new_object_id(start_ms + i)
        if i == count // 2:
            middle.append(public_id)
        yield (
            public_id,
            owner_id,
            owner_id,
            f"build-{i:07d}.tar",
            "tar",
            "READ_ONLY",
            start_ms + i,
            1,
            MD5,
            SHA,
            f"{i:032x}",
            "application/x-tar",
            True,
        )


def fill_sqlite(path: str, count: int) -> str:
    """Insert ``count`` objects for the admin; return the id in the middle of the list."""
    middle: list[str] = []
    with sqlite3.connect(path) as db:
        owner = db.execute("SELECT id FROM users WHERE name = 'admin'").fetchone()[0]
        marks = ", ".join("?" * len(COLUMNS))
        db.executemany(
            f"INSERT INTO objects ({', '.join(COLUMNS)}) VALUES ({marks})",
            rows(count, owner, middle),
        )
    return middle[0]


def fill_postgres(url: str, count: int) -> str:
    middle: list[str] = []
    with psycopg.connect(url) as db:
        owner = db.execute("SELECT id FROM users WHERE name = 'admin'").fetchone()
        assert owner is not None
        with db.cursor().copy(f"COPY objects ({', '.join(COLUMNS)}) FROM STDIN") as copy:
            for row in rows(count, owner[0], middle):
                copy.write_row(row)
        db.commit()
    with psycopg.connect(url, autocommit=True) as db:
        # What autovacuum does after a bulk load (PostgreSQL 13+ vacuums after inserts too):
        # the visibility map lets index-only scans skip the table.
        db.execute("VACUUM ANALYZE objects")
    return middle[0]


def latencies(server: StowageServer, count: int, middle_id: str, requests: int) -> list[Latency]:
    """p50/p99 of single requests, one at a time, after a few warm-up requests."""
    auth = server.headers
    page = count // 50  # Djinn shows 25 a page: the middle of the list
    targets = {
        "Runloop page (50, no count)": ("/v1/objects?limit=50&include_total_count=false", 20),
        "Runloop deep page (starting_after)": (
            f"/v1/objects?limit=50&include_total_count=false&starting_after={middle_id}",
            20,
        ),
        "Runloop page with total_count": ("/v1/objects?limit=50", 20),
        "Runloop total_count, state=READ_ONLY": ("/v1/objects?limit=50&state=READ_ONLY", 20),
        "Runloop total_count, name= substring": (f"/v1/objects?limit=50&name={SEARCH}", 20),
        "Runloop total_count, search= substring": (f"/v1/objects?limit=50&search={SEARCH}", 20),
        "Djinn page 1 (25, newest first)": ("/objects", 20),
        f"Djinn page {page:,} (offset {(page - 1) * 25:,})": (f"/objects?page={page}", 50),
        "Djinn search (substring)": (f"/objects?search={SEARCH}", 50),
    }
    found = []
    for what, (target, goal_ms) in targets.items():

        async def get(conn: Connection, _i: int, target: str = target) -> None:
            await conn.expect(200, "GET", target, auth)

        warm = drive(server.base, get, 5, 1)
        # Slow queries (counts, deep offsets) get fewer samples: at most ~10 s each.
        count_for = max(20, min(requests, int(BUDGET_S / (warm.seconds / 5))))
        result = drive(server.base, get, count_for, 1)
        found.append(Latency(what, result.percentile(50), result.percentile(99), goal_ms))
    return found
