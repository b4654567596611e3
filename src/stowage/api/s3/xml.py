"""S3's XML bodies, written as strings: the shapes are few and fixed, and building an
ElementTree per response would cost more than the rest of a small request."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from xml.sax.saxutils import escape

NAMESPACE = "http://s3.amazonaws.com/doc/2006-03-01/"
DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n'
# A parser reads a raw CR as a LF; as a reference it stays a CR (S3 keys may hold one).
CARRIAGE_RETURN = {"\r": "&#13;"}


def element(name: str, value: str | int | bool | None) -> str:
    """``<name>value</name>``; nothing for None. Booleans as S3 writes them."""
    if value is None:
        return ""
    if isinstance(value, bool):
        value = "true" if value else "false"
    return f"<{name}>{escape(str(value), CARRIAGE_RETURN)}</{name}>"


def document(root: str, children: Iterable[str], namespaced: bool = True) -> bytes:
    xmlns = f' xmlns="{NAMESPACE}"' if namespaced else ""
    return f"{DECLARATION}<{root}{xmlns}>{''.join(children)}</{root}>".encode()


def timestamp(ms: int) -> str:
    """ISO 8601 with milliseconds and Z, as S3 lists write ``LastModified``."""
    moment = datetime.fromtimestamp(ms / 1000, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def http_date(ms: int) -> str:
    """RFC 7231 date, as S3 sends ``Last-Modified`` and ``Date``."""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%a, %d %b %Y %H:%M:%S GMT")


def parent(name: str, children: Iterable[str]) -> str:
    """``<name>…</name>`` around elements already written."""
    return f"<{name}>{''.join(children)}</{name}>"
