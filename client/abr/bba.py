"""BBA-0, the buffer-based algorithm of Huang et al. (SIGCOMM 2014): a rate map from buffer level.

Rate map ``f(B)``: the lowest bitrate up to the reservoir, the highest from reservoir + cushion,
linear in between. BBA-0 keeps the previous rate until ``f(B)`` passes the next rung up (then it
takes the highest rung strictly below ``f(B)``) or falls to the next rung down (then the lowest
rung strictly above ``f(B)``); this hysteresis avoids oscillating around a rung. Stateless: the
previous rung comes from the snapshot.
"""
from __future__ import annotations

from .config import AbrConfig
from .snapshot import AbrSnapshot, Decision, DownloadProgress


def rate_map_bps(buffer_s: float, ladder_bps: tuple[int, ...], reservoir_s: float, cushion_s: float) -> float:
    """BBA's f(B): bitrate allowed at buffer level ``buffer_s``."""
    low, high = ladder_bps[0], ladder_bps[-1]
    if buffer_s <= reservoir_s:
        return float(low)
    if buffer_s >= reservoir_s + cushion_s:
        return float(high)
    return low + (high - low) * (buffer_s - reservoir_s) / cushion_s


def bba0_index(buffer_s: float, ladder_bps: tuple[int, ...], previous: int | None,
               reservoir_s: float, cushion_s: float) -> int:
    """The BBA-0 choice for a buffer level and the previous rung."""
    top = len(ladder_bps) - 1
    if buffer_s <= reservoir_s:
        return 0
    if buffer_s >= reservoir_s + cushion_s:
        return top
    f = rate_map_bps(buffer_s, ladder_bps, reservoir_s, cushion_s)
    prev = 0 if previous is None else previous
    rate_plus = ladder_bps[min(prev + 1, top)]
    rate_minus = ladder_bps[max(prev - 1, 0)]
    if prev < top and f >= rate_plus:
        return max(i for i, r in enumerate(ladder_bps) if r < f)
    if prev > 0 and f <= rate_minus:
        return min(i for i, r in enumerate(ladder_bps) if r > f)
    return prev


class Bba:
    """BBA-0 with ``bba_reservoir_s`` / ``bba_cushion_s`` from the config."""

    name = "bba"

    def __init__(self, cfg: AbrConfig = AbrConfig()) -> None:
        self.cfg = cfg

    def decide(self, snap: AbrSnapshot) -> Decision:
        index = bba0_index(snap.buffer_s, snap.ladder_bps, snap.last_index,
                           self.cfg.bba_reservoir_s, self.cfg.bba_cushion_s)
        f = rate_map_bps(snap.buffer_s, snap.ladder_bps, self.cfg.bba_reservoir_s, self.cfg.bba_cushion_s)
        return Decision(index, f"buffer {snap.buffer_s:.1f}s -> rate map {f / 1e3:.0f} kbps")

    def abandon(self, progress: DownloadProgress) -> Decision | None:
        """Never: Pensieve's BB does not abandon downloads (wrap it to add `should_abandon`)."""
        return None
