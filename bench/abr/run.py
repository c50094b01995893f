"""ABR benchmark: every algorithm on the development traces, beside the offline optimum and targets.

Run from the repository root::

    python bench/abr/run.py                       # traces from ../shared/traces
    python bench/abr/run.py --traces /path/to/traces --workers 2

Conventions (the ``pensieve`` setup): Pensieve's video (6 rungs, 48 x 4 s chunks), QoE_lin per
chunk (mean over chunks, then over traces), first chunk at rung 1 and its download counted as
start-up, 80 ms RTT, 0.95 payload, 60 s buffer, traces from t=0 and looped. Abandonment is
offered to every algorithm; Pensieve's baselines (``bba``, ``mpc``) never take it, Sabre's use
Sabre's rules, the default uses ``should_abandon``.

Printed per trace set: each algorithm's QoE_lin, its ratio to the optimum, bitrate, rebuffer
ratio (mean of per-trace ratios), switches and start-up; then the targets for the default ABR
against the reference figures of Sabre's DYNAMIC (1.15x its QoE_lin, rebuffer ratio no higher)
and against the optimum (0.85x), each marked met or not; then the timings (simulation of all
algorithms, and the optimum DP separately).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from client.abr import DEFAULT  # noqa: E402
from client.sim.manifests import load_video  # noqa: E402
from client.sim.runner import aggregate, expand_names, run_matrix, run_optimal  # noqa: E402
from client.sim.setups import PENSIEVE  # noqa: E402
from client.traces import load_traces  # noqa: E402

SETS = ("pensieve_hsdpa", "pensieve_fcc")
#: Reference QoE_lin of Sabre's algorithms under these conventions, and DYNAMIC's rebuffer ratio.
REFERENCE = {
    "pensieve_hsdpa": {"dynamic": 0.934, "bola": 0.746, "bola_basic": 0.687, "throughput": 0.614, "rebuffer": 0.017},
    "pensieve_fcc": {"dynamic": 0.376, "bola": 0.261, "bola_basic": 0.166, "throughput": 0.146, "rebuffer": 0.034},
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--traces", type=Path, default=REPO.parent / "shared" / "traces",
                    help="folder holding pensieve_hsdpa/, pensieve_fcc/, pensieve_video/")
    ap.add_argument("--workers", type=int, default=None, help="processes (default: CPU count)")
    ap.add_argument("--no-optimal", action="store_true", help="skip the offline optimum")
    ap.add_argument("--json", type=Path, help="also write the results as JSON here")
    args = ap.parse_args()

    video = load_video(args.traces / "pensieve_video" / "video_chunk_sizes.csv")
    names = expand_names("all")
    results: dict[str, dict] = {}
    sim_s = opt_s = 0.0
    for ds in SETS:
        traces = load_traces(args.traces / ds)
        t0 = time.perf_counter()
        matrix = run_matrix(video, traces, names, PENSIEVE, workers=args.workers)
        sim_s += time.perf_counter() - t0
        rows = {n: aggregate(n, matrix[n]) for n in names}
        opt_mean = None
        if not args.no_optimal:
            t0 = time.perf_counter()
            opt = run_optimal(video, traces, PENSIEVE, workers=args.workers)
            opt_s += time.perf_counter() - t0
            opt_mean = sum(o.qoe_lin for o in opt) / len(opt)
        results[ds] = {"traces": len(traces), "rows": rows, "optimal": opt_mean}

    all_traces = sum(r["traces"] for r in results.values())
    print(f"ABR benchmark, setup {PENSIEVE.name}, video {video.name} "
          f"({video.segments} x {video.segment_duration_s:g} s, {len(video.ladder_bps)} rungs)\n")
    verdicts: list[tuple[str, bool]] = []
    for ds, res in results.items():
        ref = REFERENCE[ds]
        opt_mean = res["optimal"]
        print(f"== {ds} ({res['traces']} traces) ==")
        print(f"{'abr':18s} {'QoE_lin':>8s} {'x opt':>6s} {'ref':>6s} {'kbps':>6s} {'rebuf%':>7s} "
              f"{'rebuf s':>8s} {'switch':>7s} {'startup':>8s}")
        for n, r in res["rows"].items():
            ratio = f"{r.qoe_lin / opt_mean:6.2f}" if opt_mean else f"{'-':>6s}"
            label = f"{n} (default)" if n == DEFAULT else n
            refq = f"{ref[n]:6.3f}" if n in ref else f"{'':6s}"
            print(f"{label:18s} {r.qoe_lin:8.3f} {ratio} {refq} {r.avg_bitrate_kbps:6.0f} "
                  f"{100 * r.rebuffer_ratio:7.2f} {r.rebuffer_s:8.2f} {r.switches:7.1f} {r.startup_s:8.2f}")
        if opt_mean is not None:
            print(f"{'optimal':18s} {opt_mean:8.3f} {1.0:6.2f}")
        d = res["rows"][DEFAULT]
        ours_dyn = res["rows"]["dynamic"]
        checks = [
            (f"QoE_lin >= 1.15 x reference DYNAMIC ({1.15 * ref['dynamic']:.3f})", d.qoe_lin >= 1.15 * ref["dynamic"],
             f"{d.qoe_lin:.3f} = {d.qoe_lin / ref['dynamic']:.2f}x"),
            (f"rebuffer ratio <= reference DYNAMIC ({100 * ref['rebuffer']:.1f}%)", d.rebuffer_ratio <= ref["rebuffer"],
             f"{100 * d.rebuffer_ratio:.2f}%"),
            (f"QoE_lin >= 1.15 x our DYNAMIC ({1.15 * ours_dyn.qoe_lin:.3f})", d.qoe_lin >= 1.15 * ours_dyn.qoe_lin,
             f"{d.qoe_lin / ours_dyn.qoe_lin:.2f}x" if ours_dyn.qoe_lin > 0 else "n/a"),
            (f"rebuffer ratio <= our DYNAMIC ({100 * ours_dyn.rebuffer_ratio:.2f}%)",
             d.rebuffer_ratio <= ours_dyn.rebuffer_ratio, f"{100 * d.rebuffer_ratio:.2f}%"),
        ]
        if opt_mean is not None:
            checks.append((f"QoE_lin >= 0.85 x optimum ({0.85 * opt_mean:.3f})", d.qoe_lin >= 0.85 * opt_mean,
                           f"{d.qoe_lin / opt_mean:.2f}x"))
            checks.append(("reference DYNAMIC x 1.15 <= optimum (target reachable at all)",
                           1.15 * ref["dynamic"] <= opt_mean, f"optimum {opt_mean:.3f}"))
        print(f"targets for the default ({DEFAULT}):")
        for text, ok, value in checks:
            print(f"  [{'met' if ok else 'NOT met'}] {text}: {value}")
            verdicts.append((f"{ds}: {text}", ok))
        print()
    print(f"time: {len(names)} algorithms x {all_traces} traces simulated in {sim_s:.1f} s"
          f" ({'under' if sim_s < 60 else 'OVER'} the 60 s budget)"
          + ("" if args.no_optimal else f"; offline optimum DP {opt_s:.1f} s (counted separately)"))
    if args.json:
        out = {ds: {"traces": r["traces"], "optimal": r["optimal"],
                    "algorithms": [a.as_dict() for a in r["rows"].values()]} for ds, r in results.items()}
        out["timing_s"] = {"simulation": sim_s, "optimal": opt_s}
        out["targets"] = [{"target": t, "met": ok} for t, ok in verdicts]
        args.json.write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
