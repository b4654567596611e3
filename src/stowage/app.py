"""The ASGI application: wires the core to its backends and mounts both API dialects."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import gc
import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel, Field
from starlette.responses import Response
from starlette.staticfiles import StaticFiles

from . import __version__, logs
from .api import djinn, presigned, runloop, s3
from .api.common import errors, openapi
from .api.common.admission import trusted_proxies
from .api.common.dialect import Dialect
from .api.common.middleware import Front
from .api.common.responses import JsonResponse
from .bootstrap import prepare
from .config import Settings
from .console import SURFACE as CONSOLE
from .console import routes as console
from .console import session
from .core.clock import Clock
from .service import build


class Readiness(BaseModel):
    status: str
    checks: dict[str, str] = Field(description='"ok", or what failed, per dependency')


# Non-upload bodies (Front's 413): well above the largest valid one (a name and 64 KiB of
# metadata).
JSON_BODY_LIMIT = 1024 * 1024
YOUNG_COLLECTION_THRESHOLD = 20_000
# Every API the server speaks; the console is described the same way.
DIALECTS: tuple[Dialect, ...] = (runloop.DIALECT, presigned.DIALECT, djinn.DIALECT, s3.DIALECT)


def ignore_file_size_signal() -> None:
    """A file-size limit (RLIMIT_FSIZE) must fail the one write (EFBIG → 507), not kill
    the server."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


def app_from_environment() -> Front:
    """The app as a server's worker process builds it from STOWAGE_* alone (Granian's
    factory); ``stowage serve`` has already migrated and printed the banner."""
    die_with_parent()
    stop_while_starting()
    settings = Settings()
    logs.configure(settings.log_level, settings.log_format)
    ignore_file_size_signal()
    app = create_app(settings, prepare(settings).presign_secret)
    spare_the_collector()
    return app


def spare_the_collector() -> None:
    """What the worker has built so far lives as long as it does: move it out of the cyclic
    collector's sight (``gc.freeze``) and collect the young generation less often. Each
    request allocates a few hundred objects, so the default threshold (700) ran a
    collection every few requests (py-spy: ~5% of a small request's CPU), walking the app's
    objects again each time they reached an older generation."""
    gc.freeze()
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, *gc.get_threshold()[1:])


def stop_while_starting() -> None:
    """A worker is forked with the server's own SIGTERM handler, which only sets a flag in
    the worker's copy of the server, until Granian installs the worker's handler after the
    app is built. A SIGTERM meanwhile (a server stopped while its workers start, each
    building the app in turn under the first-start lock) was lost, and that worker served
    on until Granian killed it ``STOWAGE_SHUTDOWN_TIMEOUT_SECONDS`` later. Until then a
    worker has nothing to drain, so SIGTERM and SIGINT simply end it."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def die_with_parent() -> None:
    """A server's worker must not outlive its parent: if ``stowage serve`` is SIGKILLed,
    the worker would otherwise go on serving the port with nobody to stop it."""
    if sys.platform != "linux":
        return
    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
    if os.getppid() == 1:  # the parent died before the line above took effect
        os.kill(os.getpid(), signal.SIGKILL)


def create_app(settings: Settings, presign_secret: bytes, clock: Clock | None = None) -> Front:
    """Build the app, FastAPI behind ``Front``; the caller has run ``bootstrap.prepare``
    (migrations, secret)."""
    stowage = build(settings, presign_secret, clock)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if settings.reaper_interval_seconds > 0:
            stowage.reaper.start()
        flushing = asyncio.create_task(stowage.metrics.flush_every_second())
        try:
            async with contextlib.AsyncExitStack() as listeners:
                for dialect in DIALECTS:
                    if dialect.listener is not None:
                        await listeners.enter_async_context(dialect.listener(stowage))
                yield
        finally:
            flushing.cancel()
            await asyncio.gather(flushing, return_exceptions=True)
            await stowage.reaper.stop()
            await stowage.meta.close()
            stowage.blobs.close()
            logs.flush()

    app = FastAPI(
        title="stowage",
        version=__version__,
        description="A self-hosted object store speaking the Runloop and Djinn CI Objects APIs.",
        default_response_class=JsonResponse,
        lifespan=lifespan,
    )
    app.state.stowage = stowage
    errors.install(app)
    openapi.install(app, DIALECTS)
    app.state.console_csrf_key = session.csrf_key(presign_secret)
    app.mount("/console/static", StaticFiles(directory=console.STATIC_DIR), name="console-static")
    for dialect in (CONSOLE, *DIALECTS):
        for router in dialect.routers:
            for prefix in dialect.prefixes:
                app.include_router(router, prefix=prefix, include_in_schema=not prefix)

    @app.get("/healthz", tags=["operations"])
    async def healthz() -> dict[str, str]:
        """The process is up (for liveness probes)."""
        return {"status": "ok"}

    @app.get(
        "/readyz",
        tags=["operations"],
        response_model=Readiness,
        responses={503: {"description": "Not ready", "model": Readiness}},
    )
    async def readyz() -> JsonResponse:
        """The metadata database and the blob store both answer (for readiness probes)."""
        checks = await stowage.readiness()
        ready = all(ok == "ok" for ok in checks.values())
        status = {"status": "ready" if ready else "unavailable", "checks": checks}
        return JsonResponse(status, status_code=200 if ready else 503)

    @app.get("/metrics", tags=["operations"], include_in_schema=False)
    async def metrics() -> Response:
        """Prometheus metrics."""
        await stowage.refresh_store_figures()
        return Response(stowage.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    return Front(
        app,
        stowage.metrics,
        (CONSOLE, *DIALECTS),
        trusted=trusted_proxies(settings),
        max_per_client=settings.max_requests_per_client,
        body_limit=JSON_BODY_LIMIT,
    )
