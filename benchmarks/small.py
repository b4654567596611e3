"""4 KiB objects at 32 in flight: Djinn PUT/GET, the Runloop three-step flow, SeaweedFS
with s5cmd beside them, and the load generator's own ceiling against ``/healthz``."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import orjson

from .loadgen import Connection, drive, target_of
from .stack import S3Endpoint, StowageServer, s5cmd_seconds

SIZE = 4096
CONCURRENCY = 32


@dataclass
class SmallFigures:
    put_s: float
    get_s: float


def ceiling(server: StowageServer, count: int) -> float:
    """Requests/s the load generator reaches on an endpoint that does nothing."""

    async def step(conn: Connection, _i: int) -> None:
        await conn.expect(200, "GET", "/healthz")

    return drive(server.base, step, count, CONCURRENCY).per_second


def unique(payload: bytes, i: int) -> bytes:
    """``payload`` with its first bytes made the number ``i``: no two uploads alike, or
    stowage would store the content once (deduplication) and skip the writes of the rest.
    """
    return i.to_bytes(8, "big") + payload[8:]


def djinn(server: StowageServer, count: int, prefix: str) -> SmallFigures:
    payload = os.urandom(SIZE)
    auth = server.headers
    ids: list[int] = []

    async def put(conn: Connection, i: int) -> None:
        sent = unique(payload, i)
        body = await conn.expect(201, "POST", f"/objects?name={prefix}{i}", auth, sent)
        ids.append(orjson.loads(body)["id"])

    accept = {**auth, "Accept": "application/octet-stream"}

    async def get(conn: Connection, i: int) -> None:
        await conn.expect(200, "GET", f"/objects/{ids[i]}", accept)

    puts = drive(server.base, put, count, CONCURRENCY)
    gets = drive(server.base, get, count, CONCURRENCY)
    return SmallFigures(puts.per_second, gets.per_second)


def runloop_flow(server: StowageServer, count: int) -> float:
    """Objects/s through create → presigned PUT → complete."""
    payload = os.urandom(SIZE)
    json_headers = {**server.headers, "Content-Type": "application/json"}

    async def flow(conn: Connection, i: int) -> None:
        create = orjson.dumps({"name": f"flow-{i}", "content_type": "binary"})
        created = orjson.loads(await conn.expect(200, "POST", "/v1/objects", json_headers, create))
        await conn.expect(200, "PUT", target_of(created["upload_url"]), None, unique(payload, i))
        await conn.expect(200, "POST", f"/v1/objects/{created['id']}/complete", server.headers)

    return drive(server.base, flow, count, CONCURRENCY).per_second


def s5cmd(s3: S3Endpoint, bucket: str, work: Path, count: int) -> SmallFigures:
    """s5cmd (Go) with 32 workers, the way its authors benchmark it. Each object has
    content of its own: stowage stores a repeated content once (deduplication), which
    would spare it the writes SeaweedFS does for every PUT."""
    small = work / "small"
    small.mkdir()
    for i in range(count):
        (small / f"{i}.in").write_bytes(os.urandom(SIZE))
    puts, gets = work / "puts.txt", work / "gets.txt"
    puts.write_text("".join(f"cp {small / f'{i}.in'} s3://{bucket}/s/{i}\n" for i in range(count)))
    gets.write_text("".join(f"cp s3://{bucket}/s/{i} {small}/{i}\n" for i in range(count)))
    put_s = count / s5cmd_seconds(s3, "--numworkers", str(CONCURRENCY), "run", str(puts))
    get_s = count / s5cmd_seconds(s3, "--numworkers", str(CONCURRENCY), "run", str(gets))
    return SmallFigures(put_s, get_s)
