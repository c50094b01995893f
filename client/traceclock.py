"""When does a transfer end over a looped, piecewise-constant bandwidth trace (pure, no I/O)?

`LoopedRate` is the one trace-integration core of the client: the live shaper
(`network.BandwidthSchedule`, behind `network.ShapedLink`) and the simulator (`sim.network.SimLink`)
both ask it. It turns periods (duration, bytes per second) into the cumulative payload bytes
carried from time 0 (piecewise linear, the whole trace repeating), so a transfer of ``n`` bytes
started at ``t`` ends at the first time the cumulative curve reaches ``bytes_at(t) + n``. This is
Pensieve's delivery loop (``fixed_env.get_video_chunk``) and Sabre's ``NetworkModel.do_download``
in closed form. Periods of rate 0 (outages) are allowed; a trace that carries nothing is not.

The tables (`times_s`, `cum_bytes`, `rates_Bps`) are public so that vectorised forms (the
simulator's offline optimum) compute the very same formula over arrays.
"""
from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Sequence

__all__ = ["LoopedRate"]


class LoopedRate:
    """A looped piecewise-constant rate: ``durations_s[i]`` seconds at ``rates_Bps[i]`` bytes/s."""

    __slots__ = ("times_s", "cum_bytes", "rates_Bps", "period_s", "loop_bytes")

    def __init__(self, durations_s: Sequence[float], rates_Bps: Sequence[float]) -> None:
        if not durations_s or len(durations_s) != len(rates_Bps):
            raise ValueError("a looped rate needs equally long, non-empty period lists")
        times = [0.0]
        cum = [0.0]
        for d, rate in zip(durations_s, rates_Bps):
            times.append(times[-1] + d)
            cum.append(cum[-1] + rate * d)
        self.times_s: tuple[float, ...] = tuple(times)
        self.cum_bytes: tuple[float, ...] = tuple(cum)
        self.rates_Bps: tuple[float, ...] = tuple(rates_Bps)
        self.period_s = times[-1]
        self.loop_bytes = cum[-1]
        if not (self.period_s > 0 and self.loop_bytes > 0):
            raise ValueError("a looped rate needs a positive length and must carry data")

    def _locate(self, t_s: float) -> tuple[int, float]:
        """(whole loops before ``t_s``, time within the loop)."""
        loops = math.floor(t_s / self.period_s)
        local = t_s - loops * self.period_s
        if local < 0.0:
            local = 0.0
        return loops, local

    def index_at(self, t_s: float) -> int:
        """Index of the period playing at time ``t_s`` (looping)."""
        _, local = self._locate(t_s)
        return min(bisect_right(self.times_s, local) - 1, len(self.rates_Bps) - 1)

    def bytes_at(self, t_s: float) -> float:
        """Bytes carried from time 0 to ``t_s`` (looping)."""
        loops, local = self._locate(t_s)
        i = min(bisect_right(self.times_s, local) - 1, len(self.rates_Bps) - 1)
        return loops * self.loop_bytes + self.cum_bytes[i] + self.rates_Bps[i] * (local - self.times_s[i])

    def transfer_end(self, start_s: float, size_bytes: float) -> float:
        """Time at which ``size_bytes`` started at ``start_s`` have all crossed."""
        if size_bytes <= 0:
            return start_s
        target = self.bytes_at(start_s) + size_bytes
        loops = math.floor(target / self.loop_bytes)
        local = target - loops * self.loop_bytes
        if local <= 0.0:
            loops -= 1
            local = self.loop_bytes
        cum = self.cum_bytes
        j = bisect_left(cum, local)
        j = min(max(j, 1), len(cum) - 1)
        end = loops * self.period_s + self.times_s[j - 1] + (local - cum[j - 1]) / self.rates_Bps[j - 1]
        return max(end, start_s)
