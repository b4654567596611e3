"""The S3 API's own port (``STOWAGE_S3_API_PORT``, 9000 by default, 0 for none), served
in every worker process beside the main one.

Each worker runs an embedded Granian on the port with SO_REUSEPORT, as the main listener
does across workers, so the kernel spreads S3 connections over the workers and each
request runs on the worker's own service graph: same caches, same group commit, no extra
processes. It starts and stops with the worker's lifespan; stopping drains it as the main
listener drains."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from granian.server.embed import Server as EmbeddedGranian

from ...server import http_options
from ...service import Stowage
from .app import S3App


@contextlib.asynccontextmanager
async def serving(stowage: Stowage) -> AsyncIterator[None]:
    settings = stowage.settings
    if not settings.s3_api_port:
        yield
        return
    options = {**http_options(settings), "port": settings.s3_api_port}
    server = EmbeddedGranian(S3App(stowage), **options)
    task = asyncio.create_task(server.serve())
    try:
        yield
    finally:
        server.stop()
        await task
