"""The HTTP server behind ``stowage serve``: Granian, HTTP/1.1 and h2c on one port.

Granian rather than uvicorn because the Runloop Node SDK (1.25+) speaks HTTP/2 with prior
knowledge to ``http://`` URLs and cannot fall back, and uvicorn has no HTTP/2 at all; for
HTTP/1.1 clients ``make bench`` measured the two on par. Granian also bounds what a client
may send before the app sees a request (header bytes and count, time to send the headers),
which uvicorn left unbounded.

Granian runs the app in a worker process that builds it from the same ``STOWAGE_*``
environment (``app.app_from_environment``); ``serve`` has already migrated and printed the
banner.
"""

from __future__ import annotations

import resource
import socket
from typing import Any

from granian.constants import HTTPModes, Interfaces, Loops
from granian.http import HTTP1Settings, HTTP2Settings
from granian.server import MPServer

from .config import Settings


class PortBusy(Exception):
    """Another process listens on the address already."""


def check_port_free(host: str, port: int) -> None:
    """Granian listens with SO_REUSEPORT, so a second server on a busy port would start and
    silently take half of the first one's connections. Refuse, as other servers do."""
    family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    try:
        socket.create_server((host, port), family=family).close()
    except OSError as exc:
        raise PortBusy(f"cannot listen on {host}:{port}: {exc}") from None


def raise_open_file_limit() -> int:
    """Every connection is a file descriptor; the usual soft limit (1,024) lets a few hundred
    idle or slow connections lock everyone else out. Take the hard limit, as servers do."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        wanted = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
        except (ValueError, OSError):
            return soft
        return wanted
    return soft


def http_options(settings: Settings) -> dict[str, Any]:
    """What every Granian that serves stowage is given, the embedded one of the tests too."""
    return {
        "address": settings.host,
        "port": settings.port,
        "interface": Interfaces.ASGI,
        "http": HTTPModes.auto,  # HTTP/1.1, and h2c for clients that open with its preface
        "http1_settings": HTTP1Settings(
            # A request's head (request line and headers) must fit this buffer, else 431.
            max_buffer_size=max(8192, settings.max_header_bytes),
            header_read_timeout=round(settings.header_timeout_seconds * 1000),
        ),
        "http2_settings": HTTP2Settings(max_headers_size=settings.max_header_bytes),
        "log_enabled": False,  # stowage writes its own lines, with the request id
    }


def build(settings: Settings) -> MPServer:
    """Granian's multi-process server (one worker process), which ``granian.Granian``
    names on a Python with a GIL."""
    return MPServer(
        "stowage.app:app_from_environment",
        factory=True,
        loop=Loops.uvloop,
        workers=1,
        workers_kill_timeout=max(1, round(settings.shutdown_timeout_seconds)),
        env_files=None,
        **http_options(settings),
    )


def serve(settings: Settings) -> None:
    """Run until SIGINT/SIGTERM; in-flight requests get ``shutdown_timeout_seconds``.
    The caller has checked the port (``check_port_free``) before its first-start work."""
    raise_open_file_limit()
    build(settings).serve()
