"""Peak resident memory of a fresh stowage while 8 uploads stream in at once."""

from __future__ import annotations

from pathlib import Path

import httpx

from .report import parallel_curl_seconds
from .stack import stowage

UPLOADS = 8


def peak_rss_mib(data_dir: Path, source: Path) -> tuple[float, float]:
    """(peak RSS in MiB, aggregate MiB/s) for UPLOADS concurrent presigned PUTs of ``source``."""
    with stowage(data_dir) as server:
        with httpx.Client(base_url=server.base, headers=server.headers) as c:
            urls = [
                c.post("/v1/objects", json={"name": f"m{i}", "content_type": "binary"}).json()[
                    "upload_url"
                ]
                for i in range(UPLOADS)
            ]
        seconds = parallel_curl_seconds([["-T", str(source), url] for url in urls])
        peak = server.peak_rss_mib()
    return peak, UPLOADS * source.stat().st_size / 2**20 / seconds
