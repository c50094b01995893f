"""The MPC planner: the rung sequence over the next few segments that maximises QoE_lin.

Given a predicted bandwidth per step, segment sizes, the buffer and the previous rung,
`best_plan` searches every rung sequence of the horizon exactly, but prunes as it goes: after
each step, among partial plans ending on the same rung, a plan with less buffer and less
accumulated QoE than another is dropped (the future depends only on rung and buffer, and more
buffer is never worse), so the search stays small even for long horizons and big ladders.

Per step ``k``: ``download = latency + 8 * size / bandwidth``; rebuffer ``max(download - buffer, 0)``;
buffer ``max(buffer - download, 0) + segment duration`` (capped at ``max_buffer_s`` when given:
the player would idle); QoE ``bitrate_Mbps - rebuffer_penalty * rebuffer - smooth_penalty *
|bitrate change|``. The plan's score adds ``terminal_value(final buffer, final rung)`` (non-decreasing in the buffer).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Plan:
    first: int  # rung of the first step
    score: float  # planned QoE over the horizon plus terminal value
    final_buffer_s: float


def best_plan(sizes_bytes: Sequence[Sequence[float]], bitrates_mbps: Sequence[float],
              bandwidth_bps: Sequence[float], buffer_s: float, last: int | None,
              segment_duration_s: float, *, latency_s: float = 0.0,
              rebuffer_penalty: float = 4.3, smooth_penalty: float = 1.0,
              max_buffer_s: float | None = None,
              terminal_value: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
              allowed_first: Sequence[int] | None = None) -> Plan:
    """Exact best plan over ``len(sizes_bytes)`` steps (see the module docstring).

    Ties go to the higher first rung (as Pensieve's MPC does).
    """
    horizon = len(sizes_bytes)
    rates = np.asarray(bitrates_mbps, dtype=float)
    n_rungs = len(rates)
    if horizon == 0:
        raise ValueError("empty horizon")
    first_choices = np.arange(n_rungs) if allowed_first is None else np.asarray(allowed_first)
    # level 0: one state
    first = np.array([-1])
    rung = np.array([-1 if last is None else last])
    buf = np.array([float(buffer_s)])
    val = np.array([0.0])
    for k in range(horizon):
        sizes = np.asarray(sizes_bytes[k], dtype=float)
        dl = latency_s + 8.0 * sizes / max(float(bandwidth_bps[k]), 1.0)
        choices = first_choices if k == 0 else np.arange(n_rungs)
        dl_c = dl[choices]
        nb = buf[:, None] - dl_c[None, :]
        rebuf = np.maximum(-nb, 0.0)
        nb = np.maximum(nb, 0.0) + segment_duration_s
        if max_buffer_s is not None:
            nb = np.minimum(nb, max_buffer_s)
        if k == 0 and last is None:
            smooth = np.zeros((1, len(choices)))
        else:
            smooth = np.abs(rates[choices][None, :] - rates[rung][:, None])
        nv = val[:, None] + rates[choices][None, :] - rebuffer_penalty * rebuf - smooth_penalty * smooth
        nr = np.broadcast_to(choices[None, :], nb.shape).ravel()
        nf = (np.broadcast_to(choices[None, :], nb.shape) if k == 0 else
              np.broadcast_to(first[:, None], nb.shape)).ravel()
        nb, nv = nb.ravel(), nv.ravel()
        if k < horizon - 1:
            keep = _pareto(nr, nb, nv, nf)
            first, rung, buf, val = nf[keep], nr[keep], nb[keep], nv[keep]
        else:
            first, rung, buf, val = nf, nr, nb, nv
    score = val + (terminal_value(buf, rung) if terminal_value is not None else 0.0)
    best = np.flatnonzero(score >= score.max() - 1e-12)
    pick = best[np.argmax(first[best])]
    return Plan(first=int(first[pick]), score=float(score[pick]), final_buffer_s=float(buf[pick]))


def _pareto(r: np.ndarray, b: np.ndarray, v: np.ndarray, f: np.ndarray) -> np.ndarray:
    """Indices of the states not dominated (same rung, <= buffer and <= value) by another."""
    order = np.lexsort((-f, -v, -b, r))
    rs, vs = r[order], v[order]
    spread = float(vs.max() - vs.min()) + 1.0
    adj = vs + rs * spread  # groups by rung ascending, so one running max serves all groups
    running = np.maximum.accumulate(adj)
    keep = np.empty(len(order), dtype=bool)
    keep[0] = True
    keep[1:] = adj[1:] > running[:-1]
    return order[keep]
