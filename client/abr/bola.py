"""BOLA (Spiteri, Urgaonkar, Sitaraman): Lyapunov buffer-based ABR, basic and enhanced (BOLA-E).

BOLA picks the rung maximising ``(Vp * (u_q + gp) - buffer) / bitrate_q`` with utilities
``u_q = ln(bitrate_q / bitrate_0)`` (+1 for BOLA-E). Between rungs q-1 and q it switches at the
buffer level ``Vp * (gp + (b_q * u_{q-1} - b_{q-1} * u_q) / (b_q - b_{q-1}))`` (see
`switch_level_s`). This follows Sabre's ``Bola`` and ``BolaEnh`` (UMass-LIDS/sabre,
``src/sabre.py``) with times in seconds:

* BOLA basic: ``Vp = (B - p) / (u_max + gp)`` where ``B`` is the max buffer, shrunk near the start
  and the end of the video to ``max(min(i, n - i) / 2, 3)`` segments; an upswitch beyond the
  throughput rung is limited to one rung above it.
* BOLA-E: ``gp`` and ``Vp`` put the lowest rung's upper threshold at ``bola_min_buffer_s``; at
  start-up it picks the throughput rung and sets a *placeholder* (virtual buffer) so that rung is
  BOLA's choice; the placeholder grows with idle time (buffer full) and is kept between the
  bounds of the downloaded rung after each download; the insufficient-buffer rule caps the rung.
  Sabre's BOLA-E may also ask the player to wait before a download; a `Decision` has no delay,
  so that wait is not taken (its placeholder bookkeeping is kept).

Both abandon a download the Sabre way (`BolaBasic.abandon`, `BolaE.abandon`).
"""
from __future__ import annotations

import math

from .base import quality_from_throughput
from .config import AbrConfig
from .estimator import DualEwmaEstimator, SampleCursor
from .snapshot import AbrSnapshot, Decision, DownloadProgress, ThroughputSample
from .throughput import InsufficientBufferRule


def bola_choice(level_s: float, ladder_bps: tuple[int, ...], utilities: list[float], vp: float, gp: float) -> int:
    """argmax_q (Vp (u_q + gp) - level) / bitrate_q (lowest rung on ties)."""
    best, best_score = 0, -math.inf
    for q, rate in enumerate(ladder_bps):
        score = (vp * (utilities[q] + gp) - level_s) / rate
        if score > best_score:
            best, best_score = q, score
    return best


def switch_level_s(q: int, ladder_bps: tuple[int, ...], utilities: list[float], vp: float, gp: float) -> float:
    """Buffer level at which BOLA's scores for rungs q-1 and q are equal (q >= 1)."""
    b, bb = ladder_bps[q], ladder_bps[q - 1]
    u, uu = utilities[q], utilities[q - 1]
    return vp * (gp + (b * uu - bb * u) / (b - bb))


def _estimator(cfg: AbrConfig) -> DualEwmaEstimator:
    return DualEwmaEstimator(cfg.ewma_fast_half_life_s, cfg.ewma_slow_half_life_s,
                             default_bps=cfg.initial_bandwidth_bps, exclude_latency=True)


