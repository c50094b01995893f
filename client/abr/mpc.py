"""Robust MPC (Yin et al. SIGCOMM 2015), as Pensieve's baseline ``test/mpc.py`` runs it.

Prediction: the harmonic mean of the last ``mpc_window`` per-download throughputs (bytes over the
whole request, latency included), divided by ``1 + max`` of the last ``mpc_window`` relative
prediction errors (``|predicted - actual| / actual`` of each past harmonic-mean prediction).
Plan: the exact best QoE_lin rung sequence over the next ``mpc_horizon`` segments at that
bandwidth (`planner.best_plan`, no buffer cap, no terminal value), fetching the first rung.
Differences from Pensieve's script: the real sizes of the next segments are used (the script
reads one segment further on), and the search is exact but pruned rather than brute force.
"""
from __future__ import annotations

from collections import deque

from .config import AbrConfig
from .estimator import SampleCursor, harmonic_mean
from .planner import best_plan
from .snapshot import AbrSnapshot, Decision, DownloadProgress


class RobustPredictor:
    """Harmonic mean of recent throughputs, discounted by the worst recent relative error.

    ``error_cap`` (None: no cap, as in Pensieve) bounds the error a completed download adds to
    the discount: one download that crawled (an outage, a slow start) gives an error of several
    times 1, and the uncapped discount then divides the next five predictions by that much. An
    abandoned download's error is not capped while it is the latest news: it is the evidence
    that the link collapsed, and a decision re-asked after it must not pick a rung that will be
    abandoned again. Once a download completes, the link has been measured again and the
    abandoned download's error is capped like any other: left uncapped for the whole window,
    one abandonment (2.3 Mbps predicted, 0.6 Mbps measured: error 2.9) held the next four
    predictions at 170-280 kbps on a 0.65-0.7 Mbps link, with 18-25 s of buffer.
    """

    def __init__(self, window: int = 5, error_cap: float | None = None) -> None:
        self.window = window
        self.error_cap = error_cap
        self.throughputs: deque[float] = deque(maxlen=window)
        self.errors: deque[float] = deque(maxlen=window)
        self.last_prediction: float | None = None

    def add(self, throughput_bps: float, complete: bool = True) -> None:
        if throughput_bps <= 0:
            return
        error = 0.0
        if self.last_prediction is not None:
            error = abs(self.last_prediction - throughput_bps) / throughput_bps
            if complete and self.error_cap is not None:
                error = min(error, self.error_cap)
        if complete and self.error_cap is not None:
            # the link has been measured again: an earlier abandonment's error is capped now too
            cap = self.error_cap
            for i, e in enumerate(self.errors):
                if e > cap:
                    self.errors[i] = cap
        self.errors.append(error)
        self.throughputs.append(throughput_bps)
        self.last_prediction = harmonic_mean(self.throughputs)

    def predict_bps(self, default_bps: float) -> float:
        if not self.throughputs:
            return default_bps
        return harmonic_mean(self.throughputs) / (1.0 + max(self.errors))


def planning_sizes(snap: AbrSnapshot, horizon: int) -> list[list[float]]:
    """Sizes (bytes) of the next ``horizon`` segments at every rung (nominal where unknown)."""
    return [[snap.segment_size_bytes(k, r) for r in range(snap.rungs)] for k in range(horizon)]


class RobustMpc:
    name = "mpc"

    def __init__(self, cfg: AbrConfig = AbrConfig()) -> None:
        self.cfg = cfg
        self.cursor = SampleCursor()
        self.predictor = RobustPredictor(cfg.mpc_window)

    def decide(self, snap: AbrSnapshot) -> Decision:
        for s in self.cursor.take(snap.samples):
            if s.complete:
                self.predictor.add(s.throughput_bps)
        bw = self.predictor.predict_bps(self.cfg.initial_bandwidth_bps)
        left = snap.segments_left
        horizon = self.cfg.mpc_horizon if left is None else max(1, min(self.cfg.mpc_horizon, left))
        plan = best_plan(planning_sizes(snap, horizon), [r / 1e6 for r in snap.ladder_bps], [bw] * horizon,
                         snap.buffer_s, snap.last_index, snap.segment_duration_s,
                         rebuffer_penalty=self.cfg.rebuffer_penalty, smooth_penalty=self.cfg.smooth_penalty)
        return Decision(plan.first, f"mpc: {bw / 1e3:.0f} kbps over {horizon} segments, buffer {snap.buffer_s:.1f}s")

    def abandon(self, progress: DownloadProgress) -> Decision | None:
        """Never: Pensieve's MPC does not abandon downloads (wrap it to add `should_abandon`)."""
        return None
