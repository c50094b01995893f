"""Prometheus metrics of one origin app, in its own registry (never the process-global one).

    origin_requests_total{method,status}        requests answered
    origin_response_bytes_total                 body bytes sent (sendfile included)
    origin_storage_latency_seconds{op,outcome}  storage calls: stat, read (first chunk), check, and
                                                open (local files: resolve, open, fstat, small reads)
"""
from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Any, Iterator

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

#: Storage latency buckets in seconds: local files answer in microseconds, S3 in milliseconds.
STORAGE_LATENCY_BUCKETS_S = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                             2.5, 5.0, 10.0)


#: Methods counted under their own name; any other is counted as ``OTHER``.
KNOWN_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "POST", "PUT", "DELETE", "PATCH", "CONNECT", "TRACE"})


class OriginMetrics:
    """The counters and histograms the handlers update; ``render()`` gives the text format."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter("origin_requests", "Requests answered, by method and status.",
                                ("method", "status"), registry=self.registry)
        self.response_bytes = Counter("origin_response_bytes", "Body bytes sent.",
                                      registry=self.registry)
        self.storage_latency = Histogram(
            "origin_storage_latency_seconds", "Latency of storage calls, by operation and outcome.",
            ("op", "outcome"), buckets=STORAGE_LATENCY_BUCKETS_S, registry=self.registry)
        self._request_counters: dict[tuple[str, int], Any] = {}

    def count_request(self, method: str, status: int, body_bytes: int) -> None:
        if method not in KNOWN_METHODS:  # a client's made-up methods must not grow the label set
            method = "OTHER"
        counter = self._request_counters.get((method, status))
        if counter is None:  # labels() costs more than the increment: keep each child
            counter = self._request_counters[(method, status)] = self.requests.labels(
                method=method, status=str(status))
        counter.inc()
        if body_bytes:
            self.response_bytes.inc(body_bytes)

    @contextmanager
    def time_storage(self, op: str) -> Iterator[None]:
        """Time one storage call; the outcome label is ``ok`` or the exception's class name."""
        start_s = time.perf_counter()
        outcome = "ok"
        try:
            yield
        except BaseException as e:
            outcome = type(e).__name__
            raise
        finally:
            self.storage_latency.labels(op=op, outcome=outcome).observe(time.perf_counter() - start_s)

    def render(self) -> bytes:
        return generate_latest(self.registry)