class BolaBasic:
    """Sabre's BOLA (used alone and inside DYNAMIC); remembers its own last proposal."""

    name = "bola_basic"

    def __init__(self, cfg: AbrConfig = AbrConfig()) -> None:
        self.cfg = cfg
        self.estimator = _estimator(cfg)
        self.cursor = SampleCursor()
        self.last_quality = 0
        self._last_params: tuple[list[float], float, float] | None = None

    def parameters(self, snap: AbrSnapshot) -> tuple[list[float], float, float]:
        """Utilities, Vp and gp for this snapshot (Vp depends on the position in the video)."""
        utilities = [math.log(r / snap.ladder_bps[0]) for r in snap.ladder_bps]
        gp = self.cfg.bola_gamma_p
        p = snap.segment_duration_s
        total = snap.segments_total if snap.segments_total is not None else 10**9
        t = max(min(snap.segment_index, total - snap.segment_index) / 2.0, 3.0) * p
        buffer_s = min(snap.max_buffer_s, t)
        vp = (buffer_s - p) / (utilities[-1] + gp)
        return utilities, vp, gp

    def decide(self, snap: AbrSnapshot) -> Decision:
        self.estimator.add_all(s for s in self.cursor.take(snap.samples) if s.complete)
        utilities, vp, gp = self.parameters(snap)
        self._last_params = (utilities, vp, gp)
        quality = bola_choice(snap.buffer_s, snap.ladder_bps, utilities, vp, gp)
        reason = f"bola buffer {snap.buffer_s:.1f}s"
        if quality > self.last_quality:
            quality_t = quality_from_throughput(snap.ladder_bps, snap.segment_duration_s,
                                                self.estimator.estimate_bps(), self.estimator.latency_s())
            if quality <= quality_t:
                pass
            elif self.last_quality > quality_t:
                quality, reason = self.last_quality, "bola: hold, throughput below"
            else:
                quality, reason = quality_t + 1, "bola: one above throughput rung"
        self.last_quality = quality
        return Decision(quality, reason)

    def abandon(self, progress: DownloadProgress) -> Decision | None:
        """Sabre's Bola.check_abandon: switch when a lower rung's BOLA score per remaining bit is higher."""
        p = progress
        remain = p.size_bytes - p.downloaded_bytes
        if self._last_params is None or p.downloaded_bytes <= 0 or remain <= 0:
            return None
        utilities, vp, gp = self._last_params
        score = (vp * (gp + utilities[p.rung]) - p.buffer_s) / remain
        if score < 0:
            return None
        target = None
        for q in range(p.rung):
            other = p.size_bytes * p.ladder_bps[q] / p.ladder_bps[p.rung]
            other_score = (vp * (gp + utilities[q]) - p.buffer_s) / other
            if other < remain and other_score > score:
                score, target = other_score, q
        if target is None:
            return None
        self.last_quality = target
        return Decision(target, f"bola abandon at buffer {p.buffer_s:.1f}s")


