"""Prometheus metrics: what an operator graphs and alerts on.

One registry per app (tests run several apps in one process). Request metrics are
recorded by the ASGI middleware, the reaper counts its sweeps and what retention rules
expired; store-wide figures are read
from the database at scrape time.

A request is tallied in a plain dict and the tallies reach prometheus_client at most a
second later (``flush``, run by the app every ``FLUSH_SECONDS`` and before each scrape it
answers): in multiprocess mode every ``inc`` takes a lock, checks the pid and writes an
mmapped file, and the six a request made cost more CPU than serving a 4 KiB object from
the cache. A scrape may therefore miss the last second of another worker's requests.

``stowage serve`` runs several worker processes and any of them may answer a scrape, so it
sets ``PROMETHEUS_MULTIPROC_DIR`` (``server.metrics_directory``) before a worker imports
prometheus_client: every counter and histogram then lives in a file per process there, and
a scrape adds up the files of every worker this server start has had. There are no
live gauges; the store figures come from the database, whoever is asked.
"""

from __future__ import annotations

import asyncio
import os
from bisect import bisect_left
from collections.abc import Iterator
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"
FLUSH_SECONDS = 1.0


@dataclass
class _Tally:
    """Requests of one route, method and status since the last flush."""

    count: int = 0
    seconds: float = 0.0
    buckets: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS) + 1))


class _StoreFigures(Collector):
    """Objects and bytes stored, as of the last scrape: ``bytes`` as clients count them
    (every completed object's size), ``blob_bytes`` as the store holds them (each distinct
    content once, with blobs awaiting collection)."""

    def __init__(self) -> None:
        self.objects = 0
        self.bytes = 0
        self.blobs = 0
        self.blob_bytes = 0

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield GaugeMetricFamily("stowage_objects", "Completed objects stored", self.objects)
        yield GaugeMetricFamily("stowage_stored_bytes", "Bytes in completed objects", self.bytes)
        yield GaugeMetricFamily("stowage_blobs", "Distinct blobs stored", self.blobs)
        yield GaugeMetricFamily(
            "stowage_blob_bytes", "Bytes stored in blobs, each content once", self.blob_bytes
        )
        yield GaugeMetricFamily(
            "stowage_dedup_saved_bytes",
            "Bytes of completed objects not stored again (shared blobs)",
            max(0, self.bytes - self.blob_bytes),
        )


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "stowage_requests",
            "HTTP requests by route template, method and status",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "stowage_request_duration_seconds",
            "Time to the last byte of the response",
            ["route", "method"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.bytes_in = Counter(
            "stowage_received_bytes", "Request body bytes", registry=self.registry
        )
        self.bytes_out = Counter(
            "stowage_sent_bytes", "Response body bytes", registry=self.registry
        )
        self.reaper_runs = Counter(
            "stowage_reaper_runs", "TTL reaper sweeps", registry=self.registry
        )
        self.reaped = Counter(
            "stowage_reaped_objects", "Objects removed by the reaper", registry=self.registry
        )
        # By rule ("max_age", "keep_newest"), counted when the rule expires the object
        # (the reaper frees its bytes in the same sweep, or once a max_age is reached).
        self.retention_objects = Counter(
            "stowage_retention_expired_objects",
            "Objects expired by a namespace's retention rule",
            ["rule"],
            registry=self.registry,
        )
        self.retention_bytes = Counter(
            "stowage_retention_expired_bytes",
            "Bytes of the objects expired by a namespace's retention rule",
            ["rule"],
            registry=self.registry,
        )
        self.collected_blobs = Counter(
            "stowage_collected_blobs",
            "Blobs the reaper removed, unreferenced past the grace",
            registry=self.registry,
        )
        self.store = _StoreFigures()
        self._tallies: dict[tuple[str, str, int], _Tally] = {}
        self._received = self._sent = 0
        self._multiprocess_dir = os.environ.get(MULTIPROCESS_DIR)
        if self._multiprocess_dir is None:
            self.registry.register(self.store)

    def observe(
        self, route: str, method: str, status: int, seconds: float, sent: int, received: int
    ) -> None:
        key = (route, method, status)
        tally = self._tallies.get(key)
        if tally is None:
            tally = self._tallies[key] = _Tally()
        tally.count += 1
        tally.seconds += seconds
        tally.buckets[bisect_left(LATENCY_BUCKETS, seconds)] += 1  # Histogram.observe's "le"
        self._received += received
        self._sent += sent

    def flush(self) -> None:
        """Hand the tallies to prometheus_client. Its Histogram takes one observation at a
        time, so its per-bucket values (``_buckets``, ``_sum``) are added to directly."""
        tallies, self._tallies = self._tallies, {}
        for (route, method, status), tally in tallies.items():
            self.requests.labels(route, method, str(status)).inc(tally.count)
            histogram = self.latency.labels(route, method)
            histogram._sum.inc(tally.seconds)
            for bucket, count in zip(histogram._buckets, tally.buckets, strict=True):
                if count:
                    bucket.inc(count)
        received, sent, self._received, self._sent = self._received, self._sent, 0, 0
        if received:
            self.bytes_in.inc(received)
        if sent:
            self.bytes_out.inc(sent)

    async def flush_every_second(self) -> None:
        """Flush until cancelled (the app's lifespan), and once more then."""
        try:
            while True:
                await asyncio.sleep(FLUSH_SECONDS)
                self.flush()
        finally:
            self.flush()

    def render(self) -> bytes:
        self.flush()
        if self._multiprocess_dir is None:
            return generate_latest(self.registry)
        every_worker = CollectorRegistry()
        MultiProcessCollector(every_worker, self._multiprocess_dir)
        every_worker.register(self.store)
        return generate_latest(every_worker)
