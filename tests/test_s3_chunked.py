"""aws-chunked bodies (api/s3/chunked.py) and plain-body digests (api/s3/checksums.py):
bodies framed by botocore or signed per AWS's published chunked-upload example, cut at
every boundary, tampered with, and hostile."""

from __future__ import annotations

import base64
import hashlib
import itertools
import random
import tracemalloc
from collections.abc import AsyncIterator, Iterable
from dataclasses import replace

import pytest
from botocore.httpchecksum import _CHECKSUM_CLS

from stowage.api.s3.checksums import CheckedBody, Checksum
from stowage.api.s3.chunked import ChunkedBody, request_body
from stowage.api.s3.errors import S3Error
from stowage.api.s3.sigv4 import PayloadMode, Verified

from .aio import run
from .s3sign import Raw, aws_example, sign, signed_chunks

URL = "http://s3.example.test/bucket/key"
ALGORITHMS = ["crc32", "crc32c", "crc64nvme", "sha1", "sha256"]


async def pieces(parts: Iterable[bytes]) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


def cut(data: bytes, at: Iterable[int]) -> list[bytes]:
    bounds = [0, *sorted(at), len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


def verified(raw: Raw) -> Verified:
    result = run(raw.verify())
    assert result is not None
    return result


async def _collect(body: ChunkedBody | CheckedBody) -> bytes:
    return b"".join([data async for data in body])


Parts = Iterable[bytes] | AsyncIterator[bytes] | None


def stream(raw: Raw, parts: Parts) -> AsyncIterator[bytes]:
    """The wire body: ``raw.body`` in one piece unless ``parts`` are given."""
    if isinstance(parts, AsyncIterator):
        return parts
    return pieces([raw.body] if parts is None else parts)


def decode(raw: Raw, parts: Parts = None, **limits: int) -> tuple[bytes, Checksum | None]:
    body = ChunkedBody(stream(raw, parts), verified(raw), raw.headers, **limits)
    return run(_collect(body)), body.checksum


async def _drain(body: ChunkedBody) -> None:
    async for _ in body:
        pass


def peak_memory_of_failing(raw: Raw, code: str, parts: AsyncIterator[bytes]) -> int:
    """Decode ``parts`` dropping the output, as a blob store would: the peak memory
    traced until it fails with ``code``."""
    tracemalloc.start()
    try:
        with pytest.raises(S3Error) as caught:
            run(_drain(ChunkedBody(parts, verified(raw), raw.headers)))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert caught.value.code == code, caught.value
    return peak


def fails(raw: Raw, code: str, parts: Parts = None, **limits: int) -> S3Error:
    with pytest.raises(S3Error) as caught:
        decode(raw, parts, **limits)
    assert caught.value.code == code, caught.value
    return caught.value


# AWS's "Signature Calculations for the Authorization Header: Transferring Payload in
# Multiple Chunks" example: its seed and chunk signatures are published.

AWS_CHUNKED = aws_example(
    "PUT",
    b"/examplebucket/chunkObject.txt",
    {
        "content-encoding": "aws-chunked",
        "content-length": "66824",
        "host": "s3.amazonaws.com",
        "x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
        "x-amz-date": "20130524T000000Z",
        "x-amz-decoded-content-length": "66560",
        "x-amz-storage-class": "REDUCED_REDUNDANCY",
    },
    "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9",
)
AWS_CHUNK_SIGNATURES = [
    "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
    "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
    "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9",
]


def test_aws_chunked_example() -> None:
    auth = verified(AWS_CHUNKED)
    assert auth.payload is PayloadMode.STREAMING_SIGNED
    wire = signed_chunks(b"a" * 66560, auth, 65536)
    assert len(wire) == 66824  # the example's Content-Length
    for signature in AWS_CHUNK_SIGNATURES:
        assert f"chunk-signature={signature}".encode() in wire
    data, checksum = decode(replace(AWS_CHUNKED, body=wire))
    assert data == b"a" * 66560 and checksum is None


def signed_raw(data: bytes, chunk_size: int, trailer: str | None = None, url: str = URL) -> Raw:
    headers = {"Content-Encoding": "aws-chunked", "X-Amz-Decoded-Content-Length": str(len(data))}
    mode = PayloadMode.STREAMING_SIGNED
    if trailer is not None:
        headers["X-Amz-Trailer"] = f"x-amz-checksum-{trailer}"
        mode = PayloadMode.STREAMING_SIGNED_TRAILER
    raw = sign("PUT", url, headers, streaming=mode.value)
    pair = None
    if trailer is not None:
        pair = (f"x-amz-checksum-{trailer}", _CHECKSUM_CLS[trailer]().handle(data))
    return replace(raw, body=signed_chunks(data, verified(raw), chunk_size, pair))


DATA = bytes(random.Random(7).randbytes(200_000))


def test_signed_chunks_with_botocore_seed() -> None:
    assert decode(signed_raw(DATA, 65536)) == (DATA, None)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_signed_trailer(algorithm: str) -> None:
    raw = signed_raw(DATA, 65536, algorithm)
    data, checksum = decode(raw)
    assert data == DATA
    assert checksum == Checksum(algorithm, _CHECKSUM_CLS[algorithm]().handle(DATA))


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_unsigned_trailer_from_botocore(algorithm: str) -> None:
    raw = sign("PUT", URL, {}, DATA, trailer=algorithm)
    data, checksum = decode(raw)
    assert data == DATA
    assert checksum is not None and checksum.algorithm == algorithm
    assert raw.body.endswith(f"x-amz-checksum-{algorithm}:{checksum.value}\r\n\r\n".encode())


def test_empty_bodies() -> None:
    assert decode(sign("PUT", URL, {}, b"", trailer="crc32"))[0] == b""
    assert decode(signed_raw(b"", 10))[0] == b""
    assert decode(signed_raw(b"", 10, "sha256"))[0] == b""


# Every cut of the wire decodes the same bytes.


@pytest.mark.parametrize("trailer", [None, "crc32c"])
def test_every_two_piece_cut(trailer: str | None) -> None:
    raw = signed_raw(DATA[:50], 16, trailer)
    for i in range(len(raw.body) + 1):
        assert decode(raw, cut(raw.body, [i]))[0] == DATA[:50], i


def test_every_single_byte_piece_and_random_cuts() -> None:
    raw = sign("PUT", URL, {}, DATA[:3000], trailer="crc64nvme")
    assert decode(raw, [raw.body[i : i + 1] for i in range(len(raw.body))])[0] == DATA[:3000]
    signed = signed_raw(DATA[:5000], 700, "sha1")
    rng = random.Random(1)
    for _ in range(200):
        at = rng.sample(range(len(signed.body)), rng.randint(1, 40))
        assert decode(signed, cut(signed.body, at))[0] == DATA[:5000]
    with_empty = [b"", *cut(signed.body, [10, 10, 500]), b""]
    assert decode(signed, with_empty)[0] == DATA[:5000]


# Tampering.


def flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 1]) + data[at + 1 :]


