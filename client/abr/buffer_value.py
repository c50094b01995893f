"""What buffer left at the end of a plan is worth: the default ABR's terminal value (`buffer_value`).

A plan that ends with buffer in hand has bought something the horizon does not see: time to ride
through the next dip at the same rung instead of switching down and up again (two switches, each
costing its bitrate change) or stalling. Without a value for it, a planner that looks 8 segments
ahead drains the buffer down to what the horizon needs and keeps 10-20 s, so every dip becomes a
switch; the offline optimum keeps 30-45 s through the middle of a video and spends it at the end.

The value is linear up to a target and flat above it: each second up to ``target_s`` is worth
``weight x`` the bitrate one second of download buys at the predicted rate (``rate_Mbps /
segment duration``, in QoE_lin units per segment). At ``weight`` 1 a second of buffer kept is
worth what spending it would bring, so below the target the planner builds buffer whenever a
higher rung would cost a switch or a stall; above it, buffer is worth nothing more and the
planner spends it (a linear value with no cap, tried before, leaves it indifferent between rungs
at any buffer level). Near the end of the video, buffer left over is wasted: the target shrinks
to ``end_fraction`` of the playback left after the horizon, so the last segments drain it.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np


def buffer_target_s(target_s: float, segment_duration_s: float, segments_after_horizon: int | None,
                    end_fraction: float) -> float:
    """The buffer worth keeping at the end of a plan: ``target_s``, less near the end of the video."""
    if segments_after_horizon is None:  # unbounded stream: no end to drain for
        return target_s
    return max(0.0, min(target_s, end_fraction * segments_after_horizon * segment_duration_s))


def buffer_value(rate_bps: float, segment_duration_s: float, target_s: float, weight: float = 1.0
                 ) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """Terminal value for `planner.best_plan`: ``weight * rate_Mbps / segment duration`` per second
    of final buffer, up to ``target_s`` (the rung the plan ends on plays no part)."""
    per_second = weight * rate_bps / 1e6 / segment_duration_s

    def value(buffer_s: np.ndarray, rung: np.ndarray) -> np.ndarray:
        capped: np.ndarray = np.minimum(buffer_s, target_s)  # numpy types a ufunc's result loosely
        return per_second * capped

    return value
