"""The simulated link: how long a download takes over a looped bandwidth trace.

A `SimLink` is a `Trace` at ``bandwidth * payload_factor / 8`` bytes per second per period, the
whole trace repeating, integrated by the client's one trace-integration core
(`client.traceclock.LoopedRate`, which the live shaper uses too): a download of ``n`` bytes
starting at trace time ``t`` ends at the first time the cumulative curve reaches
``bytes_at(t) + n``. Scalar methods serve the simulator; ``transfer_end_many`` is the same
formula over numpy arrays (the core's tables) for the offline optimum.
"""
from __future__ import annotations

import numpy as np

from ..traceclock import LoopedRate
from ..traces import Trace

__all__ = ["SimLink"]


class SimLink:
    """A trace as the simulator's network: transfer ends and per-request latencies."""

    def __init__(self, trace: Trace, payload_factor: float = 1.0) -> None:
        self.trace = trace
        self.rate = LoopedRate(trace.durations_s, [bw / 8.0 * payload_factor for bw in trace.bandwidths_bps])
        self.latencies = trace.latencies_s
        rates = list(self.rate.rates_Bps)
        self._times_np = np.asarray(self.rate.times_s)
        self._cum_np = np.asarray(self.rate.cum_bytes)
        self._rates_np = np.asarray(rates + [rates[-1]])

    @property
    def period_s(self) -> float:
        return self.rate.period_s

    @property
    def loop_bytes(self) -> float:
        return self.rate.loop_bytes

    def bytes_at(self, t: float) -> float:
        """Payload bytes the link carries from trace time 0 to ``t`` (looping)."""
        return self.rate.bytes_at(t)

    def transfer_end(self, start_s: float, size_bytes: float) -> float:
        """Trace time at which ``size_bytes`` started at ``start_s`` have all arrived."""
        return self.rate.transfer_end(start_s, size_bytes)

    def latency_at(self, t: float, default_s: float) -> float:
        """Latency of the period playing at trace time ``t`` (``default_s`` if the trace has none)."""
        if self.latencies is None:
            return default_s
        return self.latencies[self.rate.index_at(t)]

    # --- vectorised forms of the core's formula (offline optimum) ---
    def _index_many(self, local: np.ndarray) -> np.ndarray:
        # numpy types a ufunc's result loosely: the annotated names say what comes back
        index: np.ndarray = np.minimum(np.searchsorted(self._times_np, local, side="right") - 1,
                                       len(self.rate.rates_Bps) - 1)
        return index

    def bytes_at_many(self, t: np.ndarray) -> np.ndarray:
        loops = np.floor(t / self.period_s)
        local = np.maximum(t - loops * self.period_s, 0.0)
        i = self._index_many(local)
        total: np.ndarray = loops * self.loop_bytes + self._cum_np[i] + self._rates_np[i] * (local - self._times_np[i])
        return total

    def transfer_end_many(self, start_s: np.ndarray, size_bytes: float) -> np.ndarray:
        target = self.bytes_at_many(start_s) + size_bytes
        loops = np.floor(target / self.loop_bytes)
        local = target - loops * self.loop_bytes
        wrap = local <= 0.0
        loops = np.where(wrap, loops - 1, loops)
        local = np.where(wrap, self.loop_bytes, local)
        j = np.clip(np.searchsorted(self._cum_np, local, side="left"), 1, len(self._cum_np) - 1)
        rate = self._rates_np[j - 1]
        end = loops * self.period_s + self._times_np[j - 1] + (local - self._cum_np[j - 1]) / rate
        clamped: np.ndarray = np.maximum(end, start_s)
        return clamped

    def latency_at_many(self, t: np.ndarray, default_s: float) -> np.ndarray:
        if self.latencies is None:
            return np.full(t.shape, default_s)
        loops = np.floor(t / self.period_s)
        local = np.maximum(t - loops * self.period_s, 0.0)
        latencies: np.ndarray = np.asarray(self.latencies)[self._index_many(local)]
        return latencies