def test_signed_tampering() -> None:
    raw = signed_raw(DATA[:1000], 300, "crc32")
    wire = raw.body
    data_at = wire.index(b"\r\n") + 2 + 100
    fails(replace(raw, body=flip(wire, data_at)), "SignatureDoesNotMatch")
    signature_at = wire.index(b"chunk-signature=", 500) + len("chunk-signature=") + 3
    fails(replace(raw, body=flip(wire, signature_at)), "SignatureDoesNotMatch")
    value_at = wire.index(b"x-amz-checksum-crc32:") + len("x-amz-checksum-crc32:") + 1
    fails(replace(raw, body=flip(wire, value_at)), "SignatureDoesNotMatch")
    trailer_signature_at = wire.index(b"x-amz-trailer-signature:") + 30
    fails(replace(raw, body=flip(wire, trailer_signature_at)), "SignatureDoesNotMatch")
    # Chunks chain from the seed: the same body under another request does not verify.
    other = signed_raw(DATA[:1000], 300, "crc32", url=URL + "2")
    fails(replace(other, body=wire), "SignatureDoesNotMatch")


def test_unsigned_trailer_tampering() -> None:
    raw = sign("PUT", URL, {}, DATA[:1000], trailer="crc32c")
    error = fails(replace(raw, body=flip(raw.body, 50)), "BadDigest")
    assert error.message == "The CRC32C you specified did not match the calculated checksum."
    value_at = raw.body.index(b"crc32c:") + 8
    fails(replace(raw, body=flip(raw.body, value_at)), "BadDigest")
    bad_value = raw.body[:value_at] + b"!" + raw.body[value_at + 1 :]
    fails(replace(raw, body=bad_value), "InvalidRequest")


def test_trailer_must_be_the_declared_one() -> None:
    raw = sign("PUT", URL, {}, b"abc", trailer="crc32")
    renamed = raw.body.replace(b"x-amz-checksum-crc32:", b"x-amz-checksum-sha1:")
    fails(replace(raw, body=renamed), "MalformedTrailerError")
    missing = raw.body[: raw.body.index(b"0\r\n") + 3] + b"\r\n"
    fails(replace(raw, body=missing), "MalformedTrailerError")
    fails(replace(raw, body=raw.body.replace(b"crc32:", b"crc32 ")), "MalformedTrailerError")


# Hostile framing: right errors, bounded memory.


def test_chunk_larger_than_decoded_length() -> None:
    raw = signed_raw(b"x" * 100, 100)
    huge = b"40000000" + raw.body[raw.body.index(b";") :]  # a 1 GiB chunk size
    error = fails(replace(raw, body=huge), "IncompleteBody")
    assert "x-amz-decoded-content-length" in error.message


def test_huge_chunk_size_without_data_streams_then_ends() -> None:
    mode = PayloadMode.STREAMING_UNSIGNED_TRAILER.value
    raw = sign("PUT", URL, {"X-Amz-Trailer": "x-amz-checksum-crc32"}, streaming=mode)
    assert verified(raw).decoded_length is None

    async def never_enough() -> AsyncIterator[bytes]:
        yield b"40000000\r\n"
        for _ in range(64):
            yield b"z" * 65536

    assert peak_memory_of_failing(raw, "IncompleteBody", never_enough()) < 1_000_000


