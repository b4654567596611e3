"""Two stowage processes on one PostgreSQL and one bucket: stateless replicas.

Each replica has its own data directory and shares only the database, the bucket and the
presigning secret (from config), as behind a load balancer.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
import pytest
from sqlalchemy import create_engine, text

from stowage.meta.database import driver_url
from stowage.processes import free_port, wait_healthy

from .backends import backend_settings
from .test_list_counts import counters_match

EXPIRING = 30


@dataclass
class Replica:
    base_url: str
    log: Path
    process: subprocess.Popen[bytes]

    def removed(self) -> int:
        """Objects this replica's reaper has removed, from its log."""
        text = self.log.read_text()
        return sum(int(n) for n in re.findall(r"reaper removed (\d+)", text))


@dataclass
class Cluster:
    a: Replica
    b: Replica
    token: str
    database_url: str

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@pytest.fixture
def cluster(
    request: pytest.FixtureRequest, tmp_path: Path, pg_base_url: str | None
) -> Iterator[Cluster]:
    with backend_settings("postgres-s3", request, pg_base_url) as settings:
        shared = {f"STOWAGE_{k.upper()}": v for k, v in settings.items()}
        shared["STOWAGE_PRESIGN_SECRET"] = os.urandom(32).hex()
        shared["STOWAGE_REAPER_INTERVAL_SECONDS"] = "0.2"
        replicas: list[Replica] = []
        try:
            for name in ("a", "b"):
                port = free_port()
                log = tmp_path / f"{name}.log"
                env = {
                    **os.environ,
                    **shared,
                    "STOWAGE_DATA_DIR": str(tmp_path / name),
                    "STOWAGE_PORT": str(port),
                }
                with open(log, "wb") as out:
                    process = subprocess.Popen(
                        [sys.executable, "-m", "stowage.cli", "serve"],
                        env=env,
                        stdout=out,
                        stderr=out,
                    )
                replica = Replica(f"http://127.0.0.1:{port}", log, process)
                replicas.append(replica)
                wait_healthy(replica.base_url, process)
            token = (tmp_path / "a" / "admin-token").read_text().strip()
            assert not (tmp_path / "b" / "admin-token").exists()  # one admin, made once
            yield Cluster(replicas[0], replicas[1], token, settings["database_url"])
        finally:
            for replica in replicas:
                replica.process.send_signal(signal.SIGTERM)
            for replica in replicas:
                replica.process.wait(timeout=20)


def test_create_on_one_complete_on_the_other(cluster: Cluster) -> None:
    data = os.urandom(3 * 1024 * 1024)
    h = cluster.headers()
    created = httpx.post(
        f"{cluster.a.base_url}/v1/objects",
        json={"name": "shared.bin", "content_type": "binary"},
        headers=h,
    ).json()
    assert httpx.put(created["upload_url"], content=data).status_code == 200
    done = httpx.post(f"{cluster.b.base_url}/v1/objects/{created['id']}/complete", headers=h)
    assert done.json()["size_bytes"] == len(data)
    for replica in (cluster.a, cluster.b):
        listed = httpx.get(f"{replica.base_url}/v1/objects", headers=h).json()
        assert [o["id"] for o in listed["objects"]] == [created["id"]]
        url = httpx.get(
            f"{replica.base_url}/v1/objects/{created['id']}/download", headers=h
        ).json()["download_url"]
        assert httpx.get(url).content == data
        djinn = httpx.get(f"{replica.base_url}/objects", headers=h).json()
        accept = {**h, "Accept": "application/octet-stream"}
        assert (
            httpx.get(f"{replica.base_url}/objects/{djinn[0]['id']}", headers=accept).content
            == data
        )


def test_an_idempotency_key_raced_across_replicas_gives_one_object(cluster: Cluster) -> None:
    body = {"name": "keyed.bin", "content_type": "binary"}

    async def race() -> list[httpx.Response]:
        headers = {**cluster.headers(), "x-request-id": "one-key"}
        async with httpx.AsyncClient(headers=headers, timeout=60) as c:
            return await asyncio.gather(
                *(
                    c.post(f"{(cluster.a, cluster.b)[i % 2].base_url}/v1/objects", json=body)
                    for i in range(10)
                )
            )

    replies = asyncio.run(race())
    assert [r.status_code for r in replies] == [200] * 10
    assert len({r.json()["id"] for r in replies}) == 1
    oid = replies[0].json()["id"]
    h = cluster.headers()
    listed = httpx.get(f"{cluster.b.base_url}/v1/objects", params={"name": "keyed"}, headers=h)
    assert [o["id"] for o in listed.json()["objects"]] == [oid]

    assert httpx.put(replies[1].json()["upload_url"], content=b"data").status_code == 200
    seal = {**h, "Idempotency-Key": "seal"}
    done = httpx.post(f"{cluster.a.base_url}/v1/objects/{oid}/complete", headers=seal)
    again = httpx.post(f"{cluster.b.base_url}/v1/objects/{oid}/complete", headers=seal)
    assert done.status_code == again.status_code == 200
    assert done.json() == again.json()


