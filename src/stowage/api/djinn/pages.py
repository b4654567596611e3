"""Djinn's lists: 25 items a page and a ``Link`` header that always carries prev and next."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any
from urllib.parse import urlencode

from fastapi import Request

from ...core.models import Namespace, ObjectQuery, Page, StoredObject
from ...numbers import page_number as wire_page_number
from ..common.links import public_base
from .errors import DjinnJson

PAGE_SIZE = 25
LISTED: dict[int | str, dict[str, Any]] = {
    200: {
        "description": f"Up to {PAGE_SIZE} items",
        "headers": {
            "Link": {
                "description": 'Always both: <url?page=N>; rel="prev", <url?page=M>; rel="next"',
                "schema": {"type": "string"},
            }
        },
    }
}


def page_number(raw: str | None) -> int:
    """Djinn's rule: anything but a positive integer means page 1 (and a number too big
    for any row offset is still past the end: an empty page)."""
    return wire_page_number(raw, PAGE_SIZE)


PageRows = tuple[list[Any], bool]  # one page's rows, and whether more rows follow


async def djinn_page(
    page: int, fetch: Callable[[int], Awaitable[PageRows]], count: Callable[[], Awaitable[int]]
) -> tuple[list[Any], int, int]:
    """The rows to show for ``?page=`` and the pages its ``Link`` points to (prev, next),
    as Djinn's ``database.Paginate`` computes them: a page above the row count shows the
    last page, a page past the last one but not above the count is empty, prev is
    ``max(page-1, 1)`` and next ``min(page+1, last)``, and with no rows both are 0.

    Counting every matching row is what made a page slow on a big table, so the count is
    taken only for an empty page past the first; otherwise one row more than a page tells
    whether a next page exists.
    """
    items, more = await fetch(page)
    if items:
        return items, max(page - 1, 1), page + 1 if more else page
    total = await count() if page > 1 else 0
    if total == 0:
        return [], 0, 0
    last = math.ceil(total / PAGE_SIZE)
    if page > total:
        items, _ = await fetch(last)
        return items, max(last - 1, 1), last
    return [], page - 1, last


async def object_page(
    fetch: Callable[[ObjectQuery], Awaitable[Page]], query: ObjectQuery, page: int
) -> tuple[list[StoredObject], int, int]:
    """``djinn_page`` for a list of objects: rows, prev, next."""

    async def rows(number: int) -> PageRows:
        offset = (number - 1) * PAGE_SIZE
        found = await fetch(
            replace(query, limit=PAGE_SIZE, offset=offset, include_total_count=False)
        )
        return found.objects, found.has_more

    async def count() -> int:
        counted = await fetch(replace(query, limit=1, offset=0, include_total_count=True))
        return counted.total_count or 0

    return await djinn_page(page, rows, count)


NamespaceFetch = Callable[[int, int], Awaitable[tuple[list[Namespace], int]]]


async def namespace_page(fetch: NamespaceFetch, page: int) -> tuple[list[Namespace], int, int]:
    """``djinn_page`` for a list of namespaces, from ``fetch(offset, limit)`` that counts
    as it goes (a caller has few namespaces): rows, prev, next."""

    async def rows(number: int) -> PageRows:
        offset = (number - 1) * PAGE_SIZE
        items, total = await fetch(offset, PAGE_SIZE)
        return items, offset + len(items) < total

    async def count() -> int:
        return (await fetch(0, 0))[1]

    return await djinn_page(page, rows, count)


def paginated(request: Request, items: list[Any], prev: int, next_: int) -> DjinnJson:
    url = public_base(request) + request.url.path
    params = dict(request.query_params)

    def link(target: int) -> str:
        query = urlencode(sorted({**params, "page": str(target)}.items()))
        return f"<{url}?{query}>"

    header = f'{link(prev)}; rel="prev", {link(next_)}; rel="next"'
    return DjinnJson(items, headers={"Link": header})
