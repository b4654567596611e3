"""An object assembled from parts gets its checksum from theirs (``core.checksums``):
what S3 clients compare with their own computation, so it must be exactly S3's."""

from __future__ import annotations

import base64
import hashlib
import os

import pytest

from stowage.core.checksums import ALGORITHMS, b64, of_parts
from stowage.core.models import Checksum

SIZES = [[0], [1], [5, 0, 7], [1000, 1, 65_536, 3]]


def checksum(algorithm: str, data: bytes) -> str:
    hasher = ALGORITHMS[algorithm]()
    hasher.update(data)
    return b64(hasher.digest())


@pytest.mark.parametrize("algorithm", ["crc32", "crc32c", "crc64nvme"])
@pytest.mark.parametrize("sizes", SIZES)
def test_crcs_of_parts_combine_into_the_crc_of_the_whole(algorithm: str, sizes: list[int]) -> None:
    parts = [os.urandom(size) for size in sizes]
    found = of_parts(algorithm, [(checksum(algorithm, p), len(p)) for p in parts], composite=False)
    assert found == Checksum(algorithm, checksum(algorithm, b"".join(parts)))


def test_a_composite_checksum_is_of_the_parts_digests_joined() -> None:
    parts = [b"first part", b"second"]
    digests = [hashlib.sha256(p).digest() for p in parts]
    found = of_parts("sha256", [(b64(d), 0) for d in digests], composite=True)
    expected = base64.b64encode(hashlib.sha256(b"".join(digests)).digest()).decode()
    assert found == Checksum("sha256", f"{expected}-2", composite=True)
