"""What an API dialect tells the rest of the server about itself, in one descriptor.

``app.py`` mounts every dialect's routers, ``middleware.Front`` learns from them which
routes stream an upload and which are served by the hot path, and the OpenAPI builder how
each dialect words its errors. A new dialect is a package that exports a ``Dialect`` and
one line in ``app.DIALECTS``; nothing shared names a dialect.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter
from starlette.responses import Response

from ...core.errors import StowageError
from ...service import Stowage
from .requests import StrictRequest

Handler = Callable[[StrictRequest, Stowage, str], Awaitable[Response]]


@dataclass(frozen=True)
class HotRoute:
    """A route served ahead of FastAPI (``hot.serve_hot``) by the same route function."""

    path: str  # the route's template, which logs and metrics name it by (``route.path``)
    handle: Handler
    on_error: Callable[[StowageError], Response]


# (method, path) → the hot route and its one path parameter, or None
HotMatcher = Callable[[str, str], tuple[HotRoute, str] | None]


@dataclass(frozen=True)
class Dialect:
    name: str
    routers: tuple[APIRouter, ...] = ()
    # Each router is mounted at each prefix; only the first is in the OpenAPI document.
    prefixes: tuple[str, ...] = ("",)
    # The dialect's answer to a domain error (for the hot path; its routes' own route
    # class answers the same for FastAPI's).
    error_response: Callable[[StowageError], Response] | None = None
    # (method, path template) of the routes whose body streams to the blob store under
    # the upload limit rather than the small cap on JSON and form bodies.
    uploads: tuple[tuple[str, str], ...] = ()
    hot: HotMatcher | None = None
    # For the OpenAPI document: the tags of the dialect's operations, what any of its
    # authenticated routes may answer, the schema of its error bodies by status (else
    # ``Message``) and the component schemas those name.
    tags: frozenset[str] = frozenset()
    auth_statuses: Mapping[int, str] = field(default_factory=dict)
    error_schemas: Mapping[int, dict[str, Any]] = field(default_factory=dict)
    components: Mapping[str, dict[str, Any]] = field(default_factory=dict)
    # Uploads that word an oversized body as a 400 of their own rather than a 413.
    uploads_refuse_as_400: tuple[tuple[str, str], ...] = ()
    # A dialect with a listener of its own (S3 on its port) rather than routes on the
    # main one: entered in every worker's lifespan, for as long as the worker serves.
    listener: Callable[[Stowage], AbstractAsyncContextManager[None]] | None = None


def _template_pattern(template: str) -> str:
    """``/blobs/{object_id}`` → ``/blobs/[^/]+``: one path segment per parameter."""
    return "[^/]+".join(re.escape(part) for part in re.split(r"\{[^}]+\}", template))


class UploadRoutes:
    """Which requests are uploads, from every dialect's ``uploads`` at each of its
    prefixes: one regular expression per method, built once."""

    def __init__(self, dialects: tuple[Dialect, ...]) -> None:
        patterns: dict[str, list[str]] = {}
        for dialect in dialects:
            for method, template in dialect.uploads:
                for prefix in dialect.prefixes:
                    patterns.setdefault(method, []).append(_template_pattern(prefix + template))
        self._by_method = {
            method: re.compile("|".join(f"(?:{p})" for p in found) + r"\Z")
            for method, found in patterns.items()
        }

    def match(self, method: str, path: str) -> bool:
        pattern = self._by_method.get(method)
        return pattern is not None and pattern.match(path) is not None


class HotRoutes:
    """The hot route of a request, asking each dialect that has some in turn."""

    def __init__(self, dialects: tuple[Dialect, ...]) -> None:
        self._matchers = tuple(d.hot for d in dialects if d.hot is not None)

    def match(self, method: str, path: str) -> tuple[HotRoute, str] | None:
        for matcher in self._matchers:
            found = matcher(method, path)
            if found is not None:
                return found
        return None
