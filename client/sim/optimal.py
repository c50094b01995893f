"""The offline optimum: the best QoE_lin any rung sequence reaches on a trace, known in advance.

Dynamic programming over (chunk, rung, buffer bin). After each chunk a state is one partial
rung sequence, carried with its *exact* buffer level, trace clock and accumulated QoE_lin; the
next chunk expands every state by every rung under the very same download, rebuffer and wait
rules as the simulator (`SimSetup`), then keeps, for each (rung, buffer bin of width
``buffer_step_s``), the state with the highest QoE (ties: the earlier clock). Merging is the
only approximation, and a mild one: two sequences that reach the same chunk with the same
buffer and neither rebuffered have played the same time, so they sit at the same trace time
too; when one rebuffered more, it is later *and* has paid 4.3 per second for it. The winning
sequence is a real one: `OptimalResult.rungs` replayed through `simulate` gives the same QoE
(the tests check it).

The first chunk follows the setup (``first_rung``); abandonment plays no part (full knowledge
never needs it).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..abr.snapshot import AbrSnapshot, Decision, DownloadProgress
from ..qoe import QoeSummary
from ..traces import Trace
from .manifests import Video
from .network import SimLink
from .session import simulate
from .setups import SimSetup


@dataclass(frozen=True)
class OptimalResult:
    trace: str
    qoe_lin: float  # mean per chunk
    rungs: tuple[int, ...]
    states: int  # largest layer, for the curious
    summary: QoeSummary | None = None


class FixedSequence:
    """An 'ABR' that replays a given rung sequence (used to check the optimum in the simulator)."""

    name = "optimal"

    def __init__(self, rungs: tuple[int, ...]) -> None:
        self.rungs = rungs

    def decide(self, snapshot: AbrSnapshot) -> Decision:
        return Decision(self.rungs[snapshot.segment_index], "offline optimum")

    def abandon(self, progress: DownloadProgress) -> Decision | None:
        return None


def optimal(video: Video, trace: Trace, setup: SimSetup, buffer_step_s: float = 0.02,
            rebuffer_penalty: float = 4.3, smooth_penalty: float = 1.0, replay: bool = True) -> OptimalResult:
    """Best rung sequence for ``video`` over ``trace`` under ``setup`` (see the module docstring)."""
    link = SimLink(trace, setup.payload_factor)
    rates = np.asarray(video.ladder_bps, dtype=float) / 1e6
    n_rungs = len(rates)
    max_buf = setup.max_buffer_s
    bins = int(math.ceil((max_buf + 2 * video.segment_duration_s) / buffer_step_s)) + 1

    rung = np.array([-1])
    buf = np.array([0.0])
    clock = np.array([0.0])
    val = np.array([0.0])
    parents: list[tuple[np.ndarray, np.ndarray]] = []
    largest = 1
    for k in range(video.segments):
        dur = video.segment_duration(k)
        if setup.wait == "before_request" and k > 0:
            wait = np.maximum(buf + dur - max_buf, 0.0)
        else:
            wait = np.zeros_like(buf)
        b0 = buf - wait
        t0 = clock + wait
        if setup.latency_s is not None:
            lat = np.full_like(t0, setup.latency_s)
        else:
            lat = link.latency_at_many(t0, setup.default_latency_s)
        start = t0 + lat if setup.latency_idles_link else t0
        if k == 0 and setup.first_rung is not None:
            choices = [min(setup.first_rung, n_rungs - 1)]
        else:
            choices = list(range(n_rungs))
        c_rung, c_buf, c_clock, c_val, c_parent = [], [], [], [], []
        for j in choices:
            end = link.transfer_end_many(start, float(video.sizes_bytes[k][j]))
            spent = lat + (end - start)
            if k == 0:
                stall = np.zeros_like(spent)
                nb = np.full_like(spent, dur)
                smooth = np.zeros_like(spent)
            else:
                stall = np.maximum(spent - b0, 0.0)
                nb = np.maximum(b0 - spent, 0.0) + dur
                smooth = np.abs(rates[j] - rates[rung])
            t_end = end
            if setup.wait == "after_chunk":
                sleep = np.where(nb > max_buf, np.ceil((nb - max_buf) / setup.wait_step_s) * setup.wait_step_s, 0.0)
                nb = nb - sleep
                t_end = end + sleep
            c_rung.append(np.full(len(nb), j))
            c_buf.append(nb)
            c_clock.append(t_end)
            c_val.append(val + rates[j] - rebuffer_penalty * stall - smooth_penalty * smooth)
            c_parent.append(np.arange(len(nb)))
        a_rung = np.concatenate(c_rung)
        a_buf = np.concatenate(c_buf)
        a_clock = np.concatenate(c_clock)
        a_val = np.concatenate(c_val)
        a_parent = np.concatenate(c_parent)
        key = a_rung * bins + np.minimum((a_buf / buffer_step_s).astype(np.int64), bins - 1)
        order = np.lexsort((a_clock, -a_val, key))
        first = np.ones(len(order), dtype=bool)
        first[1:] = key[order][1:] != key[order][:-1]
        keep = order[first]
        rung, buf, clock, val = a_rung[keep], a_buf[keep], a_clock[keep], a_val[keep]
        parents.append((a_rung[keep], a_parent[keep]))
        largest = max(largest, len(keep))

    best = int(np.argmax(val))
    seq: list[int] = []
    idx = best
    for layer in range(len(parents) - 1, -1, -1):
        r, p = parents[layer]
        seq.append(int(r[idx]))
        idx = int(p[idx])
    rungs = tuple(reversed(seq))
    total = float(val[best])
    summary = None
    if replay:
        summary = simulate(video, link, FixedSequence(rungs), setup.with_(abandonment=False)).qoe
    return OptimalResult(trace=trace.name, qoe_lin=total / video.segments, rungs=rungs, states=largest,
                         summary=summary)
