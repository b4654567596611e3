"""Body digests S3 clients declare: ``x-amz-checksum-*`` (header or trailer),
``Content-MD5`` and the hex ``x-amz-content-sha256``, and :class:`CheckedBody`, which
streams a plain (not ``aws-chunked``) body through them.

Checksums are base64 of the big-endian digest, as S3 sends and stores them; the
algorithms are the core's (``core.checksums``), which keeps them with the object. A
request may also name an algorithm without a value (``x-amz-sdk-checksum-algorithm``):
then the checksum is computed here, as S3 does, and kept the same.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import AsyncIterator

from ...core.checksums import ALGORITHMS, Hasher, b64, combinable
from ...core.models import Checksum, Claimed
from . import errors
from .sigv4 import Headers, Verified, header_fields

CHECKSUM_PREFIX = "x-amz-checksum-"
# Where a request names the algorithm of a checksum it wants without giving its value:
# PutObject and UploadPart say it one way, CreateMultipartUpload and CopyObject the other.
ALGORITHM_HEADERS = ("x-amz-sdk-checksum-algorithm", "x-amz-checksum-algorithm")


def parse_checksum(name: str, value: str) -> Checksum:
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
    return Checksum(algorithm, value)


def named_algorithm(fields: dict[str, bytes]) -> str | None:
    """The algorithm a request names (``ALGORITHM_HEADERS``), in lowercase as the
    ``x-amz-checksum-*`` names have it; one S3 does not know is ``InvalidRequest``."""
    raw = next((fields[h] for h in ALGORITHM_HEADERS if h in fields), None)
    if raw is None:
        return None
    algorithm = raw.decode("latin-1").strip().lower()
    if algorithm not in ALGORITHMS:
        raise errors.invalid_request("Checksum algorithm provided is unsupported.")
    return algorithm


FULL_OBJECT_ONLY = "crc64nvme"


def upload_checksum(fields: dict[str, bytes]) -> tuple[str | None, bool]:
    """The algorithm of the checksum a CreateMultipartUpload asks for, and whether it is
    COMPOSITE (a checksum of the parts' checksums) rather than FULL_OBJECT, by S3's
    rules: CRC-64/NVME is only FULL_OBJECT, the SHAs only COMPOSITE, and the CRC-32s
    COMPOSITE unless ``x-amz-checksum-type`` says otherwise."""
    algorithm = named_algorithm(fields)
    raw = fields.get("x-amz-checksum-type")
    if algorithm is None:
        if raw is not None:
            raise errors.invalid_request(
                "The x-amz-checksum-type header can only be used "
                "with the x-amz-checksum-algorithm header."
            )
        return None, True
    kind = raw.decode("latin-1").upper() if raw is not None else None
    if kind not in (None, "COMPOSITE", "FULL_OBJECT"):
        raise errors.invalid_request("Value for x-amz-checksum-type header is invalid.")
    composite = kind == "COMPOSITE" if kind else algorithm != FULL_OBJECT_ONLY
    if algorithm == FULL_OBJECT_ONLY if composite else not combinable(algorithm):
        raise errors.invalid_request(
            f"The {kind} checksum type cannot be used with the {algorithm} checksum algorithm."
        )
    return algorithm, composite


def header_checksum(fields: dict[str, bytes]) -> Checksum | None:
    """The one ``x-amz-checksum-*`` header (``x-amz-checksum-type`` and
    ``-algorithm`` name, not carry, a checksum); S3 refuses several at once."""
    found = [
        parse_checksum(name, value.decode("latin-1"))
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
    ``algorithm`` is that of the checksum the body will have once checked: the one sent
    (header or trailer), else the one the request names, else ``default``.
    """

    def __init__(
        self,
        auth: Verified,
        fields: dict[str, bytes],
        default: str | None = None,
        deferred: bool = False,
    ) -> None:
        self.checksum = header_checksum(fields)
        self._named = named_algorithm(fields)
        md5, sha256 = content_md5(fields), auth.payload_sha256
        # Deferred: the md5 and sha256 are checked by whoever stores the body, on the
        # digests its write computes anyway (``claimed``), so the body is hashed once.
        self.claimed = Claimed(md5.hex() if md5 else None, sha256) if deferred else None
        self._md5 = None if deferred else md5
        self._expected_sha256 = None if deferred else sha256
        self._hashers: dict[str, Hasher] = {}
        if self._md5 is not None:
            self._hashers["md5"] = hashlib.md5()
        if self._expected_sha256 is not None:
            self._hashers["x-amz-content-sha256"] = hashlib.sha256()
        self.algorithm: str | None = None
        algorithm = self.checksum.algorithm if self.checksum else self._named or default
        if algorithm is not None:
            self.add(algorithm)

    def add(self, algorithm: str) -> None:
        """The body's checksum is of ``algorithm`` (a key of :data:`ALGORITHMS`): compute
        it over the body too. Another than the request names is ``InvalidRequest``."""
        if self._named is not None and algorithm != self._named:
            raise errors.invalid_request(
                "Value for x-amz-sdk-checksum-algorithm header is invalid."
            )
        self.algorithm = algorithm
        self._hashers[algorithm] = ALGORITHMS[algorithm]()

    def update(self, data: bytes) -> None:
        for hasher in self._hashers.values():
            hasher.update(data)

    def check(self) -> None:
        """Raise the S3 error for the first digest the body did not match; then the
        checksum the body has is ``checksum``, computed if none was sent."""
        if self._expected_sha256 is not None:
            computed = self._hashers["x-amz-content-sha256"].digest().hex()
            if computed != self._expected_sha256:
                raise errors.content_sha256_mismatch(self._expected_sha256, computed)
        if self._md5 is not None and self._hashers["md5"].digest() != self._md5:
            raise errors.bad_digest("The Content-MD5 you specified did not match what we received.")
        if self.algorithm is None:
            return
        computed = b64(self._hashers[self.algorithm].digest())
        if self.checksum is None:
            self.checksum = Checksum(self.algorithm, computed)
        elif computed != self.checksum.value:
            raise errors.bad_digest(
                f"The {self.algorithm.upper()} you specified did not match the calculated checksum."
            )


class DigestedBody:
    """A body checked as it streams: the algorithm of the checksum it will have, known
    before it is read, and that checksum once it has been (see :class:`Digests`)."""

    _digests: Digests

    @property
    def checksum(self) -> Checksum | None:
        return self._digests.checksum

    @property
    def algorithm(self) -> str | None:
        return self._digests.algorithm

    @property
    def claimed(self) -> Claimed | None:
        """The declared md5 and sha256 left for the store's write to check, if deferred."""
        return self._digests.claimed


class CheckedBody(DigestedBody):
    """A plain body streamed through its declared digests.

    Iterate it to get the bytes as they arrive; the iteration ends by raising
    :class:`~.errors.S3Error` instead of finishing when a digest does not match, so a
    handler streaming into a blob store learns of it before it commits. ``checksum`` is
    the verified ``x-amz-checksum-*`` once iteration has finished, or the one computed of
    ``algorithm`` (see :class:`Digests`, which ``default`` is given to).
    """

    def __init__(
        self,
        stream: AsyncIterator[bytes],
        auth: Verified,
        headers: Headers,
        default: str | None = None,
        deferred: bool = False,
    ) -> None:
        if auth.payload.chunked:
            raise ValueError(f"{auth.payload} bodies are aws-chunked: use chunked.ChunkedBody")
        self._stream = stream
        self._digests = Digests(auth, header_fields(headers), default, deferred)

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for data in self._stream:
            self._digests.update(data)
            yield data
        self._digests.check()
