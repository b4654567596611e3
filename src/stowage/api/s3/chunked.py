"""Decoding ``aws-chunked`` request bodies, the framing of the ``STREAMING-*`` payload
modes, while checking chunk signatures, the trailer signature and trailing checksum::

    hex-size[;chunk-signature=sig]\\r\\n data \\r\\n … 0[;chunk-signature=sig]\\r\\n
    [name:value\\r\\n … [x-amz-trailer-signature:sig\\r\\n]] \\r\\n

Every length the client controls is bounded: a size line or the trailer section longer
than its limit, a chunk larger than what remains of ``x-amz-decoded-content-length``, a
body that stops early or runs on past its final chunk are all errors. Data is streamed out
as it arrives, never buffered per chunk, so memory is one piece of the input stream plus a
size line, whatever the chunk sizes say.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator

from ...core.checksums import ALGORITHMS
from ...core.models import Checksum
from . import errors
from .checksums import CHECKSUM_PREFIX, CheckedBody, DigestedBody, Digests, parse_checksum
from .sigv4 import (
    EMPTY_SHA256,
    Headers,
    PayloadMode,
    Signing,
    Verified,
    header_fields,
    sign,
    signatures_equal,
)

# "hex-size;chunk-signature=" plus 64 hex digits is under 100 bytes.
MAX_SIZE_LINE = 256
# A checksum trailer and its signature need about 150 bytes.
MAX_TRAILER = 4096
TRAILER_SIGNATURE = "x-amz-trailer-signature"
_HEX = frozenset(b"0123456789abcdefABCDEF")


def _malformed(detail: str) -> errors.S3Error:
    return errors.invalid_request(f"Malformed aws-chunked body: {detail}")


class _Reader:
    """Lines and data out of a stream of arbitrarily cut pieces, holding at most one
    piece (plus the start of a line that straddles two)."""

    def __init__(self, stream: AsyncIterator[bytes]) -> None:
        self._pieces = aiter(stream)
        self._buffer = b""
        self._pos = 0

    async def _more(self) -> bool:
        try:
            piece = await anext(self._pieces)
        except StopAsyncIteration:
            return False
        self._buffer = self._buffer[self._pos :] + piece
        self._pos = 0
        return True

    async def _more_or_fail(self) -> None:
        if not await self._more():
            raise errors.incomplete_body("The request body terminated unexpectedly")

    async def line(self, limit: int, what: str) -> bytes:
        """The next line without its CRLF; longer than ``limit`` is an error."""
        while (end := self._buffer.find(b"\r\n", self._pos)) < 0:
            if len(self._buffer) - self._pos > limit + 1:  # + 1: a CR may end the buffer
                raise _malformed(f"{what} longer than {limit} bytes")
            await self._more_or_fail()
        if end - self._pos > limit:
            raise _malformed(f"{what} longer than {limit} bytes")
        line = self._buffer[self._pos : end]
        self._pos = end + 2
        return line

    async def crlf(self, after: str) -> None:
        while len(self._buffer) - self._pos < 2:
            await self._more_or_fail()
        if self._buffer[self._pos : self._pos + 2] != b"\r\n":
            raise _malformed(f"{after} not followed by CRLF")
        self._pos += 2

    async def data(self, most: int) -> bytes:
        """Up to ``most`` bytes, as soon as there are any."""
        while self._pos == len(self._buffer):
            await self._more_or_fail()
        end = min(self._pos + most, len(self._buffer))
        if self._pos == 0 and end == len(self._buffer):
            out = self._buffer  # the whole piece, not a copy
        else:
            out = self._buffer[self._pos : end]
        self._pos = end
        return out

    async def at_end(self) -> bool:
        """Whether the stream holds nothing more (empty pieces do not count)."""
        while self._pos == len(self._buffer):
            if not await self._more():
                return True
        return False


def _size_line(line: bytes, signed: bool) -> tuple[int, str | None]:
    size, _, extension = line.partition(b";")
    if not size or len(size) > 16 or not _HEX.issuperset(size):
        raise _malformed("bad chunk size")
    if not signed:
        return int(size, 16), None  # unsigned modes carry no extensions we use
    name, _, signature = extension.partition(b"=")
    if name != b"chunk-signature" or not signature:
        raise _malformed("chunk without chunk-signature")
    return int(size, 16), signature.decode("latin-1")


def _trailer_algorithm(auth: Verified, header_checksum: Checksum | None) -> str | None:
    """The checksum algorithm ``x-amz-trailer`` declares. S3 trailers carry exactly one
    ``x-amz-checksum-*``; with a checksum header as well there would be two."""
    if not auth.payload.trailer:
        return None
    names = auth.trailers
    if len(names) != 1 or not names[0].startswith(CHECKSUM_PREFIX):
        raise errors.invalid_request("The x-amz-trailer header must name one x-amz-checksum-*")
    algorithm = names[0].removeprefix(CHECKSUM_PREFIX)
    if algorithm not in ALGORITHMS:
        raise errors.invalid_request(f"Unsupported checksum header: {names[0]}")
    if header_checksum is not None:
        raise errors.invalid_request("Expecting a single x-amz-checksum- header")
    return algorithm


class ChunkedBody(DigestedBody):
    """The decoded payload of an ``aws-chunked`` request body.

    Iterate it for the payload bytes. A bad chunk signature raises before any byte of the
    next chunk is yielded, but bytes of the bad chunk may already have been, so nothing
    read is trustworthy until iteration finishes normally; it raises
    :class:`~.errors.S3Error` instead when anything failed (signature, framing, length,
    trailer, checksum, ``Content-MD5``), so a handler streaming into a blob store can
    abandon the write. ``checksum`` is then the verified checksum (trailer or header),
    or the one computed of ``algorithm``, to store with the object (as
    :class:`~.checksums.CheckedBody`'s).
    """

    def __init__(
        self,
        stream: AsyncIterator[bytes],
        auth: Verified,
        headers: Headers,
        default: str | None = None,
        deferred: bool = False,
        *,
        max_size_line: int = MAX_SIZE_LINE,
        max_trailer: int = MAX_TRAILER,
    ) -> None:
        if not auth.payload.chunked:
            raise ValueError(f"{auth.payload} bodies are not aws-chunked: use CheckedBody")
        self._reader = _Reader(stream)
        self._auth = auth
        self._digests = Digests(auth, header_fields(headers), default, deferred)
        algorithm = _trailer_algorithm(auth, self._digests.checksum)
        if algorithm is not None:
            self._digests.add(algorithm)
        self._max_size_line = max_size_line
        self._max_trailer = max_trailer

    async def __aiter__(self) -> AsyncIterator[bytes]:
        signing = self._auth.signing
        signed = self._auth.payload.signed_chunks
        remaining = self._auth.decoded_length
        previous = signing.seed
        while True:
            line = await self._reader.line(self._max_size_line, "chunk size line")
            size, signature = _size_line(line, signed)
            if remaining is not None:
                if size > remaining:
                    raise _length_mismatch()
                remaining -= size
            chunk_hash = hashlib.sha256()
            left = size
            while left:
                data = await self._reader.data(left)
                left -= len(data)
                chunk_hash.update(data)
                self._digests.update(data)
                yield data
            if signature is not None:
                previous = _check_chunk(signing, previous, chunk_hash.hexdigest(), signature)
            if size == 0:
                break
            await self._reader.crlf("chunk data")
        trailers = await self._trailers()
        if not await self._reader.at_end():
            raise _malformed("data after the final chunk")
        if remaining:
            raise _length_mismatch()
        # Present exactly in the signed-trailer mode: _trailers checked the names.
        trailer_signature = trailers.pop(TRAILER_SIGNATURE, None)
        if trailer_signature is not None:
            _check_trailer_signature(signing, previous, trailers, trailer_signature)
        if trailers:
            ((name, value),) = trailers.items()
            self._digests.checksum = parse_checksum(name, value)
        self._digests.check()

    async def _trailers(self) -> dict[str, str]:
        """The trailer lines up to the blank line that ends the body, as declared."""
        trailers: dict[str, str] = {}
        budget = self._max_trailer
        while line := await self._reader.line(budget, "trailer"):
            budget = max(budget - len(line) - 2, 0)  # 0 still admits the closing blank line
            name, colon, value = line.decode("latin-1").partition(":")
            if not colon:
                raise errors.malformed_trailer()
            trailers[name.strip().lower()] = value.strip()
        declared = set(self._auth.trailers)
        if self._auth.payload is PayloadMode.STREAMING_SIGNED_TRAILER:
            declared.add(TRAILER_SIGNATURE)
        if set(trailers) != declared:
            raise errors.malformed_trailer()
        return trailers


def _length_mismatch() -> errors.S3Error:
    return errors.incomplete_body(
        "The decoded length of the aws-chunked body does not match x-amz-decoded-content-length"
    )


def _check_chunk(signing: Signing, previous: str, data_sha256: str, signature: str) -> str:
    """A chunk's signature chains from the previous one, so chunks cannot be reordered,
    dropped or replayed from another upload."""
    string_to_sign = (
        f"AWS4-HMAC-SHA256-PAYLOAD\n{signing.timestamp}\n{signing.scope}\n{previous}\n"
        f"{EMPTY_SHA256}\n{data_sha256}"
    )
    _check(signing, string_to_sign, signature)
    return signature


def _check_trailer_signature(
    signing: Signing, previous: str, trailers: dict[str, str], signature: str
) -> None:
    """The trailer's string to sign hashes each trailer as ``name:value\\n`` (the
    signature line excluded) and chains from the final, empty chunk's signature."""
    canonical = "".join(f"{name}:{value}\n" for name, value in sorted(trailers.items()))
    string_to_sign = (
        f"AWS4-HMAC-SHA256-TRAILER\n{signing.timestamp}\n{signing.scope}\n{previous}\n"
        f"{hashlib.sha256(canonical.encode('latin-1')).hexdigest()}"
    )
    _check(signing, string_to_sign, signature)


def _check(signing: Signing, string_to_sign: str, signature: str) -> None:
    if not signatures_equal(sign(signing.key, string_to_sign), signature):
        raise errors.signature_does_not_match(signing.access_key_id, string_to_sign)


def request_body(
    stream: AsyncIterator[bytes],
    auth: Verified,
    headers: Headers,
    default: str | None = None,
    deferred: bool = False,
) -> ChunkedBody | CheckedBody:
    """The payload of a verified request, whatever its payload mode, checked as it
    streams (see :class:`ChunkedBody` and :class:`~.checksums.CheckedBody`); one that
    names no checksum gets one of ``default``, if given. ``deferred``: its md5 and
    sha256 are left to the write that stores it (``claimed``)."""
    if auth.payload.chunked:
        return ChunkedBody(stream, auth, headers, default, deferred)
    return CheckedBody(stream, auth, headers, default, deferred)
