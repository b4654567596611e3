"""Big objects: PUT through both dialects and GET whole or as four parallel ranges.

curl moves the bytes (it costs almost nothing next to the server). Baselines in the same run:
``dd conv=fdatasync`` on the filesystem that holds stowage's data, md5 + sha256 on one core,
an aiohttp sendfile server on the same file, and SeaweedFS driven by s5cmd (which drives
stowage's S3 API as well, in ``s3_api.py``).
"""

from __future__ import annotations

import hashlib
import itertools
import os
import statistics
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import boto3
import httpx
from botocore.config import Config as BotoConfig

from .report import curl_seconds, parallel_curl_seconds
from .stack import S3Endpoint, StowageServer, s5cmd_seconds

MIB = 1024 * 1024


def make_source(path: Path, size_mib: int) -> Path:
    with open(path, "wb") as f:
        for _ in range(size_mib):
            f.write(os.urandom(MIB))
    return path


_UPLOADS = itertools.count()


def made_unique(source: Path) -> Path:
    """``source`` with its first 8 bytes rewritten to a number no upload of this run had:
    stowage stores a repeated content once (deduplication), so a round sending the bytes
    of an earlier one would skip the fsync and the rename that a new content costs."""
    with open(source, "r+b") as f:
        f.write(next(_UPLOADS).to_bytes(8, "big"))
    return source


def dd_fdatasync_mib_s(directory: Path, size_mib: int) -> float:
    target = directory / "dd-probe"
    start = time.perf_counter()
    subprocess.run(
        ["dd", "if=/dev/zero", f"of={target}", "bs=1M", f"count={size_mib}", "conv=fdatasync"],
        check=True,
        capture_output=True,
    )
    elapsed = time.perf_counter() - start
    target.unlink()
    return size_mib / elapsed


def hash_mib_s(size_mib: int) -> float:
    """md5 then sha256 over the same buffer, as one upload does, on one core."""
    block = os.urandom(MIB)
    start = time.perf_counter()
    md5, sha = hashlib.md5(usedforsecurity=False), hashlib.sha256()
    for _ in range(size_mib):
        md5.update(block)
        sha.update(block)
    return size_mib / (time.perf_counter() - start)


def ranges(size: int, parts: int) -> list[str]:
    step = size // parts
    return [
        f"{i * step}-{size - 1 if i == parts - 1 else (i + 1) * step - 1}" for i in range(parts)
    ]


@dataclass
class Transfer:
    """MiB/s for one way of moving the object, median over rounds."""

    put: float
    get: float
    get_ranges: float


@dataclass
class PutGet:
    """MiB/s of a store measured by whole-object PUT and GET only; ``settled_s``, the
    seconds after the PUT until the object's digests were shown (stowage's multipart);
    ``curl_get``, a GET of a presigned URL by curl."""

    put: float
    get: float
    settled_s: float = 0.0
    curl_get: float = 0.0


def whole_and_ranges(url: str, size: int, headers: list[str]) -> tuple[float, float]:
    size_mib = size / MIB
    whole = size_mib / curl_seconds([*headers, url])
    split = [[*headers, "-r", r, url] for r in ranges(size, 4)]
    return whole, size_mib / parallel_curl_seconds(split)


def runloop_round(server: StowageServer, source: Path) -> Transfer:
    """create → presigned PUT → complete → presigned GET (whole, 4 ranges) → delete."""
    size = source.stat().st_size
    with httpx.Client(base_url=server.base, headers=server.headers, timeout=60) as c:
        created = c.post("/v1/objects", json={"name": "big.bin", "content_type": "binary"})
        created.raise_for_status()
        object_id, upload_url = created.json()["id"], created.json()["upload_url"]
        put = size / MIB / curl_seconds(["-T", str(made_unique(source)), upload_url])
        c.post(f"/v1/objects/{object_id}/complete").raise_for_status()
        url = c.get(f"/v1/objects/{object_id}/download").json()["download_url"]
        get, get_ranges = whole_and_ranges(url, size, [])
        c.post(f"/v1/objects/{object_id}/delete").raise_for_status()
    return Transfer(put, get, get_ranges)


