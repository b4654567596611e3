"""Response helpers: fast JSON, and blob bodies with Range and conditional GET."""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Mapping
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from ...core.models import ContentType, StoredObject
from ...core.objects import ObjectService
from ...numbers import parse_bounded_int


class JsonResponse(JSONResponse):
    """orjson-rendered; a JSONResponse so the OpenAPI document shows the route's model."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


MIME_TYPES = {
    ContentType.UNSPECIFIED: "application/octet-stream",
    ContentType.BINARY: "application/octet-stream",
    ContentType.TEXT: "text/plain; charset=utf-8",
    ContentType.GZIP: "application/gzip",
    ContentType.TAR: "application/x-tar",
    ContentType.TGZ: "application/gzip",
}

_RANGE = re.compile(r"^bytes=([0-9]*)-([0-9]*)$")  # ASCII digits: \d takes any script's
_BINARY = {"*/*": {"schema": {"type": "string", "format": "binary"}}}
# What blob_response may answer, for the OpenAPI document.
BLOB_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "The bytes", "content": _BINARY},
    206: {"description": "A byte range", "content": _BINARY},
    304: {"description": "If-None-Match matched, or else not modified since If-Modified-Since"},
    412: {"description": "If-Match did not match, or else modified since If-Unmodified-Since"},
    416: {"description": "The range is outside the object"},
}


def parse_range(header: str, size: int) -> tuple[int, int] | str | None:
    """Return (start, length), None to ignore the header, or "unsatisfiable".

    Multiple ranges are answered with the whole object, which RFC 9110 allows. Positions
    too big for any object saturate (``parse_bounded_int``): a first byte past the end is
    unsatisfiable, and a last byte past it means "to the end", however many digits it has.
    """
    match = _RANGE.match(header.strip())
    if not match:
        return None
    first, last = (parse_bounded_int(g) for g in match.groups())  # None when empty
    if first is None and last is None:
        return None
    if first is None:  # suffix range: the last N bytes
        assert last is not None
        if last == 0 or size == 0:
            return "unsatisfiable"
        start = max(0, size - last)
        return start, size - start
    if last is not None and last < first:
        return None
    if first >= size:
        return "unsatisfiable"
    end = min(last, size - 1) if last is not None else size - 1
    return first, end - first + 1


_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@functools.lru_cache(maxsize=4096)
def http_date(seconds: int) -> str:
    """RFC 9110's IMF-fixdate, as ``email.utils.formatdate(usegmt=True)`` writes it at a
    third of its cost (it builds a datetime and formats it through several calls), and
    remembered: every read of an object formats its same creation second again."""
    t = time.gmtime(seconds)
    return (
        f"{_DAYS[t.tm_wday]}, {t.tm_mday:02d} {_MONTHS[t.tm_mon - 1]} {t.tm_year} "
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} GMT"
    )


def _etag_matches(header: str, etag: str) -> bool:
    candidates = [c.strip().removeprefix("W/") for c in header.split(",")]
    return "*" in candidates or etag in candidates


def http_date_seconds(header: str | None) -> int | None:
    """An HTTP-date as Unix seconds; None when absent or not a date (then it is ignored)."""
    if header is None:
        return None
    try:
        parsed = parsedate_to_datetime(header)
    except (TypeError, ValueError, OverflowError, IndexError):
        return None
    return int((parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp())


def _precondition(headers: Mapping[str, str], etag: str, modified_s: int) -> int | None:
    """412 or 304 when a conditional header says so, else None, in RFC 9110's order: the
    entity tag headers, when sent, take precedence over their date counterparts."""
    if_match = headers.get("if-match")
    if if_match is not None:
        if not _etag_matches(if_match, etag):
            return 412
    else:
        since = http_date_seconds(headers.get("if-unmodified-since"))
        if since is not None and modified_s > since:
            return 412
    if_none_match = headers.get("if-none-match")
    if if_none_match is not None:
        return 304 if _etag_matches(if_none_match, etag) else None
    since = http_date_seconds(headers.get("if-modified-since"))
    return 304 if since is not None and modified_s <= since else None


def _range_applies(if_range: str | None, etag: str, last_modified: str) -> bool:
    """``If-Range`` holds an entity tag or the ``Last-Modified`` date; anything else
    means the whole object."""
    return if_range is None or if_range.strip() in (etag, last_modified)


WHOLE_BODY_BYTES = 256 * 1024  # answered from one read; larger bodies stream


class BlobResponse(Response):
    """A blob's answer with its headers encoded here in one pass: Starlette's
    ``init_headers`` scans and re-encodes them, a tenth of a 4 KiB GET's CPU. The type,
    when given, gets a charset as Starlette gives ``text/*`` types."""

    def __init__(
        self,
        status_code: int,
        headers: dict[str, str],
        media_type: str | None = None,
        body: bytes = b"",
    ) -> None:
        self.status_code = status_code
        self.body = body
        self.background = None
        self.raw_headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
        if media_type is not None:
            if media_type.startswith("text/") and "charset=" not in media_type.lower():
                media_type += "; charset=utf-8"
            self.raw_headers.append((b"content-type", media_type.encode("latin-1")))


async def blob_response(
    request: Request, objects: ObjectService, obj: StoredObject, media_type: str
) -> Response:
    assert obj.size is not None
    size = obj.size
    etag = f'"{obj.etag or obj.md5}"'  # S3's for an object assembled from parts
    modified_s = obj.create_time_ms // 1000  # HTTP dates have whole seconds
    last_modified = http_date(modified_s)
    headers = {
        "etag": etag,
        "last-modified": last_modified,
        "accept-ranges": "bytes",
        "content-disposition": f"attachment; filename*=UTF-8''{quote(obj.name, safe='')}",
    }
    # One pass over the request's headers (Starlette's Headers scans them on every get);
    # reversed, so that a repeated header counts by its first value, as with Headers.get.
    sent = {k.decode("latin-1"): v.decode("latin-1") for k, v in reversed(request.scope["headers"])}
    if precondition := _precondition(sent, etag, modified_s):
        if precondition == 412:
            headers["content-length"] = "0"
        return BlobResponse(precondition, headers)

    start, length, status = 0, size, 200
    range_header = sent.get("range")
    if range_header and _range_applies(sent.get("if-range"), etag, last_modified):
        parsed = parse_range(range_header, size)
        if parsed == "unsatisfiable":
            headers["content-range"] = f"bytes */{size}"
            headers["content-length"] = "0"
            return BlobResponse(416, headers)
        if isinstance(parsed, tuple):
            start, length = parsed
            status = 206
            headers["content-range"] = f"bytes {start}-{start + length - 1}/{size}"
    headers["content-length"] = str(length)
    if request.method == "HEAD":
        return BlobResponse(status, headers, media_type)
    if length <= WHOLE_BODY_BYTES:  # one read and one send: no stream, no extra task
        data = await objects.read_bytes(obj, start, length)
        return BlobResponse(status, headers, media_type, data)
    body = await objects.read(obj, start, length)
    return StreamingResponse(body, status_code=status, headers=headers, media_type=media_type)