def test_one_name_raced_across_replicas_gives_one_object(cluster: Cluster) -> None:
    async def race() -> list[int]:
        async with httpx.AsyncClient(headers=cluster.headers(), timeout=60) as c:
            replies = await asyncio.gather(
                *(
                    c.post(
                        f"{(cluster.a, cluster.b)[i % 2].base_url}/objects",
                        params={"name": "contended.bin"},
                        content=b"x" * 100,
                    )
                    for i in range(50)
                )
            )
        return sorted(r.status_code for r in replies)

    assert asyncio.run(race()) == [201] + [400] * 49


def test_both_reapers_remove_each_expired_object_once(cluster: Cluster) -> None:
    h = cluster.headers()
    for i in range(EXPIRING):
        replica = (cluster.a, cluster.b)[i % 2]
        r = httpx.post(
            f"{replica.base_url}/v1/objects",
            json={"name": f"short{i}", "content_type": "text", "ttl_ms": 1},
            headers=h,
        )
        assert r.status_code == 200
    deadline = time.monotonic() + 60
    while cluster.a.removed() + cluster.b.removed() < EXPIRING:
        assert time.monotonic() < deadline, "the reapers did not remove every expired object"
        time.sleep(0.1)
    with psycopg.connect(cluster.database_url) as conn:
        assert conn.execute("SELECT count(*) FROM objects").fetchone() == (0,)
    assert cluster.a.removed() + cluster.b.removed() == EXPIRING
    for replica in (cluster.a, cluster.b):
        assert "Traceback" not in replica.log.read_text()


def test_counters_stay_exact_under_concurrent_writes(cluster: Cluster) -> None:
    """Both replicas write at once (Djinn uploads and deletes; Runloop create, complete and
    delete; objects that expire and both reapers remove): the counters behind total_count
    end equal to the rows, and no write failed on a counter (a deadlock would be a 5xx)."""
    h = cluster.headers()

    async def one(c: httpx.AsyncClient, bare: httpx.AsyncClient, i: int) -> None:
        base = (cluster.a, cluster.b)[i % 2].base_url
        if i % 4 in (0, 1):  # Djinn: upload, and every other one deleted again
            up = await c.post(f"{base}/objects", params={"name": f"d{i}"}, content=b"d")
            assert up.status_code == 201
            if i % 4 == 0:
                assert (await c.delete(f"{base}/objects/{up.json()['id']}")).status_code == 204
            return
        ttl = {"ttl_ms": 1} if i % 4 == 2 else {}
        body = {"name": f"r{i}", "content_type": "text", **ttl}
        made = (await c.post(f"{base}/v1/objects", json=body)).json()
        if ttl:
            return
        assert (await bare.put(made["upload_url"], content=b"r")).status_code == 200
        other = (cluster.b, cluster.a)[i % 2].base_url
        done = await c.post(f"{other}/v1/objects/{made['id']}/complete")
        assert done.status_code == 200
        assert (await c.post(f"{base}/v1/objects/{made['id']}/delete")).status_code == 200

    async def run() -> None:
        async with httpx.AsyncClient(headers=h, timeout=60) as c, httpx.AsyncClient() as bare:
            await asyncio.gather(*(one(c, bare, i) for i in range(160)))

    asyncio.run(run())
    deadline = time.monotonic() + 60
    while cluster.a.removed() + cluster.b.removed() < 40:
        assert time.monotonic() < deadline, "the reapers did not remove every expired object"
        time.sleep(0.1)
    engine = create_engine(driver_url(cluster.database_url))
    try:
        with engine.connect() as conn:
            counters_match(conn)
            assert conn.execute(text("SELECT count(*) FROM objects")).scalar_one() == 120
    finally:
        engine.dispose()
    listed = httpx.get(f"{cluster.a.base_url}/v1/objects", headers=h).json()
    assert listed["total_count"] == 40  # the Djinn uploads kept; tombstones are hidden
    for replica in (cluster.a, cluster.b):
        assert "Traceback" not in replica.log.read_text()
