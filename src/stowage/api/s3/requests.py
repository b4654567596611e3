"""An S3 request as the operations need it: path-style bucket and key, the query's
sub-resources, headers, and the caller that its signature proves."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl

from starlette.datastructures import Headers
from starlette.types import Receive, Scope

from ...core.access import Principal
from .sigv4 import Verified


@dataclass
class S3Request:
    scope: Scope
    receive: Receive
    method: str
    bucket: str  # "" for the service (ListBuckets)
    key: str  # "" for the bucket itself
    query: dict[str, str]
    headers: Headers
    caller: Principal | None = None
    verified: Verified | None = None  # None: an unsigned (anonymous) request

    @classmethod
    def of(cls, scope: Scope, receive: Receive) -> S3Request:
        """Path-style addressing: ``/{bucket}/{key}``, the key being everything after the
        bucket's slash (it may hold slashes of its own, and may end with one)."""
        path: str = scope["path"]
        bucket, _, key = path.removeprefix("/").partition("/")
        raw_query = scope.get("query_string", b"").decode("latin-1")
        query = dict(parse_qsl(raw_query, keep_blank_values=True))
        return cls(scope, receive, scope["method"], bucket, key, query, Headers(scope=scope))

    @property
    def resource(self) -> str:
        """What S3 names in an error's ``Resource``."""
        return "/" + self.bucket + ("/" + self.key if self.key else "")

    def declared_length(self) -> int | None:
        raw = self.headers.get("x-amz-decoded-content-length") or self.headers.get("content-length")
        return int(raw) if raw is not None and raw.isascii() and raw.isdigit() else None
