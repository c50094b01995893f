"""Bandwidth estimation: the dual EWMA estimator (Shaka / hls.js / Sabre) and the sample cursor.

Dual EWMA: two exponentially weighted moving averages of per-download throughput, weighted by
download time, one with a short and one with a long half-life; the estimate is the smaller of the
two (quick to fall, slow to rise). Each EWMA is corrected for its zero start the Shaka way:
``estimate / (1 - alpha ** total_weight)``. Latency is tracked the same way per download and the
conservative (larger) of the two is reported.

`SampleCursor` is how a stateful algorithm takes the snapshot's samples: each sample once, in
``seq`` order, so that feeding the same snapshots gives the same state.
"""
from __future__ import annotations

import math
from collections.abc import Iterable

from .snapshot import ThroughputSample


class SampleCursor:
    """Yields the samples of a snapshot not seen before (``seq`` greater than the last one taken)."""

    __slots__ = ("last_seq",)

    def __init__(self) -> None:
        self.last_seq = -1

    def take(self, samples: Iterable[ThroughputSample]) -> list[ThroughputSample]:
        fresh = [s for s in samples if s.seq > self.last_seq]
        if fresh:
            self.last_seq = fresh[-1].seq
        return fresh


class Ewma:
    """One EWMA with a half-life in units of sample weight (seconds of download time)."""

    __slots__ = ("half_life", "_alpha", "_estimate", "_total_weight")

    def __init__(self, half_life: float) -> None:
        if half_life <= 0:
            raise ValueError("half-life must be > 0")
        self.half_life = half_life
        self._alpha = math.exp(math.log(0.5) / half_life)
        self._estimate = 0.0
        self._total_weight = 0.0

    def add(self, weight: float, value: float) -> None:
        adj = self._alpha ** weight
        self._estimate = value * (1.0 - adj) + adj * self._estimate
        self._total_weight += weight

    @property
    def total_weight(self) -> float:
        return self._total_weight

    def estimate(self) -> float:
        zero_factor = 1.0 - self._alpha ** self._total_weight
        return self._estimate / zero_factor if zero_factor > 0 else 0.0


class DualEwmaEstimator:
    """Throughput (bps) and latency (s) estimates from download samples.

    ``exclude_latency``: rate over the transfer time (first to last byte) rather than over the whole
    request. Samples smaller than ``min_sample_bytes`` are ignored (too short to measure); until
    ``min_total_bytes`` have been seen the estimate is ``default_bps``.
    """

    def __init__(self, fast_half_life_s: float = 3.0, slow_half_life_s: float = 8.0,
                 default_bps: float = 1_000_000.0, exclude_latency: bool = True,
                 min_sample_bytes: int = 0, min_total_bytes: int = 0) -> None:
        self.fast = Ewma(fast_half_life_s)
        self.slow = Ewma(slow_half_life_s)
        self.fast_latency = Ewma(fast_half_life_s)
        self.slow_latency = Ewma(slow_half_life_s)
        self.default_bps = default_bps
        self.exclude_latency = exclude_latency
        self.min_sample_bytes = min_sample_bytes
        self.min_total_bytes = min_total_bytes
        self.total_bytes = 0
        self.count = 0

    def add(self, sample: ThroughputSample) -> None:
        if sample.size_bytes < self.min_sample_bytes or sample.duration_s <= 0:
            return
        if self.exclude_latency:
            weight, rate = sample.transfer_s, sample.transfer_bps
        else:
            weight, rate = sample.duration_s, sample.throughput_bps
        self.fast.add(weight, rate)
        self.slow.add(weight, rate)
        # latency is averaged per download (weight 1 per sample), like Sabre's
        self.fast_latency.add(1.0, sample.ttfb_s)
        self.slow_latency.add(1.0, sample.ttfb_s)
        self.total_bytes += sample.size_bytes
        self.count += 1

    def add_all(self, samples: Iterable[ThroughputSample]) -> None:
        for s in samples:
            self.add(s)

    @property
    def ready(self) -> bool:
        return self.count > 0 and self.total_bytes >= self.min_total_bytes

    def estimate_bps(self) -> float:
        if not self.ready:
            return self.default_bps
        return min(self.fast.estimate(), self.slow.estimate())

    def latency_s(self) -> float:
        if self.count == 0:
            return 0.0
        return max(self.fast_latency.estimate(), self.slow_latency.estimate())


def harmonic_mean(values: Iterable[float]) -> float:
    """Harmonic mean of positive values (0 if any value is 0 or there are none)."""
    vals = list(values)
    if not vals or min(vals) <= 0:
        return 0.0
    return len(vals) / sum(1.0 / v for v in vals)
