"""The S3 blob store's own multipart uploads (``ports.BlobParts``), so that an upload in
parts goes straight into one and completing it costs the store a metadata change, not a
copy of every byte through stowage (``python -m benchmarks.s3_multipart``).

obstore has no call for these (its writes run multipart uploads of their own that it
completes itself), so they are five plain HTTP requests, signed here with SigV4 and
``UNSIGNED-PAYLOAD`` so a part streams as it arrives. That needs the store's keys in the
settings; without them ``S3BlobStore.parts`` is None and parts are blobs of their own.
"""

from __future__ import annotations

import contextlib
import hashlib
import ssl
import xml.etree.ElementTree as ElementTree
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from concurrent.futures import Executor
from datetime import UTC, datetime
from urllib.parse import quote, urlsplit
from xml.sax.saxutils import escape

import httpx

from ..aws_signing import SERVICE, TERMINATOR, sign, signing_key
from ..core.errors import Invalid
from .s3_stream import Hasher, hashed, outage, reachable

UNSIGNED = "UNSIGNED-PAYLOAD"
# The store's refusals that the parts a client sent caused (a part replaced meanwhile,
# one too large for the store): the client's to hear. Any other is the store failing us.
CLIENT_FAULTS = {"InvalidPart", "InvalidPartOrder", "EntityTooSmall", "EntityTooLarge"}
UNRESERVED = "-_.~"


def _encoded(text: str, safe: str = UNRESERVED) -> str:
    return quote(text, safe=safe)


