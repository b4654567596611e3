"""How quota sizes are read: as people write them, decimal and binary, and nothing else."""

from __future__ import annotations

import pytest

from stowage.core.errors import Invalid
from stowage.core.quotas import parse_size


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("1048576", 1048576),
        ("10GiB", 10 * 1024**3),
        ("500MB", 500 * 1000**2),
        ("500mb", 500 * 1000**2),
        ("1.5 GiB", 3 * 512 * 1024**2),
        ("2TB", 2 * 1000**4),
        ("4 KiB", 4096),
        ("0", 0),
    ],
)
def test_sizes_as_people_write_them(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "lots", "10 GiBs", "-5MB", "1e9", "10 XB", "9" * 30])
def test_anything_else_is_refused_with_a_message(text: str) -> None:
    with pytest.raises(Invalid, match="size"):
        parse_size(text)
