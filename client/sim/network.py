"""The simulated link: how long a download takes over a looped bandwidth trace.

A `Link` turns a `Trace` into cumulative payload bytes over trace time (piecewise linear, each
period at ``bandwidth * payload_factor / 8`` bytes per second, the whole trace repeating), so a
download of ``n`` bytes starting at trace time ``t`` ends at the first time the cumulative curve
reaches ``bytes_at(t) + n``. This is Pensieve's delivery loop (``fixed_env.get_video_chunk``)
and Sabre's ``NetworkModel.do_download`` in closed form. Scalar methods serve the simulator;
``transfer_end_many`` is the vectorised form for the offline optimum.
"""
from __future__ import annotations

import math
from bisect import bisect_left, bisect_right

import numpy as np

from ..traces import Trace


class Link:
    def __init__(self, trace: Trace, payload_factor: float = 1.0) -> None:
        self.trace = trace
        times = [0.0]
        cum = [0.0]
        rates: list[float] = []
        for d, bw in zip(trace.durations_s, trace.bandwidths_bps):
            rate = bw / 8.0 * payload_factor
            times.append(times[-1] + d)
            cum.append(cum[-1] + rate * d)
            rates.append(rate)
        self.times, self.cum, self.rates = times, cum, rates
        self.period_s = times[-1]
        self.loop_bytes = cum[-1]
        self.latencies = trace.latencies_s
        self._times_np = np.asarray(times)
        self._cum_np = np.asarray(cum)
        self._rates_np = np.asarray(rates + [rates[-1]])

    def _locate(self, t: float) -> tuple[int, float]:
        loops = math.floor(t / self.period_s)
        local = t - loops * self.period_s
        if local < 0.0:
            local = 0.0
        return loops, local

    def bytes_at(self, t: float) -> float:
        """Payload bytes the link carries from trace time 0 to ``t`` (looping)."""
        loops, local = self._locate(t)
        i = min(bisect_right(self.times, local) - 1, len(self.rates) - 1)
        return loops * self.loop_bytes + self.cum[i] + self.rates[i] * (local - self.times[i])

    def transfer_end(self, start_s: float, size_bytes: float) -> float:
        """Trace time at which ``size_bytes`` started at ``start_s`` have all arrived."""
        if size_bytes <= 0:
            return start_s
        target = self.bytes_at(start_s) + size_bytes
        loops = math.floor(target / self.loop_bytes)
        local = target - loops * self.loop_bytes
        if local <= 0.0:
            loops -= 1
            local = self.loop_bytes
        j = bisect_left(self.cum, local)
        j = min(max(j, 1), len(self.cum) - 1)
        end = loops * self.period_s + self.times[j - 1] + (local - self.cum[j - 1]) / self.rates[j - 1]
        return max(end, start_s)

    def latency_at(self, t: float, default_s: float) -> float:
        """Latency of the period playing at trace time ``t`` (``default_s`` if the trace has none)."""
        if self.latencies is None:
            return default_s
        _, local = self._locate(t)
        i = min(bisect_right(self.times, local) - 1, len(self.rates) - 1)
        return self.latencies[i]

    # --- vectorised forms (offline optimum) ---
    def bytes_at_many(self, t: np.ndarray) -> np.ndarray:
        loops = np.floor(t / self.period_s)
        local = np.maximum(t - loops * self.period_s, 0.0)
        i = np.minimum(np.searchsorted(self._times_np, local, side="right") - 1, len(self.rates) - 1)
        return loops * self.loop_bytes + self._cum_np[i] + self._rates_np[i] * (local - self._times_np[i])

    def transfer_end_many(self, start_s: np.ndarray, size_bytes: float) -> np.ndarray:
        target = self.bytes_at_many(start_s) + size_bytes
        loops = np.floor(target / self.loop_bytes)
        local = target - loops * self.loop_bytes
        wrap = local <= 0.0
        loops = np.where(wrap, loops - 1, loops)
        local = np.where(wrap, self.loop_bytes, local)
        j = np.clip(np.searchsorted(self._cum_np, local, side="left"), 1, len(self.cum) - 1)
        rate = self._rates_np[j - 1]
        end = loops * self.period_s + self._times_np[j - 1] + (local - self._cum_np[j - 1]) / rate
        return np.maximum(end, start_s)

    def latency_at_many(self, t: np.ndarray, default_s: float) -> np.ndarray:
        if self.latencies is None:
            return np.full(t.shape, default_s)
        loops = np.floor(t / self.period_s)
        local = np.maximum(t - loops * self.period_s, 0.0)
        i = np.minimum(np.searchsorted(self._times_np, local, side="right") - 1, len(self.rates) - 1)
        return np.asarray(self.latencies)[i]
