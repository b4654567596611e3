"""Blobs in any S3-compatible store, through obstore (Rust, async).

obstore beat aiobotocore on SeaweedFS: 2.8x the 4 KiB PUTs and 2.9x the GETs per second
and about the same 256 MiB PUT throughput; aiobotocore was faster on 256 MiB GETs, which
in this mode mostly go straight to the bucket (``python -m benchmarks.s3_clients``).

Writes stream: request chunks gather into 1 MiB batches, a worker thread hashes each batch
(md5, sha256) while obstore uploads earlier ones as multipart parts. A failed or oversized
upload is aborted, so nothing appears under the key; so is one whose content is stored
already (deduplication: ``put``'s ``known``). Presigned URLs point at the store
itself, so Runloop uploads and downloads never pass through stowage. S3's multipart
uploads go into the store's own (``parts``, ``s3_parts.py``) when its keys are set.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Literal

import obstore
from obstore.store import S3Store

from ..core.models import BlobWritten
from ..core.ports import KnownBlob
from .digest import stored_twin
from .s3_parts import S3Parts
from .s3_stream import Hasher, hashed, nothing, outage, reachable

PART_BYTES = 8 * 1024 * 1024
READ_BYTES = 1024 * 1024


class _Stored(Exception):
    """Ends a write's stream early: the store holds these bytes already."""


class S3BlobStore:
    def __init__(
        self,
        bucket: str,
        endpoint: str | None,
        region: str,
        access_key_id: str | None,
        secret_access_key: str | None,
        path_style: bool,
        prefix: str = "",
        request_timeout_s: float = 30,
    ) -> None:
        self._prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        options: dict[str, object] = {
            "allow_http": bool(endpoint and endpoint.startswith("http://")),
            "connect_timeout": timedelta(seconds=5),
            "timeout": timedelta(seconds=request_timeout_s),
        }
        self._store = S3Store(
            bucket,
            endpoint=endpoint,
            region=region,
            access_key_id=access_key_id,
            secret_access_key=secret_access_key,
            virtual_hosted_style_request=not path_style,
            client_options=options,  # type: ignore[arg-type]
            # Fail within seconds when the store is down: callers get a 503, not a hang.
            retry_config={"max_retries": 2, "retry_timeout": timedelta(seconds=10)},
        )
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="s3-hash")
        self.parts: S3Parts | None = None
        if access_key_id and secret_access_key:
            self.parts = S3Parts(
                endpoint,
                bucket,
                region,
                access_key_id,
                secret_access_key,
                path_style,
                self.path,
                self.size,
                self._pool,
                self._prefix,
                request_timeout_s,
            )

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    def path(self, key: str) -> str:
        return f"{self._prefix}blobs/{key[:2]}/{key}"

    def presign(self, method: Literal["GET", "PUT"], key: str, expires_s: int) -> str:
        return obstore.sign(self._store, method, self.path(key), timedelta(seconds=expires_s))

    async def copy(self, source: str, target: str) -> None:
        with reachable():
            await obstore.copy_async(self._store, self.path(source), self.path(target))

    async def digest(self, key: str) -> BlobWritten:
        """Hash a stored blob by reading it back: the cost of uploads that bypass stowage."""
        hasher = Hasher()
        with reachable():
            result = await obstore.get_async(self._store, self.path(key))
            async for chunk in result.stream(READ_BYTES):
                await asyncio.wrap_future(self._pool.submit(hasher.update, bytes(chunk)))
        return hasher.result()

    async def inventory(self) -> dict[str, float]:
        """Every blob key under this store's prefix, with its last-modified time."""
        found: dict[str, float] = {}
        with reachable():
            async for batch in obstore.list(self._store, f"{self._prefix}blobs/"):
                for meta in batch:
                    found[meta["path"].rsplit("/", 1)[-1]] = meta["last_modified"].timestamp()
        return found

    async def put(
        self,
        key: str,
        chunks: AsyncIterator[bytes],
        max_bytes: int | None,
        known: KnownBlob | None = None,
    ) -> BlobWritten:
        """Stream the body to the store, hashing it on the way. When ``known`` names a
        stored blob with the same content, the stream fails just before its end, so the
        store never completes the upload (obstore aborts a multipart one; a small body
        was never sent), and the result is that blob (``BlobWritten.shared``)."""
        hasher = Hasher()
        twin: BlobWritten | None = None

        async def unless_stored() -> AsyncIterator[bytes]:
            nonlocal twin
            async for batch in hashed(chunks, hasher, max_bytes, self._pool):
                yield batch
            try:
                twin = await stored_twin(known, hasher.result())
            except BaseException as exc:  # the metadata store's failure, not S3's
                hasher.failure = exc
                raise
            if twin is not None:
                hasher.failure = _Stored()
                raise hasher.failure

        try:
            await obstore.put_async(
                self._store,
                self.path(key),
                unless_stored(),
                chunk_size=PART_BYTES,
                max_concurrency=4,
            )
        except Exception as exc:
            if twin is not None:
                return twin
            if hasher.failure is not None:  # the client's stream broke or was too large
                raise hasher.failure from None
            raise outage(exc) from exc
        return hasher.result()

    async def read(self, key: str, start: int, length: int) -> AsyncIterator[bytes]:
        """Open the range (so an outage fails before any response starts), then stream."""
        if length == 0:
            return nothing()
        with reachable():
            result = await obstore.get_async(
                self._store, self.path(key), options={"range": (start, start + length)}
            )

        async def stream() -> AsyncIterator[bytes]:
            async for chunk in result.stream(READ_BYTES):
                yield bytes(chunk)

        return stream()

    async def read_bytes(self, key: str, start: int, length: int) -> bytes:
        if length == 0:
            return b""
        with reachable():
            found = await obstore.get_range_async(
                self._store, self.path(key), start=start, length=length
            )
        return bytes(found)

    async def delete(self, key: str) -> None:
        with reachable():
            await obstore.delete_async(self._store, self.path(key))

    async def ping(self) -> None:
        """Raise Unavailable unless the bucket answers (a missing probe key is an answer)."""
        await self.size("readiness-probe")

    async def size(self, key: str) -> int | None:
        try:
            with reachable():
                meta = await obstore.head_async(self._store, self.path(key))
        except FileNotFoundError:  # obstore maps 404 to the builtin
            return None
        return meta["size"]
