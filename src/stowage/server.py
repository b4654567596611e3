"""The HTTP server behind ``stowage serve``: Granian, HTTP/1.1 and h2c on one port.

Granian rather than uvicorn because the Runloop Node SDK (1.25+) speaks HTTP/2 with prior
knowledge to ``http://`` URLs and cannot fall back, and uvicorn has no HTTP/2 at all; for
HTTP/1.1 clients ``make bench`` measured the two on par. Granian also bounds what a client
may send before the app sees a request (header bytes and count, time to send the headers),
which uvicorn left unbounded.

Granian runs the app in ``STOWAGE_WORKERS`` worker processes (by default one per CPU),
forked from ``serve`` after it has migrated and printed the banner; each builds the app
from the same ``STOWAGE_*`` environment (``app.app_from_environment``) and accepts
connections from the one listening socket. What the workers share goes through the data
directory and the database: SQLite writers take turns on a lock file
(``meta/group_commit.py``), one worker reaps (``reaper.py``), and metrics add up across
workers (``metrics_directory``).
"""

from __future__ import annotations

import fcntl
import importlib
import os
import resource
import shutil
import socket
import tempfile
from pathlib import Path
from typing import Any

from granian.constants import HTTPModes, Interfaces, Loops
from granian.http import HTTP1Settings, HTTP2Settings
from granian.server import MPServer

from .config import Settings

# Not ``metrics.MULTIPROCESS_DIR``: importing metrics imports prometheus_client, which
# must not happen in this process before the variable is set (workers are forked from it).
PROMETHEUS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
METRICS_DIR = "metrics"
IN_USE = "in-use.lock"
PRIVATE_UMASK = 0o077


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


def metrics_directory(data_dir: Path) -> Path:
    """A directory of its own for this server start's metric files, under
    ``<data>/metrics``, and remove those of starts that have ended.

    Servers may share a data directory (replicas starting together), so each start marks
    its directory in use with an ``flock`` that this process holds for its life (its
    workers inherit it); a directory whose lock can be taken belongs to a start that has
    ended. Cleaning and creating happen under a lock on ``<data>/metrics`` itself, so no
    start removes another's directory before it is marked."""
    root = data_dir / METRICS_DIR
    root.mkdir(mode=0o700, exist_ok=True)
    guard = os.open(root, os.O_RDONLY)
    try:
        fcntl.flock(guard, fcntl.LOCK_EX)
        for old in root.iterdir():
            if old.is_dir():
                _remove_if_ended(old)
        mine = Path(tempfile.mkdtemp(prefix=f"serve-{os.getpid()}-", dir=root))
        in_use = os.open(mine / IN_USE, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(in_use, fcntl.LOCK_EX)  # never closed: released when the server ends
    finally:
        os.close(guard)
    return mine


def _remove_if_ended(directory: Path) -> None:
    try:
        fd = os.open(directory / IN_USE, os.O_RDWR)
    except FileNotFoundError:  # its start died between making it and marking it
        shutil.rmtree(directory, ignore_errors=True)
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return  # a running server's
    finally:
        os.close(fd)
    shutil.rmtree(directory, ignore_errors=True)


def build(settings: Settings) -> MPServer:
    """Granian's multi-process server, which ``granian.Granian`` names on a Python with
    a GIL."""
    return MPServer(
        "stowage.app:app_from_environment",
        factory=True,
        loop=Loops.uvloop,
        workers=settings.workers,
        workers_kill_timeout=max(1, round(settings.shutdown_timeout_seconds)),
        env_files=None,
        **http_options(settings),
    )


def serve(settings: Settings) -> None:
    """Run until SIGINT/SIGTERM; in-flight requests get ``shutdown_timeout_seconds`` in
    every worker. The caller has checked the port (``check_port_free``) before its
    first-start work.

    The umask keeps whatever the workers create private to stowage's user, as the data
    directory is (the metric files, which prometheus_client creates 0666 less the umask).

    The app's modules are imported here, once the metrics directory is set, so the forked
    workers do not each spend half a second importing them: until a worker has built the
    app, a SIGTERM reaches the handler it inherited from this process and is lost
    (``app.stop_while_starting`` narrows that window to the moment after the fork)."""
    raise_open_file_limit()
    os.umask(PRIVATE_UMASK)
    os.environ[PROMETHEUS_DIR_VARIABLE] = str(metrics_directory(settings.data_dir))
    importlib.import_module("stowage.app")
    build(settings).serve()