def test_never_ending_size_line() -> None:
    raw = signed_raw(b"x", 1)

    async def endless() -> AsyncIterator[bytes]:
        while True:
            yield b"f" * 65536

    assert peak_memory_of_failing(raw, "InvalidRequest", endless()) < 1_000_000


def test_bad_framing() -> None:
    raw = signed_raw(b"hello", 5)
    wire = raw.body
    after_data = wire.index(b"hello") + 5
    fails(replace(raw, body=wire[:after_data] + wire[after_data + 2 :]), "InvalidRequest")
    fails(replace(raw, body=b"zz" + wire[1:]), "InvalidRequest")
    fails(
        replace(raw, body=wire.replace(b";chunk-signature=", b";chunk-signaturE=", 1)),
        "InvalidRequest",
    )
    fails(replace(raw, body=wire + b"extra"), "InvalidRequest")
    for end in (0, 3, after_data - 1, after_data + 1, len(wire) - 1):
        fails(replace(raw, body=wire[:end]), "IncompleteBody")


def test_decoded_length_must_match() -> None:
    raw = sign("PUT", URL, {}, b"abcd", trailer="crc32")
    fails(raw.header("x-amz-decoded-content-length", "3"), "SignatureDoesNotMatch")
    shorter = sign("PUT", URL, {}, b"abc", trailer="crc32")
    fails(replace(raw, body=shorter.body), "IncompleteBody")


def test_trailer_size_is_bounded() -> None:
    raw = sign("PUT", URL, {}, b"abc", trailer="crc32")
    fails(raw, "InvalidRequest", max_trailer=10)
    trailer = raw.body[raw.body.index(b"x-amz") : -4]
    assert decode(raw, max_trailer=len(trailer))[0] == b"abc"
    fails(raw, "InvalidRequest", max_trailer=len(trailer) - 1)
    long_value = raw.body.replace(b"\r\n\r\n", b"AAAA" * 2000 + b"\r\n\r\n")
    fails(replace(raw, body=long_value), "InvalidRequest")


# Plain bodies.


def plain(raw: Raw, parts: Iterable[bytes] | None = None) -> tuple[bytes, Checksum | None]:
    body = CheckedBody(pieces([raw.body] if parts is None else parts), verified(raw), raw.headers)
    return run(_collect(body)), body.checksum


def plain_fails(raw: Raw, code: str, parts: Iterable[bytes] | None = None) -> S3Error:
    with pytest.raises(S3Error) as caught:
        plain(raw, parts)
    assert caught.value.code == code, caught.value
    return caught.value


def test_plain_sha256() -> None:
    raw = sign("PUT", URL, {}, DATA)
    assert plain(raw, cut(DATA, [1, 1000, 100_000])) == (DATA, None)
    error = plain_fails(raw, "XAmzContentSHA256Mismatch", [flip(DATA, 5)])
    assert error.extra["ClientComputedContentSHA256"] == hashlib.sha256(DATA).hexdigest()


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_plain_checksum_header(algorithm: str) -> None:
    value = _CHECKSUM_CLS[algorithm]().handle(DATA)
    raw = sign("PUT", URL, {f"x-amz-checksum-{algorithm}": value}, DATA, unsigned_payload=True)
    assert plain(raw) == (DATA, Checksum(algorithm, value))
    plain_fails(raw, "BadDigest", [flip(DATA, 7)])


def test_content_md5() -> None:
    md5 = base64.b64encode(hashlib.md5(DATA).digest()).decode()
    raw = sign("PUT", URL, {"Content-MD5": md5}, DATA, unsigned_payload=True)
    assert plain(raw)[0] == DATA
    error = plain_fails(raw, "BadDigest", [flip(DATA, 7)])
    assert error.message == "The Content-MD5 you specified did not match what we received."
    for bad in ("not base64!", base64.b64encode(b"short").decode()):
        malformed = sign("PUT", URL, {"Content-MD5": bad}, DATA, unsigned_payload=True)
        plain_fails(malformed, "InvalidDigest")


def test_malformed_and_duplicate_checksum_headers() -> None:
    raw = sign("PUT", URL, {"x-amz-checksum-crc32": "AAAA"}, b"x", unsigned_payload=True)
    plain_fails(raw, "InvalidRequest")
    both = {"x-amz-checksum-crc32": "AAAAAA==", "x-amz-checksum-sha1": "A" * 27 + "="}
    plain_fails(sign("PUT", URL, both, b"x", unsigned_payload=True), "InvalidRequest")


def test_request_body_picks_the_decoder() -> None:
    chunked = sign("PUT", URL, {}, b"abc", trailer="crc32")
    body = request_body(pieces([chunked.body]), verified(chunked), chunked.headers)
    assert isinstance(body, ChunkedBody) and run(_collect(body)) == b"abc"
    raw = sign("PUT", URL, {}, b"abc")
    body = request_body(pieces([b"abc"]), verified(raw), raw.headers)
    assert isinstance(body, CheckedBody) and run(_collect(body)) == b"abc"
