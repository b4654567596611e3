"""obstore against aiobotocore on a SeaweedFS started for the run: the measurement behind
stowage's choice of S3 client (docs/architecture.md). ``python -m benchmarks.s3_clients``."""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import obstore
from aiobotocore.session import get_session
from obstore.store import S3Store

from stowage.seaweed import SeaweedFS

MIB = 1024 * 1024
BIG_MIB = 256
SMALL = 1000
CONCURRENCY = 32
BUCKET = "clients"


async def chunks(block: bytes, count: int) -> AsyncIterator[bytes]:
    for _ in range(count):
        yield block


async def rate(count: int, op: Callable[[int], Awaitable[None]]) -> float:
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(i: int) -> None:
        async with gate:
            await op(i)

    start = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(count)))
    return count / (time.perf_counter() - start)


def aiobotocore_client(s3: SeaweedFS) -> Any:
    """An aiobotocore S3 client of the SeaweedFS, to enter with ``async with``."""
    return get_session().create_client(
        "s3",
        endpoint_url=s3.endpoint,
        aws_access_key_id=s3.access_key,
        aws_secret_access_key=s3.secret_key,
        region_name="us-east-1",
    )


async def aiobotocore_figures(s3: SeaweedFS, block: bytes, small: bytes) -> dict[str, float]:
    async with aiobotocore_client(s3) as c:
        start = time.perf_counter()
        upload = await c.create_multipart_upload(Bucket=BUCKET, Key="big-boto")
        parts, buf = [], bytearray()
        async for chunk in chunks(block, BIG_MIB):
            buf += chunk
            if len(buf) >= 16 * MIB:
                n = len(parts) + 1
                r = await c.upload_part(
                    Bucket=BUCKET,
                    Key="big-boto",
                    UploadId=upload["UploadId"],
                    PartNumber=n,
                    Body=bytes(buf),
                )
                parts.append({"ETag": r["ETag"], "PartNumber": n})
                buf = bytearray()
        await c.complete_multipart_upload(
            Bucket=BUCKET,
            Key="big-boto",
            UploadId=upload["UploadId"],
            MultipartUpload={"Parts": parts},
        )
        put = BIG_MIB / (time.perf_counter() - start)
        start = time.perf_counter()
        body = (await c.get_object(Bucket=BUCKET, Key="big-boto"))["Body"]
        got = sum([len(part) async for part in body.iter_chunks(MIB)])
        get = got / MIB / (time.perf_counter() - start)

        async def small_put(i: int) -> None:
            await c.put_object(Bucket=BUCKET, Key=f"b/{i}", Body=small)

        async def small_get(i: int) -> None:
            await (await c.get_object(Bucket=BUCKET, Key=f"b/{i}"))["Body"].read()

        return {
            "big_put_mib_s": put,
            "big_get_mib_s": get,
            "small_put_s": await rate(SMALL, small_put),
            "small_get_s": await rate(SMALL, small_get),
        }


async def obstore_figures(s3: SeaweedFS, block: bytes, small: bytes) -> dict[str, float]:
    store = S3Store(
        BUCKET,
        endpoint=s3.endpoint,
        access_key_id=s3.access_key,
        secret_access_key=s3.secret_key,
        region="us-east-1",
        client_options={"allow_http": True},
        virtual_hosted_style_request=False,
    )
    start = time.perf_counter()
    await obstore.put_async(store, "big-obs", chunks(block, BIG_MIB), chunk_size=16 * MIB)
    put = BIG_MIB / (time.perf_counter() - start)
    start = time.perf_counter()
    result = await obstore.get_async(store, "big-obs")
    got = sum([len(part) async for part in result.stream(MIB)])
    get = got / MIB / (time.perf_counter() - start)

    async def small_put(i: int) -> None:
        await obstore.put_async(store, f"o/{i}", small)

    async def small_get(i: int) -> None:
        await (await obstore.get_async(store, f"o/{i}")).bytes_async()

    return {
        "big_put_mib_s": put,
        "big_get_mib_s": get,
        "small_put_s": await rate(SMALL, small_put),
        "small_get_s": await rate(SMALL, small_get),
    }


def main() -> None:
    block, small = os.urandom(MIB), os.urandom(4096)
    with tempfile.TemporaryDirectory(prefix="s3-clients-") as work:
        s3 = SeaweedFS.start(Path(work), buckets=(BUCKET,))
        try:
            rows = {
                "obstore": asyncio.run(obstore_figures(s3, block, small)),
                "aiobotocore": asyncio.run(aiobotocore_figures(s3, block, small)),
            }
        finally:
            s3.stop()
    print(f"\nS3 clients on SeaweedFS ({CONCURRENCY} in flight for 4 KiB)\n")
    print(f"| client | 4 KiB PUT/s | 4 KiB GET/s | {BIG_MIB} MiB PUT MiB/s | GET MiB/s |")
    print("|---|---:|---:|---:|---:|")
    for name, f in rows.items():
        print(
            f"| {name} | {f['small_put_s']:.0f} | {f['small_get_s']:.0f} "
            f"| {f['big_put_mib_s']:.0f} | {f['big_get_mib_s']:.0f} |"
        )


if __name__ == "__main__":
    main()
