"""The throughput rule (Sabre's THROUGHPUT, as in dash.js / Shaka): a rung that fits the estimate.

The estimate is the dual EWMA of transfer throughput (`estimator.DualEwmaEstimator`, fed with the
snapshot's new samples); the rule picks the highest rung whose segment arrives within one segment
duration at ``throughput_safety`` x the estimate, latency included. The insufficient-buffer rule
then caps the segment size at ``factor x (buffer - latency) x estimate``, the factor starting at
``low_buffer_safety_init`` and shrinking by that ratio each decision down to
``low_buffer_safety_min`` (Sabre's BOLA-E/THROUGHPUT rule). Abandonment is Sabre's too (see
`ThroughputRule.abandon`).
"""
from __future__ import annotations

from .base import quality_from_throughput
from .config import AbrConfig
from .estimator import DualEwmaEstimator, SampleCursor
from .snapshot import AbrSnapshot, Decision, DownloadProgress


class InsufficientBufferRule:
    """Sabre's low-buffer cap; keeps its decaying safety factor between decisions."""

    def __init__(self, cfg: AbrConfig) -> None:
        self.safety = cfg.low_buffer_safety_init
        self.ratio = cfg.low_buffer_safety_init
        self.minimum = cfg.low_buffer_safety_min

    def cap(self, snap: AbrSnapshot, index: int, throughput_bps: float, latency_s: float) -> int:
        safe_bits = self.safety * (snap.buffer_s - latency_s) * throughput_bps
        self.safety = max(self.safety * self.ratio, self.minimum)
        for q in range(index):
            if snap.ladder_bps[q + 1] * snap.segment_duration_s > safe_bits:
                return q
        return index


class ThroughputRule:
    """Throughput-based ABR with the insufficient-buffer rule."""

    name = "throughput"

    def __init__(self, cfg: AbrConfig = AbrConfig()) -> None:
        self.cfg = cfg
        self.estimator = DualEwmaEstimator(cfg.ewma_fast_half_life_s, cfg.ewma_slow_half_life_s,
                                           default_bps=cfg.initial_bandwidth_bps, exclude_latency=True)
        self.cursor = SampleCursor()
        self.ibr = InsufficientBufferRule(cfg)

    def observe(self, snap: AbrSnapshot) -> None:
        """Take the snapshot's new samples into the estimator (idempotent per snapshot)."""
        self.estimator.add_all(s for s in self.cursor.take(snap.samples) if s.complete)

    def decide(self, snap: AbrSnapshot) -> Decision:
        self.observe(snap)
        bw = self.estimator.estimate_bps()
        lat = self.estimator.latency_s()
        index = quality_from_throughput(snap.ladder_bps, snap.segment_duration_s, bw * self.cfg.throughput_safety, lat)
        if not self.estimator.ready:
            return Decision(index, f"start-up: default estimate {bw / 1e3:.0f} kbps")
        capped = self.ibr.cap(snap, index, bw, lat)
        if capped < index:
            return Decision(capped, f"insufficient buffer {snap.buffer_s:.1f}s at {bw / 1e3:.0f} kbps")
        return Decision(index, f"throughput {bw / 1e3:.0f} kbps x {self.cfg.throughput_safety}")

    def abandon(self, progress: DownloadProgress) -> Decision | None:
        """Sabre's ThroughputRule.check_abandon: after ``abandon_grace_s``, if the download will take
        more than ``abandon_multiplier`` segment durations, drop to the rung that fits the rate it
        is getting (when that segment is smaller than what is left)."""
        p = progress
        transfer_s = p.elapsed_s - p.ttfb_s
        if p.elapsed_s < self.cfg.abandon_grace_s or transfer_s <= 0 or p.downloaded_bytes <= 0:
            return None
        rate = 8.0 * p.downloaded_bytes / transfer_s
        left_bytes = p.size_bytes - p.downloaded_bytes
        if p.elapsed_s + 8.0 * left_bytes / rate <= self.cfg.abandon_multiplier * p.segment_duration_s:
            return None
        q = quality_from_throughput(p.ladder_bps, p.segment_duration_s, rate * self.cfg.throughput_safety,
                                    self.estimator.latency_s())
        estimate_bytes = p.size_bytes * p.ladder_bps[q] / p.ladder_bps[p.rung]
        if q >= p.rung or estimate_bytes >= left_bytes:
            return None
        return Decision(q, f"abandon: {rate / 1e3:.0f} kbps cannot finish within "
                           f"{self.cfg.abandon_multiplier} segments")
