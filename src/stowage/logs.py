"""Structured logs: one JSON object a line, each carrying the request id it belongs to.

The access line logs the path but never the query string (it can carry presigned
signatures) nor any header (tokens). In JSON format it is written straight to the stream,
the same line ``JsonFormatter`` would make: a LogRecord, the handler's locks and the
stdlib json encoder cost a tenth of a small request's CPU.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from collections.abc import MutableMapping
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import IO, Any

import orjson

request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
access = logging.getLogger("stowage.access")
_json_stream: IO[bytes] | None = None  # where JSON access lines go, once configured
_second: tuple[int, str] = (-1, "")  # the last whole second, formatted


def _iso_time(now: float) -> str:
    """``datetime.isoformat(timespec="milliseconds")`` in UTC, formatting each second once."""
    global _second
    whole = int(now)
    if _second[0] != whole:
        _second = (whole, datetime.fromtimestamp(whole, UTC).strftime("%Y-%m-%dT%H:%M:%S"))
    return f"{_second[1]}.{int((now - whole) * 1000):03d}+00:00"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": _iso_time(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        rid = request_id.get()
        if rid:
            entry["request_id"] = rid
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, separators=(",", ":"))


def configure(level: str, fmt: str) -> None:
    """Send every logger through one handler on stderr (Granian's own stay off: stowage
    writes the access lines itself, with the request id)."""
    global _json_stream
    _json_stream = sys.stderr.buffer if fmt == "json" else None
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


def log_request(
    scope: MutableMapping[str, Any],
    route: str,
    status: int,
    seconds: float,
    sent: int,
    received: int,
) -> None:
    if not access.isEnabledFor(logging.INFO):
        return
    method, path = scope["method"], scope["path"]
    fields = {
        "method": method,
        "path": path,
        "route": route,
        "status": status,
        "duration_ms": round(seconds * 1000, 2),
        "bytes_sent": sent,
        "bytes_received": received,
        "http_version": scope.get("http_version", "1.1"),
    }
    if _json_stream is None:
        access.info("%s %s %d", method, path, status, extra={"fields": fields})
        return
    entry: dict[str, Any] = {
        "time": _iso_time(time.time()),
        "level": "info",
        "logger": access.name,
        "message": f"{method} {path} {status}",
    }
    rid = request_id.get()
    if rid:
        entry["request_id"] = rid
    entry.update(fields)
    try:
        line = orjson.dumps(entry, option=orjson.OPT_APPEND_NEWLINE)
    except TypeError:  # a path with lone surrogates, which orjson refuses
        line = json.dumps(entry, separators=(",", ":")).encode() + b"\n"
    _write_soon(line)


_pending: list[bytes] = []


def _write_soon(line: bytes) -> None:
    """Queue the line and write every line queued in this turn of the event loop with one
    ``write``: each system call lets the server's own threads take the GIL, and getting it
    back costs the loop a context switch."""
    if not _pending:
        try:
            asyncio.get_running_loop().call_soon(flush)
        except RuntimeError:  # no loop here: write at once
            _pending.append(line)
            flush()
            return
    _pending.append(line)


def flush() -> None:
    """Write what is queued: at the end of the loop turn, and of the app's lifespan."""
    if _json_stream is None or not _pending:
        return
    while _pending:  # until empty: another thread's loop may queue lines meanwhile
        count = len(_pending)
        _json_stream.write(b"".join(_pending[:count]))
        del _pending[:count]
    _json_stream.flush()
