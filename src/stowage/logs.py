"""Structured logs: one JSON object a line, each carrying the request id it belongs to.

The access line logs the path but never the query string (it can carry presigned
signatures) nor any header (tokens).
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import MutableMapping
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
access = logging.getLogger("stowage.access")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
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
    access.info("%s %s %d", method, path, status, extra={"fields": fields})
