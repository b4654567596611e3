"""Body digests S3 clients declare: ``x-amz-checksum-*`` (header or trailer),
``Content-MD5`` and the hex ``x-amz-content-sha256``, and :class:`CheckedBody`, which
streams a plain (not ``aws-chunked``) body through them.

Checksums are base64 of the big-endian digest, as S3 sends and stores them. crc32c and
crc64nvme come from ``awscrt`` (compiled, what botocore itself uses): a pure-Python CRC
would crawl through GiB bodies.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import zlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Protocol

from awscrt import checksums as crt

from . import errors
from .sigv4 import Headers, Verified, header_fields

CHECKSUM_PREFIX = "x-amz-checksum-"


class Hasher(Protocol):
    def update(self, data: bytes, /) -> None: ...

    def digest(self) -> bytes: ...


class _Crc:
    """A running CRC behind the hashlib interface."""

    def __init__(self, step: Callable[[bytes, int], int], width: int) -> None:
        self._step = step
        self._width = width
        self._value = 0

    def update(self, data: bytes, /) -> None:
        self._value = self._step(data, self._value)

    def digest(self) -> bytes:
        return self._value.to_bytes(self._width, "big")


ALGORITHMS: dict[str, Callable[[], Hasher]] = {
    "crc32": lambda: _Crc(zlib.crc32, 4),
    "crc32c": lambda: _Crc(crt.crc32c, 4),
    "crc64nvme": lambda: _Crc(crt.crc64nvme, 8),
    "sha1": hashlib.sha1,
    "sha256": hashlib.sha256,
}


@dataclass(frozen=True)
class Checksum:
    """A declared checksum: ``algorithm`` a key of :data:`ALGORITHMS`, ``value`` the
    base64 digest as the client sent it (what S3 stores and returns)."""

    algorithm: str
    value: str

    @classmethod
    def parse(cls, name: str, value: str) -> Checksum:
        """From a header or trailer ``x-amz-checksum-<algorithm>: <base64>``; a value that
        is not the digest's length in base64 is ``InvalidRequest``, as S3 answers."""
        algorithm = name.removeprefix(CHECKSUM_PREFIX)
        if algorithm not in ALGORITHMS:
            raise errors.invalid_request(f"Unsupported checksum header: {name}")
        try:
            raw = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) != len(ALGORITHMS[algorithm]().digest()):
            raise errors.invalid_request(f"Value for {name} header is invalid.")
        return cls(algorithm, value)

    def check(self, hasher: Hasher) -> None:
        if base64.b64encode(hasher.digest()).decode() != self.value:
            raise errors.bad_digest(
                f"The {self.algorithm.upper()} you specified did not match the calculated checksum."
            )


def header_checksum(fields: dict[str, bytes]) -> Checksum | None:
    """The one ``x-amz-checksum-*`` header (``x-amz-checksum-type`` and
    ``-algorithm`` name, not carry, a checksum); S3 refuses several at once."""
    found = [
        Checksum.parse(name, value.decode("latin-1"))
        for name, value in fields.items()
        if name.startswith(CHECKSUM_PREFIX) and name not in _NOT_CHECKSUMS
    ]
    if len(found) > 1:
        raise errors.invalid_request("Expecting a single x-amz-checksum- header")
    return found[0] if found else None


_NOT_CHECKSUMS = frozenset({"x-amz-checksum-type", "x-amz-checksum-algorithm"})


def content_md5(fields: dict[str, bytes]) -> bytes | None:
    """The 16-byte digest in ``Content-MD5``; not base64 of 16 bytes is ``InvalidDigest``."""
    value = fields.get("content-md5")
    if value is None:
        return None
    try:
        digest = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise errors.invalid_digest() from None
    if len(digest) != 16:
        raise errors.invalid_digest()
    return digest


class Digests:
    """Every digest a body must match, fed as the body streams; :meth:`check` at the end.

    ``checksum`` may be set late: a trailer arrives after the data, but its algorithm is
    named up front in ``x-amz-trailer``, so :meth:`add` starts its hasher at the first byte.
    """

    def __init__(self, auth: Verified, fields: dict[str, bytes]) -> None:
        self.checksum = header_checksum(fields)
        self._md5 = content_md5(fields)
        self._expected_sha256 = auth.payload_sha256
        self._hashers: dict[str, Hasher] = {}
        if self._md5 is not None:
            self._hashers["md5"] = hashlib.md5()
        if self._expected_sha256 is not None:
            self._hashers["x-amz-content-sha256"] = hashlib.sha256()
        if self.checksum is not None:
            self.add(self.checksum.algorithm)

    def add(self, algorithm: str) -> None:
        """Compute ``algorithm`` (a key of :data:`ALGORITHMS`) over the body too."""
        self._hashers[algorithm] = ALGORITHMS[algorithm]()

    def update(self, data: bytes) -> None:
        for hasher in self._hashers.values():
            hasher.update(data)

    def check(self) -> None:
        """Raise the S3 error for the first digest the body did not match."""
        if self._expected_sha256 is not None:
            computed = self._hashers["x-amz-content-sha256"].digest().hex()
            if computed != self._expected_sha256:
                raise errors.content_sha256_mismatch(self._expected_sha256, computed)
        if self._md5 is not None and self._hashers["md5"].digest() != self._md5:
            raise errors.bad_digest("The Content-MD5 you specified did not match what we received.")
        if self.checksum is not None:
            self.checksum.check(self._hashers[self.checksum.algorithm])


class CheckedBody:
    """A plain body streamed through its declared digests.

    Iterate it to get the bytes as they arrive; the iteration ends by raising
    :class:`~.errors.S3Error` instead of finishing when a digest does not match, so a
    handler streaming into a blob store learns of it before it commits. ``checksum`` is
    the verified ``x-amz-checksum-*`` once iteration has finished.
    """

    def __init__(self, stream: AsyncIterator[bytes], auth: Verified, headers: Headers) -> None:
        if auth.payload.chunked:
            raise ValueError(f"{auth.payload} bodies are aws-chunked: use chunked.ChunkedBody")
        self._stream = stream
        self._digests = Digests(auth, header_fields(headers))

    @property
    def checksum(self) -> Checksum | None:
        return self._digests.checksum

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for data in self._stream:
            self._digests.update(data)
            yield data
        self._digests.check()