class BolaE:
    """Sabre's BOLA-E: placeholder, insufficient-buffer rule, throughput start-up."""

    name = "bola"

    def __init__(self, cfg: AbrConfig = AbrConfig()) -> None:
        self.cfg = cfg
        self.estimator = _estimator(cfg)
        self.cursor = SampleCursor()
        self.ibr = InsufficientBufferRule(cfg)
        self.steady = False
        self.placeholder_s = 0.0
        self._params: tuple[tuple[int, ...], float, list[float], float, float] | None = None

    def parameters(self, snap: AbrSnapshot) -> tuple[list[float], float, float]:
        key = (snap.ladder_bps, snap.max_buffer_s)
        if self._params is None or self._params[:2] != key:
            utilities = [math.log(r / snap.ladder_bps[0]) + 1.0 for r in snap.ladder_bps]
            buffer_s = self.cfg.bola_min_buffer_s + self.cfg.bola_min_buffer_per_level_s * len(snap.ladder_bps)
            buffer_s = max(buffer_s, snap.max_buffer_s)
            gp = (utilities[-1] - 1.0) / (buffer_s / self.cfg.bola_min_buffer_s - 1.0)
            vp = self.cfg.bola_min_buffer_s / gp
            self._params = (snap.ladder_bps, snap.max_buffer_s, utilities, vp, gp)
        return self._params[2], self._params[3], self._params[4]

    def min_level_s(self, q: int, ladder: tuple[int, ...], utilities: list[float], vp: float, gp: float) -> float:
        """Lowest buffer level at which BOLA prefers rung q to every lower rung."""
        level = 0.0
        for lower in range(q):
            if utilities[lower] < utilities[q]:
                b, bb = ladder[q], ladder[lower]
                level = max(level, vp * (gp + (b * utilities[lower] - bb * utilities[q]) / (b - bb)))
        return level

    def _report_download(self, snap: AbrSnapshot, sample: ThroughputSample, utilities: list[float], vp: float,
                         gp: float) -> None:
        """Sabre's report_download: keep the placeholder within the downloaded rung's bounds."""
        q = sample.rung if sample.rung is not None else (snap.last_index or 0)
        level = snap.buffer_s + snap.idle_s  # right after the download, before any idle wait
        if sample.complete:
            level_was = level + sample.duration_s
            max_placeholder = max(0.0, vp * (utilities[q] + gp) - level_was)
            self.placeholder_s = min(self.placeholder_s, max_placeholder)
            if level > 0:
                self.placeholder_s = max(self.placeholder_s, self.min_level_s(q, snap.ladder_bps, utilities, vp, gp) - level_was)

    def decide(self, snap: AbrSnapshot) -> Decision:
        utilities, vp, gp = self.parameters(snap)
        fresh = [s for s in self.cursor.take(snap.samples)]
        if self.steady:
            for s in fresh:
                self._report_download(snap, s, utilities, vp, gp)
            self.placeholder_s += snap.idle_s
        self.estimator.add_all(s for s in fresh if s.complete)
        level = snap.buffer_s
        last = snap.last_index if snap.last_index is not None else 0
        if not self.steady:
            if not self.estimator.ready:
                return Decision(last, "bola-e start-up: no throughput yet")
            self.steady = True
            quality = quality_from_throughput(snap.ladder_bps, snap.segment_duration_s,
                                              self.estimator.estimate_bps(), self.estimator.latency_s())
            self.placeholder_s = max(0.0, self.min_level_s(quality, snap.ladder_bps, utilities, vp, gp) - level)
            return Decision(quality, "bola-e start-up: throughput rung")

        bw, lat = self.estimator.estimate_bps(), self.estimator.latency_s()
        quality = bola_choice(level + self.placeholder_s, snap.ladder_bps, utilities, vp, gp)
        reason = f"bola-e buffer {level:.1f}s + placeholder {self.placeholder_s:.1f}s"
        quality_t = quality_from_throughput(snap.ladder_bps, snap.segment_duration_s, bw, lat)
        if quality > last and quality > quality_t:
            quality = max(last, quality_t) + 1
            reason = "bola-e: one above throughput rung"
        excess = level + self.placeholder_s - vp * (utilities[quality] + gp)
        if excess > 0:  # Sabre would wait; the placeholder gives way first
            self.placeholder_s = max(0.0, self.placeholder_s - excess)
        capped = self.ibr.cap(snap, quality, bw, lat)
        if capped < quality:
            quality = capped
            max_placeholder = max(0.0, self.min_level_s(quality, snap.ladder_bps, utilities, vp, gp) - level)
            self.placeholder_s = min(max_placeholder, self.placeholder_s)
            reason = f"bola-e insufficient buffer {level:.1f}s"
        return Decision(quality, reason)

    def abandon(self, progress: DownloadProgress) -> Decision | None:
        """Sabre's BolaEnh.check_abandon (scores from buffer + placeholder after one more latency);
        on abandoning, the placeholder drops to the new rung's level (Sabre's report_download)."""
        p = progress
        remain = p.size_bytes - p.downloaded_bytes
        if not self.steady or self._params is None or p.downloaded_bytes <= 0 or remain <= 0:
            return None
        utilities, vp, gp = self._params[2], self._params[3], self._params[4]
        transfer_s = p.elapsed_s - p.ttfb_s
        if transfer_s <= 0:
            return None
        level = max(0.0, p.buffer_s + self.placeholder_s - p.ttfb_s)
        rate = p.downloaded_bytes / transfer_s
        size_left = remain - p.ttfb_s * rate
        if size_left <= 0:
            return None
        score = (vp * (gp + utilities[p.rung]) - level) / size_left
        target = None
        for q in range(p.rung):
            other = p.size_bytes * p.ladder_bps[q] / p.ladder_bps[p.rung]
            other_score = (vp * (gp + utilities[q]) - level) / other
            if other < size_left and other_score > score:
                score, target = other_score, q
        if target is None:
            return None
        want = self.min_level_s(target, p.ladder_bps, utilities, vp, gp) if target > 0 else self.cfg.bola_min_buffer_s
        self.placeholder_s = min(self.placeholder_s, max(0.0, want - p.buffer_s))
        return Decision(target, f"bola-e abandon at buffer {p.buffer_s:.1f}s")
