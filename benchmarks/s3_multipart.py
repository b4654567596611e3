"""How an S3 multipart upload should reach the S3 blob backend: the measurement behind
"Blobs: S3" in docs/architecture.md. ``python -m benchmarks.s3_multipart [MiB]``.

On a SeaweedFS started for the run, one object (256 MiB by default) in 8 MiB parts, four
in flight as clients send them, three ways, in two rounds:

- ``blobs``: today's path. Each part a blob of its own (``S3BlobStore.put``, hashing as it
  streams); completion streams the parts back through stowage into one new blob, hashing.
- ``copy``: the parts as today, but completion assembles them in the store (a backing
  multipart upload filled by UploadPartCopy of each part's blob), then reads the result
  back once for its md5 and sha256.
- ``native``: what stowage does (``S3BlobStore.parts``): the parts go straight into one
  backing multipart upload; completion completes it and reads the result back once for
  its md5 and sha256.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from stowage.blobs.s3 import S3BlobStore
from stowage.seaweed import SeaweedFS

from .s3_clients import aiobotocore_client

MIB = 1024 * 1024
PART_MIB = 8
IN_FLIGHT = 4
ROUNDS = 2
BUCKET = "multipart"


async def one(data: bytes) -> AsyncIterator[bytes]:
    for at in range(0, len(data), MIB):
        yield data[at : at + MIB]


async def at_most(jobs: Sequence[Callable[[], Awaitable[Any]]]) -> list[Any]:
    gate = asyncio.Semaphore(IN_FLIGHT)

    async def run(job: Callable[[], Awaitable[Any]]) -> Any:
        async with gate:
            return await job()

    return await asyncio.gather(*(run(j) for j in jobs))


async def blobs_path(store: S3BlobStore, bodies: list[bytes], tag: str) -> list[str]:
    """Each part a blob of its own (today's parts, and the copy path's)."""
    keys = [f"{tag}-part-{n}" for n in range(len(bodies))]
    pairs = zip(keys, bodies, strict=True)
    await at_most([lambda k=k, p=p: store.put(k, one(p), None) for k, p in pairs])
    return keys


async def copied_through_stowage(store: S3BlobStore, keys: list[str], size: int) -> None:
    async def concatenated() -> AsyncIterator[bytes]:
        for key in keys:
            async for chunk in await store.read(key, 0, size):
                yield chunk

    await store.put(f"{keys[0]}-whole", concatenated(), None)


async def copied_in_the_store(store: S3BlobStore, client: Any, keys: list[str]) -> None:
    target = store.path(f"{keys[0]}-whole")
    upload = await client.create_multipart_upload(Bucket=BUCKET, Key=target)
    copied = await at_most(
        [
            lambda n=n, k=k: client.upload_part_copy(
                Bucket=BUCKET,
                Key=target,
                UploadId=upload["UploadId"],
                PartNumber=n,
                CopySource={"Bucket": BUCKET, "Key": store.path(k)},
            )
            for n, k in enumerate(keys, 1)
        ]
    )
    chosen = [
        {"PartNumber": n, "ETag": c["CopyPartResult"]["ETag"]} for n, c in enumerate(copied, 1)
    ]
    await client.complete_multipart_upload(
        Bucket=BUCKET, Key=target, UploadId=upload["UploadId"], MultipartUpload={"Parts": chosen}
    )
    await store.digest(f"{keys[0]}-whole")


async def figures(
    s3: SeaweedFS, bodies: list[bytes], round_: int
) -> dict[str, tuple[float, float]]:
    store = S3BlobStore(BUCKET, s3.endpoint, "us-east-1", s3.access_key, s3.secret_key, True)
    own = store.parts
    assert own is not None  # the store has keys
    found: dict[str, tuple[float, float]] = {}
    async with aiobotocore_client(s3) as client:
        for name, finish in (
            ("blobs", lambda keys: copied_through_stowage(store, keys, len(bodies[0]))),
            ("copy", lambda keys: copied_in_the_store(store, client, keys)),
        ):
            started = time.perf_counter()
            keys = await blobs_path(store, bodies, f"{name}-{round_}")
            parts_s = time.perf_counter() - started
            started = time.perf_counter()
            await finish(keys)
            found[name] = (parts_s, time.perf_counter() - started)

    target = f"native-{round_}"
    started = time.perf_counter()
    upload_id = await own.start(target)
    md5s = await at_most(
        [
            lambda n=n, p=p: own.put(target, upload_id, n, one(p), len(p))
            for n, p in enumerate(bodies, 1)
        ]
    )
    parts_s = time.perf_counter() - started
    started = time.perf_counter()
    await own.complete(target, upload_id, list(enumerate(md5s, 1)))
    found["native"] = (parts_s, time.perf_counter() - started)
    store.close()
    return found


def main() -> None:
    total_mib = int(sys.argv[1]) if len(sys.argv) > 1 else 256
    bodies = [os.urandom(PART_MIB * MIB) for _ in range(total_mib // PART_MIB)]
    with tempfile.TemporaryDirectory(prefix="s3-multipart-") as work:
        s3 = SeaweedFS.start(Path(work), buckets=(BUCKET,))
        try:
            rounds = [asyncio.run(figures(s3, bodies, r)) for r in range(ROUNDS)]
        finally:
            s3.stop()
    print(f"\n{total_mib} MiB in {PART_MIB} MiB parts, {IN_FLIGHT} in flight, on SeaweedFS\n")
    print("| path | parts in, s | completion, s |")
    print("|---|---:|---:|")
    for name in rounds[0]:
        parts_in = " / ".join(f"{r[name][0]:.2f}" for r in rounds)
        completion = " / ".join(f"{r[name][1]:.2f}" for r in rounds)
        print(f"| {name} | {parts_in} | {completion} |")


if __name__ == "__main__":
    main()
