"""Checksums of an object's bytes that a client declares when it writes them and asks for
when it reads them (S3's ``x-amz-checksum-*``), and the checksum of an object assembled
from parts.

The core keeps a checksum as data (``models.Checksum``); the dialect verifies or computes
it as the body streams. The algorithms live here because completing an upload in parts
derives the object's checksum from its parts' checksums, which is the core's business.
crc32c and crc64nvme come from ``awscrt`` (compiled, what botocore itself uses): a
pure-Python CRC would crawl through GiB bodies.
"""

from __future__ import annotations

import base64
import hashlib
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from awscrt import checksums as crt

from .models import Checksum


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


@dataclass(frozen=True, slots=True)
class _CrcShape:
    """A reflected CRC whose initial value and final XOR are all ones, as these three
    are: what combining two of them needs to know."""

    width: int
    polynomial: int  # reflected


# Only CRCs combine: the CRC of two byte strings joined follows from theirs and the second
# one's length, so an object assembled from parts gets the CRC of its bytes without
# reading them again. Hashes do not.
_COMBINABLE = {
    "crc32": _CrcShape(32, 0xEDB88320),
    "crc32c": _CrcShape(32, 0x82F63B78),
    "crc64nvme": _CrcShape(64, 0x9A6C9329AC4BC9B5),
}


def combinable(algorithm: str) -> bool:
    """Whether parts' checksums of ``algorithm`` give the checksum of the whole bytes."""
    return algorithm in _COMBINABLE


def b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode()


def _multiply(shape: _CrcShape, a: int, b: int) -> int:
    """a·b modulo the polynomial, in the reflected bit order (zlib's ``multmodp``)."""
    top = 1 << (shape.width - 1)
    product = 0
    while a:
        if a & top:
            product ^= b
        a = (a << 1) & ((1 << shape.width) - 1)
        b = (b >> 1) ^ shape.polynomial if b & 1 else b >> 1
    return product


def _x_to_the(shape: _CrcShape, bits: int) -> int:
    """x^bits modulo the polynomial, by repeated squaring."""
    result, power = 1 << (shape.width - 1), 1 << (shape.width - 2)  # x^0, x^1
    while bits:
        if bits & 1:
            result = _multiply(shape, power, result)
        power = _multiply(shape, power, power)
        bits >>= 1
    return result


def _combine(shape: _CrcShape, first: int, second: int, second_length: int) -> int:
    """The CRC of A + B from CRC(A), CRC(B) and len(B) (zlib's ``crc32_combine``)."""
    return _multiply(shape, _x_to_the(shape, 8 * second_length), first) ^ second


def of_parts(algorithm: str, parts: Sequence[tuple[str, int]], composite: bool) -> Checksum:
    """The checksum of an object assembled from parts, from each part's (base64 checksum,
    size), in order. ``composite``: S3's checksum of the parts' checksums, the checksum of
    their digests joined, shown with ``-N``; else the checksum of the bytes themselves,
    which only a CRC (``combinable``) allows."""
    digests = [base64.b64decode(value) for value, _size in parts]
    if composite:
        hasher = ALGORITHMS[algorithm]()
        hasher.update(b"".join(digests))
        return Checksum(algorithm, f"{b64(hasher.digest())}-{len(parts)}", composite=True)
    shape = _COMBINABLE[algorithm]
    crc = 0  # the CRC of no bytes
    for digest, (_value, size) in zip(digests, parts, strict=True):
        crc = _combine(shape, crc, int.from_bytes(digest, "big"), size)
    return Checksum(algorithm, b64(crc.to_bytes(shape.width // 8, "big")))