def djinn_round(server: StowageServer, source: Path, name: str) -> Transfer:
    """POST /objects with the raw body (streamed by curl -T), GET by Accept, DELETE."""
    size = source.stat().st_size
    auth = ["-H", f"Authorization: Bearer {server.token}"]
    upload_target = f"{server.base}/objects?name={name}"
    body = made_unique(source)
    start = time.perf_counter()
    out = subprocess.run(
        ["curl", "-sS", "--fail", *auth, "-X", "POST", "-T", str(body), upload_target],
        check=True,
        capture_output=True,
    )
    put = size / MIB / (time.perf_counter() - start)
    object_id = httpx.Response(200, content=out.stdout).json()["id"]
    accept = [*auth, "-H", "Accept: application/octet-stream"]
    get, get_ranges = whole_and_ranges(f"{server.base}/objects/{object_id}", size, accept)
    httpx.delete(f"{server.base}/objects/{object_id}", headers=server.headers).raise_for_status()
    return Transfer(put, get, get_ranges)


def median_transfer(rounds: list[Transfer]) -> Transfer:
    return Transfer(
        statistics.median(r.put for r in rounds),
        statistics.median(r.get for r in rounds),
        statistics.median(r.get_ranges for r in rounds),
    )


def sendfile_get(base: str, source: Path) -> tuple[float, float]:
    return whole_and_ranges(f"{base}/files/{source.name}", source.stat().st_size, [])


def digests_shown(server: StowageServer) -> Callable[[str], float]:
    """Seconds until Djinn shows the sha256 of the object named ``key`` (an object
    assembled from multipart parts gets its digests after Complete has answered)."""

    def wait(key: str) -> float:
        start = time.perf_counter()
        with httpx.Client(base_url=server.base, headers=server.headers) as djinn:
            while True:
                found = djinn.get("/objects", params={"search": key}).json()
                if any(o["name"] == key and o["sha256"] for o in found):
                    return time.perf_counter() - start
                if time.perf_counter() - start > 600:
                    raise TimeoutError(f"{key} has no digests after 600 s")
                time.sleep(0.02)

    return wait


def s5cmd_rounds(
    s3: S3Endpoint,
    bucket: str,
    source: Path,
    rounds: int,
    settled: Callable[[str], float] = lambda key: 0.0,
) -> PutGet:
    """The median of ``rounds`` of: s5cmd PUT (its multipart, 5 parts at once), the wait
    for ``settled(key)``, then GET with s5cmd's parallel ranged download into a file (a
    pipe, as ``s5cmd cat`` writes, is read in order and was the ceiling of both stores),
    and GET of a SigV4-presigned URL by curl: s5cmd reads both stores at about the same
    700-900 MiB/s here whatever its settings, so it cannot tell them apart."""
    size_mib = source.stat().st_size / MIB
    found = []
    for index in range(rounds):
        key = f"big-direct-{index}"
        url = f"s3://{bucket}/{key}"
        put = size_mib / s5cmd_seconds(s3, "cp", str(made_unique(source)), url)
        waited = settled(key)
        target = source.with_name(f"{source.name}.got")
        get = size_mib / s5cmd_seconds(s3, "cp", url, str(target))
        target.unlink()
        curl_get = size_mib / curl_seconds([presigned_get(s3, bucket, key)])
        s5cmd_seconds(s3, "rm", url)
        found.append(PutGet(put, get, waited, curl_get))
    return PutGet(
        statistics.median(f.put for f in found),
        statistics.median(f.get for f in found),
        statistics.median(f.settled_s for f in found),
        statistics.median(f.curl_get for f in found),
    )


def presigned_get(s3: S3Endpoint, bucket: str, key: str) -> str:
    """A SigV4 GET URL for the object, as boto3 makes it (path style)."""
    client = boto3.client(
        "s3",
        endpoint_url=s3.endpoint,
        aws_access_key_id=s3.access_key,
        aws_secret_access_key=s3.secret_key,
        region_name="us-east-1",
        config=BotoConfig(signature_version="s3v4", s3={"addressing_style": "path"}),
    )
    return str(
        client.generate_presigned_url(
            "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=3600
        )
    )
