"""Prometheus metrics: what an operator graphs and alerts on.

One registry per app (tests run several apps in one process). Request metrics are
recorded by the ASGI middleware, the reaper counts its sweeps; store-wide figures are read
from the database at scrape time.

``stowage serve`` runs several worker processes and any of them may answer a scrape, so it
sets ``PROMETHEUS_MULTIPROC_DIR`` (``server.metrics_directory``) before a worker imports
prometheus_client: every counter and histogram then lives in a file per process there, and
a scrape adds up the files of every worker this server start has had. There are no
live gauges; the store figures come from the database, whoever is asked.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"


class _StoreFigures(Collector):
    """Objects and bytes stored, as of the last scrape."""

    def __init__(self) -> None:
        self.objects = 0
        self.bytes = 0

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield GaugeMetricFamily("stowage_objects", "Completed objects stored", self.objects)
        yield GaugeMetricFamily("stowage_stored_bytes", "Bytes in completed objects", self.bytes)


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
        self.store = _StoreFigures()
        self._multiprocess_dir = os.environ.get(MULTIPROCESS_DIR)
        if self._multiprocess_dir is None:
            self.registry.register(self.store)

    def observe(
        self, route: str, method: str, status: int, seconds: float, sent: int, received: int
    ) -> None:
        self.requests.labels(route, method, str(status)).inc()
        self.latency.labels(route, method).observe(seconds)
        self.bytes_in.inc(received)
        self.bytes_out.inc(sent)

    def render(self) -> bytes:
        if self._multiprocess_dir is None:
            return generate_latest(self.registry)
        every_worker = CollectorRegistry()
        MultiProcessCollector(every_worker, self._multiprocess_dir)
        every_worker.register(self.store)
        return generate_latest(every_worker)
