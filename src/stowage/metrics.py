"""Prometheus metrics: what an operator graphs and alerts on.

One registry per app (tests run several apps in one process). Request metrics are
recorded by the ASGI middleware; store-wide figures are read at scrape time.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class _StoreFigures(Collector):
    """Objects and bytes stored (as of the last scrape) and the reaper's counters."""

    def __init__(self) -> None:
        self.objects = 0
        self.bytes = 0
        self.reaper_runs = 0
        self.reaped = 0

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        yield GaugeMetricFamily("stowage_objects", "Completed objects stored", self.objects)
        yield GaugeMetricFamily("stowage_stored_bytes", "Bytes in completed objects", self.bytes)
        yield CounterMetricFamily("stowage_reaper_runs", "TTL reaper sweeps", self.reaper_runs)
        yield CounterMetricFamily(
            "stowage_reaped_objects", "Objects removed by the reaper", self.reaped
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
        self.store = _StoreFigures()
        self.registry.register(self.store)

    def observe(
        self, route: str, method: str, status: int, seconds: float, sent: int, received: int
    ) -> None:
        self.requests.labels(route, method, str(status)).inc()
        self.latency.labels(route, method).observe(seconds)
        self.bytes_in.inc(received)
        self.bytes_out.inc(sent)

    def render(self) -> bytes:
        return generate_latest(self.registry)
