"""ABR validation: every algorithm on network traces that are not the development set.

Run from the repository root::

    python bench/abr/validation.py --workers 2            # all three sets, with the offline optimum
    python bench/abr/validation.py --sets 4g_scaled --json out.json

The development traces (``pensieve_hsdpa``, ``pensieve_fcc``) are what the algorithms are tuned
on; held-out traces judge them. This bench checks that a change generalises on traces from
``../shared/traces/sabre/`` that share nothing with the dev set (its ``3Glogs_dev`` are the
same Norway logs as ``pensieve_hsdpa`` and are left out), under the same ``target`` conventions
(60 s buffer, 80 ms latency, first segment at the lowest rung, traces from t=0 and looped):

* ``4g_scaled``: the 40 Belgian 4G logs (``4Glogs/``, ~1 s periods) with every bandwidth scaled
  by one factor per set, so that the median of the per-trace mean bandwidths is 1.18 Mbps, the
  dev HSDPA set's median; played with Pensieve's video. Mobile variability at 3G levels.
* ``fcc_sd``: every 20th of Sabre's ``sd_fs`` FCC traces (50; 5 s periods, 60 s at about a tenth
  of the rate then 120 s at the full rate) with Sabre's pairing, Big Buck Bunny (``bbb.json``:
  10 rungs 230-6000 kbps, 199 x 3 s segments).
* ``4g_bbb4k``: the 40 4G logs unscaled with ``bbb4k.json`` (6 rungs 1-35 Mbps, 199 x 3 s).

Printed per set: each algorithm's QoE_lin per chunk, its ratio to the offline optimum, bitrate,
rebuffer ratio and switches. The optimum's DP over 199 segments x 10 rungs takes a few seconds
per trace (about 10 minutes of CPU for all three sets).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from client.abr import DEFAULT  # noqa: E402
from client.sim.manifests import Video, load_video  # noqa: E402
from client.sim.runner import aggregate, expand_names, run_matrix, run_optimal  # noqa: E402
from client.sim.setups import TARGET  # noqa: E402
from client.traces import Trace, load_sabre_trace  # noqa: E402

#: Median per-trace mean bandwidth of the dev HSDPA set (traces/README.md), the scaling goal.
HSDPA_MEDIAN_BPS = 1.18e6


def mean_bps(trace: Trace) -> float:
    return sum(d * b for d, b in zip(trace.durations_s, trace.bandwidths_bps)) / trace.duration_s


def scaled_to_median(traces: list[Trace], median_bps: float) -> list[Trace]:
    """The traces with every bandwidth multiplied by one factor: the set's median mean becomes ``median_bps``."""
    factor = median_bps / statistics.median(mean_bps(t) for t in traces)
    return [Trace(name=t.name, durations_s=t.durations_s, bandwidths_bps=tuple(b * factor for b in t.bandwidths_bps),
                  source=t.source) for t in traces]


def sabre_traces(folder: Path, every: int = 1) -> list[Trace]:
    return [load_sabre_trace(f) for f in sorted(folder.glob("*.json"))[::every]]


def validation_sets(traces_dir: Path) -> dict[str, tuple[Video, list[Trace]]]:
    """``{name: (video, traces)}`` for the three sets in the module docstring."""
    sabre = traces_dir / "sabre"
    pensieve_video = load_video(traces_dir / "pensieve_video" / "video_chunk_sizes.csv")
    four_g = sabre_traces(sabre / "4Glogs")
    return {
        "4g_scaled": (pensieve_video, scaled_to_median(four_g, HSDPA_MEDIAN_BPS)),
        "fcc_sd": (load_video(sabre / "bbb.json"), sabre_traces(sabre / "sd_fs", every=20)),
        "4g_bbb4k": (load_video(sabre / "bbb4k.json"), four_g),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--traces", type=Path, default=REPO.parent / "shared" / "traces",
                    help="folder holding sabre/ and pensieve_video/")
    ap.add_argument("--sets", default="all", help="comma-separated: 4g_scaled, fcc_sd, 4g_bbb4k (default all)")
    ap.add_argument("--abr", default="all", help="algorithms (default: all)")
    ap.add_argument("--workers", type=int, default=None, help="processes (default: CPU count)")
    ap.add_argument("--no-optimal", action="store_true", help="skip the offline optimum")
    ap.add_argument("--json", type=Path, help="also write the results as JSON here")
    args = ap.parse_args()

    sets = validation_sets(args.traces)
    wanted = list(sets) if args.sets == "all" else [s.strip() for s in args.sets.split(",")]
    names = expand_names(args.abr)
    out: dict[str, dict] = {}
    for name in wanted:
        video, traces = sets[name]
        t0 = time.perf_counter()
        matrix = run_matrix(video, traces, names, TARGET, workers=args.workers)
        sim_s = time.perf_counter() - t0
        opt = None
        if not args.no_optimal:
            results = run_optimal(video, traces, TARGET, workers=args.workers)
            opt = sum(o.qoe_lin for o in results) / len(results)
        rows = {n: aggregate(n, matrix[n]) for n in names}
        print(f"== {name} ({len(traces)} traces, video {video.name}: {video.segments} x "
              f"{video.segment_duration_s:g} s, {len(video.ladder_bps)} rungs; simulated in {sim_s:.1f} s) ==")
        print(f"{'abr':18s} {'QoE_lin':>8s} {'x opt':>6s} {'kbps':>7s} {'rebuf%':>7s} {'switch':>7s}")
        for n, r in rows.items():
            ratio = f"{r.qoe_lin / opt:6.3f}" if opt else f"{'-':>6s}"
            label = f"{n} (default)" if n == DEFAULT else n
            print(f"{label:18s} {r.qoe_lin:8.3f} {ratio} {r.avg_bitrate_kbps:7.0f} {100 * r.rebuffer_ratio:7.2f} "
                  f"{r.switches:7.1f}")
        if opt is not None:
            print(f"{'optimal':18s} {opt:8.3f} {1.0:6.3f}")
        print()
        out[name] = {"traces": len(traces), "optimal": opt, "algorithms": [a.as_dict() for a in rows.values()]}
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
