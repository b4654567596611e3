"""The S3 half of ``make bench``: stowage on SeaweedFS (PostgreSQL metadata) beside the
same SeaweedFS driven directly by s5cmd (Go), in the same run.

stowage is measured through the Djinn dialect, where bytes pass through stowage; Runloop
uploads in S3 mode go straight to the bucket and would only measure SeaweedFS again.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import psycopg
from sqlalchemy.engine import make_url

from stowage.seaweed import SeaweedFS

from .measure import curl_seconds

BUCKET = "bench"
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/test"


def s5cmd(s3: SeaweedFS, *args: str) -> float:
    binary = Path(sys.executable).parent / "s5cmd"
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": s3.access_key,
        "AWS_SECRET_ACCESS_KEY": s3.secret_key,
        "AWS_REGION": "us-east-1",
    }
    start = time.perf_counter()
    subprocess.run(
        [str(binary), "--endpoint-url", s3.endpoint, *args],
        env=env,
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - start


async def stowage_small(base: str, headers: dict[str, str], count: int) -> tuple[float, float]:
    payload = os.urandom(4096)
    limits = httpx.Limits(max_connections=32, max_keepalive_connections=32)
    async with httpx.AsyncClient(base_url=base, headers=headers, limits=limits, timeout=60) as c:
        gate = asyncio.Semaphore(32)
        ids: list[int] = []

        async def put(i: int) -> None:
            async with gate:
                r = await c.post("/objects", params={"name": f"s{i}"}, content=payload)
                r.raise_for_status()
                ids.append(r.json()["id"])

        async def get(object_id: int) -> None:
            async with gate:
                r = await c.get(
                    f"/objects/{object_id}", headers={"Accept": "application/octet-stream"}
                )
                r.raise_for_status()

        start = time.perf_counter()
        await asyncio.gather(*(put(i) for i in range(count)))
        puts = count / (time.perf_counter() - start)
        start = time.perf_counter()
        await asyncio.gather(*(get(i) for i in ids))
        return puts, count / (time.perf_counter() - start)


def run(
    work: Path, source: Path, size_mib: int, small_count: int, server_cls: Any
) -> dict[str, Any]:
    """Figures for the S3 section, or ``{"skipped": reason}``."""
    base_pg = os.environ.get("STOWAGE_BENCH_DATABASE_URL", DEFAULT_PG)
    try:
        psycopg.connect(base_pg, connect_timeout=3).close()
    except psycopg.Error:
        return {"skipped": f"no PostgreSQL at {base_pg} (set STOWAGE_BENCH_DATABASE_URL)"}
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(base_pg, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    s3 = SeaweedFS.start(work / "seaweedfs", buckets=(BUCKET,))
    try:
        db = make_url(base_pg).update_query_dict({"options": f"-csearch_path={schema},public"})
        env = {
            "STOWAGE_DATABASE_URL": db.render_as_string(hide_password=False),
            "STOWAGE_BLOB_STORE": "s3",
            "STOWAGE_S3_ENDPOINT": s3.endpoint,
            "STOWAGE_S3_BUCKET": BUCKET,
            "STOWAGE_S3_ACCESS_KEY_ID": s3.access_key,
            "STOWAGE_S3_SECRET_ACCESS_KEY": s3.secret_key,
        }
        server = server_cls(work / "s3-data", env)
        try:
            auth = f"Authorization: {server.headers['Authorization']}"
            put = curl_seconds(
                ["-H", auth, "--data-binary", f"@{source}", f"{server.base}/objects?name=big"]
            )
            get = curl_seconds(
                ["-H", auth, "-H", "Accept: application/octet-stream", f"{server.base}/objects/1"]
            )
            small_put, small_get = asyncio.run(
                stowage_small(server.base, server.headers, small_count)
            )
        finally:
            server.stop()
        direct_put = s5cmd(s3, "cp", str(source), f"s3://{BUCKET}/direct-big")
        out = work / "direct-big.out"
        direct_get = s5cmd(s3, "cp", f"s3://{BUCKET}/direct-big", str(out))
        out.unlink()
        small_dir = work / "small"
        small_dir.mkdir()
        (small_dir / "obj").write_bytes(os.urandom(4096))
        puts_file, gets_file = work / "puts.txt", work / "gets.txt"
        puts_file.write_text(
            "".join(f"cp {small_dir / 'obj'} s3://{BUCKET}/small/{i}\n" for i in range(small_count))
        )
        gets_file.write_text(
            "".join(f"cp s3://{BUCKET}/small/{i} {small_dir}/{i}\n" for i in range(small_count))
        )
        s5_put = small_count / s5cmd(s3, "--numworkers", "32", "run", str(puts_file))
        s5_get = small_count / s5cmd(s3, "--numworkers", "32", "run", str(gets_file))
        shutil.rmtree(small_dir)
    finally:
        s3.stop()
        with psycopg.connect(base_pg, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    return {
        "stowage_put_mib_s": size_mib / put,
        "stowage_get_mib_s": size_mib / get,
        "seaweedfs_put_mib_s": size_mib / direct_put,
        "seaweedfs_get_mib_s": size_mib / direct_get,
        "stowage_small_put_s": small_put,
        "stowage_small_get_s": small_get,
        "seaweedfs_small_put_s": s5_put,
        "seaweedfs_small_get_s": s5_get,
        "small_objects": small_count,
    }
