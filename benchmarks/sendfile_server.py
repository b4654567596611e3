"""A plain aiohttp file server (sendfile(2), Range support): the GET baseline.

``python -m benchmarks.sendfile_server PORT ROOT`` serves ROOT/<name> and /healthz.
"""

from __future__ import annotations

import sys
from pathlib import Path

from aiohttp import web


def main() -> None:
    port, root = int(sys.argv[1]), Path(sys.argv[2])

    async def healthz(_request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def serve(request: web.Request) -> web.FileResponse:
        return web.FileResponse(root / Path(request.match_info["name"]).name)

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/files/{name}", serve)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


if __name__ == "__main__":
    main()
