"""Numbers from the wire: every integer a client sends in a path, a query, a header or a
form is read here, never by a bare ``int()``.

``int()`` is the wrong tool for text a stranger wrote. It takes signs, spaces, underscores
and non-ASCII digits ("١٢"), and a string of more than 4,300 digits makes it raise
ValueError (Python's guard against quadratic conversion), which became a 500 wherever a
caller did not expect it. Here a number is one or more ASCII digits, and a value above the
caller's ceiling comes back as the ceiling itself, so each caller decides in one comparison
what "too big" means for it: no such id, the last page, a range past the end. The work is
bounded by the ceiling's length, whatever the input's.

Imports nothing from stowage, so the API, the console and the core may all use it.
"""

from __future__ import annotations

MAX_INT64 = 2**63 - 1  # ids, sizes and offsets are 64-bit signed in both databases


def parse_bounded_int(text: str | bytes | None, ceiling: int = MAX_INT64) -> int | None:
    """The value of ``text`` if it is a decimal number in ASCII digits (leading zeros
    allowed), capped at ``ceiling``; None for anything else (empty, signed, spaced...)."""
    if text is None:
        return None
    digits = text.decode("latin-1") if isinstance(text, bytes) else text
    if not digits or not (digits.isascii() and digits.isdigit()):
        return None
    significant = digits.lstrip("0")
    if len(significant) > len(str(ceiling)):
        return ceiling
    return min(int(significant or "0"), ceiling)


def page_number(raw: str | None, page_size: int) -> int:
    """A 1-based page number from a query: anything but a positive integer means page 1,
    and a number whose row offset would overflow 64 bits, however long, is capped where it
    still fits (a page past the end, which lists show as empty)."""
    return max(parse_bounded_int(raw, MAX_INT64 // page_size) or 1, 1)