class S3Parts:
    def __init__(
        self,
        endpoint: str | None,
        bucket: str,
        region: str,
        access_key_id: str,
        secret_access_key: str,
        path_style: bool,
        path: Callable[[str], str],
        size: Callable[[str], Awaitable[int | None]],
        pool: Executor,
        prefix: str,
        request_timeout_s: float,
    ) -> None:
        base = urlsplit(endpoint or f"https://s3.{region}.amazonaws.com")
        self._scheme = base.scheme
        self._host = base.netloc if path_style else f"{bucket}.{base.netloc}"
        self._root = f"/{bucket}" if path_style else ""
        self._region = region
        self._key_id = access_key_id
        self._secret = secret_access_key
        self._path = path
        self._size = size
        self._pool = pool
        self._prefix = prefix
        self._timeout = httpx.Timeout(request_timeout_s, connect=5)
        self._tls = ssl.create_default_context()  # made once: loading the CAs takes a while

    async def start(self, key: str) -> str:
        return _text(_parsed(await self._call("POST", key, {"uploads": ""})), "UploadId")

    async def put(
        self, key: str, upload_id: str, number: int, chunks: AsyncIterator[bytes], size: int
    ) -> str:
        hasher = _Md5()
        body = _exactly(hashed(chunks, hasher, size, self._pool), size, hasher)
        query = {"partNumber": str(number), "uploadId": upload_id}
        try:
            await self._call("PUT", key, query, body, {"content-length": str(size)})
        except Exception:
            if hasher.failure is not None:  # the client's stream broke, or was the wrong size
                raise hasher.failure from None
            raise
        return hasher.md5.hexdigest()

    async def complete(self, key: str, upload_id: str, parts: Sequence[tuple[int, str]]) -> int:
        """Complete, then ask the blob's size (S3's answer does not say it)."""
        listed = "".join(
            f'<Part><PartNumber>{n}</PartNumber><ETag>"{escape(md5)}"</ETag></Part>'
            for n, md5 in parts
        )
        xml = f"<CompleteMultipartUpload>{listed}</CompleteMultipartUpload>".encode()
        # S3 may answer 200 and then an error, having kept the connection alive meanwhile.
        _refused(_parsed(await self._call("POST", key, {"uploadId": upload_id}, xml)))
        size = await self._size(key)
        if size is None:
            raise FileNotFoundError(key)  # completed, then deleted by whoever ended the upload
        return size

    async def abort(self, key: str, upload_id: str) -> None:
        with contextlib.suppress(FileNotFoundError):  # gone already
            await self._call("DELETE", key, {"uploadId": upload_id})

    async def in_progress(self) -> dict[str, tuple[str, float]]:
        found: dict[str, tuple[str, float]] = {}
        marker = {"key-marker": "", "upload-id-marker": ""}
        while True:
            query = {"uploads": "", "prefix": f"{self._prefix}blobs/", **marker}
            listed = _parsed(await self._call("GET", "", query))
            for upload in listed.iterfind("{*}Upload"):
                started = datetime.fromisoformat(_text(upload, "Initiated").replace("Z", "+00:00"))
                key = _text(upload, "Key").rsplit("/", 1)[-1]
                found[_text(upload, "UploadId")] = (key, started.timestamp())
            if listed.findtext("{*}IsTruncated") != "true":
                return found
            marker = {
                "key-marker": listed.findtext("{*}NextKeyMarker") or "",
                "upload-id-marker": listed.findtext("{*}NextUploadIdMarker") or "",
            }

    async def _call(
        self,
        method: str,
        key: str,
        query: dict[str, str],
        body: bytes | AsyncIterator[bytes] = b"",
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        """One signed request; FileNotFoundError for NoSuchUpload, Invalid for a refusal
        the client's parts caused, Unavailable for any other failure."""
        path = f"{self._root}/{_encoded(self._path(key), UNRESERVED + '/') if key else ''}"
        canonical_query = "&".join(f"{_encoded(n)}={_encoded(v)}" for n, v in sorted(query.items()))
        signed = {**self._signature(method, path, canonical_query), **(headers or {})}
        url = f"{self._scheme}://{self._host}{path}?{canonical_query}"
        # A connection a call: these are few and carry parts of 5 MiB or more, and a client
        # kept would be tied to the event loop it was made on.
        with reachable():
            async with httpx.AsyncClient(timeout=self._timeout, verify=self._tls) as client:
                answer = await client.request(method, url, content=body, headers=signed)
        if answer.status_code < 300:
            return answer
        with contextlib.suppress(ElementTree.ParseError):
            _refused(ElementTree.fromstring(answer.content))
        raise outage(RuntimeError(f"{answer.status_code} from the blob store"))

    def _signature(self, method: str, path: str, canonical_query: str) -> dict[str, str]:
        now = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        headers = {"host": self._host, "x-amz-content-sha256": UNSIGNED, "x-amz-date": now}
        names = ";".join(headers)
        canonical = "\n".join(
            [
                method,
                path,
                canonical_query,
                *(f"{n}:{v}" for n, v in headers.items()),
                "",
                names,
                UNSIGNED,
            ]
        )
        scope = f"{now[:8]}/{self._region}/{SERVICE}/{TERMINATOR}"
        digest = hashlib.sha256(canonical.encode()).hexdigest()
        signature = sign(
            signing_key(self._secret, now[:8], self._region),
            f"AWS4-HMAC-SHA256\n{now}\n{scope}\n{digest}",
        )
        headers["authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={self._key_id}/{scope}, "
            f"SignedHeaders={names}, Signature={signature}"
        )
        del headers["host"]  # httpx sends it
        return headers


class _Md5(Hasher):
    """The md5 alone, a part's ETag: the object's sha256 is had by reading it back."""

    def update_but_md5(self, data: bytes | bytearray) -> None:
        pass


async def _exactly(chunks: AsyncIterator[bytes], size: int, hasher: Hasher) -> AsyncIterator[bytes]:
    """The stream, failing (as the incoming stream's fault) if it ends short of ``size``
    (``hashed`` refuses more)."""
    sent = 0
    async for chunk in chunks:
        sent += len(chunk)
        yield chunk
    if sent != size:
        hasher.failure = Invalid(f"the part has {sent} bytes, not the {size} declared")
        raise hasher.failure


def _parsed(answer: httpx.Response) -> ElementTree.Element:
    try:
        return ElementTree.fromstring(answer.content)
    except ElementTree.ParseError as exc:
        raise outage(exc) from exc


def _text(element: ElementTree.Element, name: str) -> str:
    found = element.findtext(f"{{*}}{name}")
    if found is None:
        raise outage(ValueError(f"no {name} in the blob store's answer"))
    return found


def _refused(answer: ElementTree.Element) -> None:
    """Raise what an ``<Error>`` body says: a missing upload as FileNotFoundError, a fault
    of the parts the client sent as Invalid, anything else (a missing bucket, bad keys) as
    the store failing us."""
    if answer.tag.rsplit("}", 1)[-1] != "Error":
        return
    code, message = answer.findtext("Code") or "", answer.findtext("Message") or ""
    if code == "NoSuchUpload":
        raise FileNotFoundError(message)
    if code in CLIENT_FAULTS:
        raise Invalid(f"{code}: {message}")
    raise outage(RuntimeError(code))
