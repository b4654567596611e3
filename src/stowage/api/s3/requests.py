"""An S3 request as the operations need it: path-style bucket and key, the query's
sub-resources, headers, and the caller that its signature proves."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.types import Receive, Scope

from ...core.access import Principal
from ...core.models import Checksum, Claimed
from ...numbers import MAX_INT64, parse_bounded_int
from ..common.deps import request_body
from . import errors
from .checksums import DigestedBody
from .chunked import request_body as signed_body
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
    hosted: bool = False  # virtual-hosted style: the bucket was named by the Host header
    caller: Principal | None = None
    verified: Verified | None = None  # None: an unsigned (anonymous) request
    _checked: DigestedBody | None = field(default=None, init=False, repr=False)

    @classmethod
    def of(cls, scope: Scope, receive: Receive, domain: str | None = None) -> S3Request:
        """Path-style addressing, ``/{bucket}/{key}``, the key being everything after the
        bucket's slash (it may hold slashes of its own, and may end with one); or, under
        ``domain``, virtual-hosted style: ``{bucket}.{domain}/{key}``."""
        headers = Headers(scope=scope)
        path: str = scope["path"].removeprefix("/")
        host = headers.get("host", "").lower()
        host = host.rpartition(":")[0] if host.rpartition(":")[2].isdigit() else host
        suffix = f".{domain.lower()}" if domain else ""
        hosted = bool(suffix) and host.endswith(suffix) and len(host) > len(suffix)
        if hosted:
            bucket, key = host[: -len(suffix)], path
        else:
            bucket, _, key = path.partition("/")
        raw_query = scope.get("query_string", b"").decode("latin-1")
        query = dict(parse_qsl(raw_query, keep_blank_values=True))
        return cls(scope, receive, scope["method"], bucket, key, query, headers, hosted)

    @property
    def resource(self) -> str:
        """What S3 names in an error's ``Resource``."""
        return "/" + self.bucket + ("/" + self.key if self.key else "")

    def body(
        self, default_checksum: str | None = None, *, stored_with_digests: bool = False
    ) -> AsyncIterator[bytes]:
        """The payload as it arrives, under the body timeouts every upload has, checked as
        its signature mode and headers declare (``chunked.request_body``): the iteration
        ends with an S3Error instead of finishing when a check fails. A body that names
        no checksum gets one of ``default_checksum``'s algorithm, if given. A body
        ``stored_with_digests`` (a write that computes its md5 and sha256) leaves those
        two to the write: pass it ``claimed``."""
        received = request_body(Request(self.scope, self.receive))
        if self.verified is None:
            return received
        self._checked = signed_body(
            received, self.verified, self.scope["headers"], default_checksum, stored_with_digests
        )
        return aiter(self._checked)

    @property
    def claimed(self) -> Claimed | None:
        """The md5 and sha256 the client declared, for the write to check (see ``body``)."""
        return self._checked.claimed if self._checked is not None else None

    @property
    def checksum_algorithm(self) -> str | None:
        """The algorithm of the checksum the body will have, known before it is read."""
        return self._checked.algorithm if self._checked is not None else None

    def checksum(self) -> Checksum | None:
        """The body's checksum, verified or computed, once it has been read."""
        return self._checked.checksum if self._checked is not None else None

    def announced_length(self) -> int | None:
        """The body's length as the client gives it, if it does."""
        raw = self.headers.get("x-amz-decoded-content-length") or self.headers.get("content-length")
        return parse_bounded_int(raw)

    def declared_length(self) -> int:
        """The body's length, which S3 requires of an object or a part: a body without it
        (chunked) is refused, as AWS refuses it, before any of it is read."""
        length = self.announced_length()
        if length is None:
            raise errors.missing_content_length()
        return length

    def number(self, name: str, default: int, most: int, longest: int | None = None) -> int:
        """Query parameter ``name`` as a count, at most ``most``; InvalidArgument when it
        is not a number (or has more than ``longest`` digits)."""
        raw = self.query.get(name)
        if raw is None:
            return default
        ceiling = 10**longest if longest else MAX_INT64
        value = parse_bounded_int(raw, ceiling)
        if value is None or (longest and value >= ceiling):
            raise errors.invalid_argument(
                f"Provided {name} not an integer or within integer range", name, raw
            )
        return min(value, most)
