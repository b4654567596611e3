"""Djinn's integer ids in paths: 64-bit, and a longer number names nothing."""

from __future__ import annotations

from starlette.convertors import Convertor, register_url_convertor

from ...core.errors import NotFound
from ...numbers import MAX_INT64, parse_bounded_int

MAX_ID = MAX_INT64


def existing_id(value: int) -> int:
    """Ids are 64-bit; a longer number names nothing, and must not reach the database."""
    if value > MAX_ID:
        raise NotFound("Not Found")
    return value


class IdConvertor(Convertor[int]):
    """``{name:id}``: Starlette's ``int`` with the bounded parser. ``int()`` fails on a
    number of over 4,300 digits, which the route's ``[0-9]+`` accepts; here any number
    past ``MAX_ID`` is ``MAX_ID + 1``, which ``existing_id`` turns into Djinn's 404."""

    regex = "[0-9]+"

    def convert(self, value: str) -> int:
        return parse_bounded_int(value, MAX_ID + 1) or 0

    def to_string(self, value: int) -> str:
        return str(value)


register_url_convertor("id", IdConvertor())
