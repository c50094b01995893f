"""Batch simulation: many algorithms over many traces (in worker processes), and their aggregates.

`run_matrix` simulates every named algorithm on every trace, one fresh ABR object per session;
`run_optimal` computes the offline optimum per trace; `aggregate` averages per-trace metrics
(QoE_lin is the mean per chunk of each session, then the mean over traces; rebuffer ratio is
the mean of the per-trace ratios). Work is split by trace over ``workers`` processes (fork).
"""
from __future__ import annotations

import multiprocessing as mp
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from ..abr import ALGORITHMS, AbrConfig, create
from ..qoe import QoeSummary
from ..traces import Trace
from .manifests import Video
from .optimal import OptimalResult, optimal
from .session import simulate
from .setups import SimSetup


@dataclass(frozen=True)
class Aggregate:
    """Mean of per-trace metrics for one algorithm."""

    abr: str
    traces: int
    qoe_lin: float
    avg_bitrate_kbps: float
    rebuffer_s: float
    rebuffer_ratio: float
    switches: float
    bitrate_change_kbps: float
    startup_s: float

    def as_dict(self) -> dict[str, float | int | str]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def aggregate(abr: str, summaries: Sequence[QoeSummary]) -> Aggregate:
    n = len(summaries)
    if n == 0:
        raise ValueError("nothing to aggregate")

    def mean(field: str) -> float:
        values: list[float] = [getattr(s, field) for s in summaries]
        return sum(values) / n

    return Aggregate(abr=abr, traces=n, qoe_lin=mean("qoe_lin"), avg_bitrate_kbps=mean("avg_bitrate_kbps"),
                     rebuffer_s=mean("rebuffer_s"), rebuffer_ratio=mean("rebuffer_ratio"),
                     switches=mean("switches"), bitrate_change_kbps=mean("bitrate_change_kbps"),
                     startup_s=mean("startup_s"))


def expand_names(spec: str | Sequence[str]) -> list[str]:
    """``"all"`` -> every registered name except the ``default`` alias; else the names given."""
    names = [spec] if isinstance(spec, str) else list(spec)
    out: list[str] = []
    for name in names:
        for part in name.split(","):
            part = part.strip()
            if not part:
                continue
            if part == "all":
                out.extend(n for n in ALGORITHMS if n != "default")
            else:
                out.append(part)
    return list(dict.fromkeys(out))


def _one_trace(args: tuple[Video, Trace, tuple[str, ...], SimSetup, AbrConfig]) -> dict[str, QoeSummary]:
    video, trace, names, setup, cfg = args
    return {name: simulate(video, trace, create(name, cfg), setup).qoe for name in names}


def _one_optimal(args: tuple[Video, Trace, SimSetup, float]) -> OptimalResult:
    video, trace, setup, step = args
    return optimal(video, trace, setup, buffer_step_s=step, replay=False)


_Job = TypeVar("_Job")
_Result = TypeVar("_Result")


def _map(func: Callable[[_Job], _Result], jobs: list[_Job], workers: int | None) -> list[_Result]:
    workers = workers if workers is not None else (os.cpu_count() or 1)
    if workers <= 1 or len(jobs) <= 1:
        return [func(j) for j in jobs]
    ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else mp.get_context()
    with ctx.Pool(min(workers, len(jobs))) as pool:
        return pool.map(func, jobs, chunksize=max(1, len(jobs) // (4 * workers)))


def run_matrix(video: Video, traces: Sequence[Trace], names: Sequence[str], setup: SimSetup,
               cfg: AbrConfig | None = None, workers: int | None = None) -> dict[str, list[QoeSummary]]:
    """``{algorithm: [QoeSummary per trace, in trace order]}``."""
    cfg = cfg if cfg is not None else AbrConfig()
    for name in names:
        create(name, cfg)  # fail fast on unknown names, before forking
    per_trace = _map(_one_trace, [(video, t, tuple(names), setup, cfg) for t in traces], workers)
    return {name: [row[name] for row in per_trace] for name in names}


def run_optimal(video: Video, traces: Sequence[Trace], setup: SimSetup, workers: int | None = None,
                buffer_step_s: float = 0.05) -> list[OptimalResult]:
    """Offline optimum per trace (see ``optimal.py``)."""
    return _map(_one_optimal, [(video, t, setup, buffer_step_s) for t in traces], workers)
