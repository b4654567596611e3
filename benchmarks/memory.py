"""Peak memory of a fresh stowage while 8 uploads stream in at once.

Two figures for all its processes together (``stowage serve`` and its workers):

* the peak of their summed PSS (proportional set size), sampled every 20 ms: a page that
  several processes share (the interpreter, the libraries, what the workers inherited
  from the server at fork) counts once across them, so the sum is the memory the server
  takes from the machine;
* the sum of their ``VmHWM`` (each process's own peak RSS, from the kernel): exact peaks,
  but every shared page is counted once per process.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import httpx

from .report import parallel_curl_seconds
from .stack import StowageServer, stowage

UPLOADS = 8
SAMPLE_SECONDS = 0.02


@dataclass
class MemoryFigures:
    peak_pss_mib: float
    vm_hwm_sum_mib: float
    aggregate_mib_s: float


def _pss_mib(pid: int) -> float:
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    for line in text.splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) / 1024
    return 0.0


class PssSampler:
    """The largest summed PSS of the server's processes seen while it runs."""

    def __init__(self, server: StowageServer) -> None:
        self.server = server
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_SECONDS):
            total = sum(_pss_mib(pid) for pid in self.server.pids())
            self.peak = max(self.peak, total)

    def __enter__(self) -> PssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def peak_memory(data_dir: Path, source: Path) -> MemoryFigures:
    """UPLOADS concurrent presigned PUTs of ``source``."""
    with stowage(data_dir) as server:
        with httpx.Client(base_url=server.base, headers=server.headers) as c:
            urls = [
                c.post("/v1/objects", json={"name": f"m{i}", "content_type": "binary"}).json()[
                    "upload_url"
                ]
                for i in range(UPLOADS)
            ]
        with PssSampler(server) as sampler:
            seconds = parallel_curl_seconds([["-T", str(source), url] for url in urls])
        hwm = server.peak_rss_mib()
    return MemoryFigures(sampler.peak, hwm, UPLOADS * source.stat().st_size / 2**20 / seconds)
