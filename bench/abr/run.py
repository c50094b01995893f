"""ABR benchmark: every algorithm on the development traces, beside the offline optimum and targets.

Run from the repository root::

    python bench/abr/run.py                       # target conventions, traces from ../shared/traces
                                                  # (or, without it, the few in client/traces_data/)
    python bench/abr/run.py --setup pensieve      # Pensieve's simulator conventions instead
    python bench/abr/run.py --traces /path/to/traces --workers 2 --json out.json

Conventions (default, the ``target`` setup, ``client/sim/setup_target.py``): issue 6's target
conventions as Sabre's simulator runs them, calibrated against Sabre itself (see
``CONVENTIONS.md``): Pensieve's video (6 rungs, 48 x 4 s chunks), QoE_lin per chunk (mean over
chunks, then over traces), first chunk at the lowest rung and its download counted as start-up
and not rebuffering, 80 ms request latency during which the trace runs, full payload, 60 s
buffer, traces from t=0 (a sample holds until the next timestamp) and looped. ``--setup
pensieve`` keeps Pensieve's (0.95 payload, RTT outside the trace clock, first chunk at rung 1,
Pensieve's trace alignment).

Printed per trace set: each algorithm's QoE_lin, its ratio to the optimum, the issue's reference
figure for the matching Sabre algorithm and what Sabre itself measures under the target
conventions (``CONVENTIONS.md``), the ratio to the reference DYNAMIC, bitrate, rebuffer ratio
(mean of per-trace ratios) and its ratio to the reference DYNAMIC's, switches and start-up; then
the targets for the default ABR (1.15x reference DYNAMIC QoE_lin, 0.85x the optimum, rebuffer
ratio no higher than DYNAMIC's), each marked met or not; then the timings.
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
from client.sim.setup_target import load_target_traces  # noqa: E402
from client.sim.setups import SETUPS  # noqa: E402
from client.traces import SHIPPED_TRACES_DIR, load_traces  # noqa: E402

SETS = ("pensieve_hsdpa", "pensieve_fcc")
#: Reference QoE_lin of Sabre's algorithms under these conventions, and DYNAMIC's rebuffer ratio.
REFERENCE = {
    "pensieve_hsdpa": {"dynamic": 0.934, "bola": 0.746, "bola_basic": 0.687, "throughput": 0.614, "rebuffer": 0.017},
    "pensieve_fcc": {"dynamic": 0.376, "bola": 0.261, "bola_basic": 0.166, "throughput": 0.146, "rebuffer": 0.034},
}
#: What Sabre itself (UMass-LIDS/sabre 09b03bb, default flags, -b 60) measures under the target
#: conventions, by our algorithm names (bola = Sabre's bolae, bola_basic = Sabre's bola); see
#: CONVENTIONS.md. Rebuffer: mean of Sabre's per-trace "rebuffer ratio".
SABRE_MEASURED = {
    "pensieve_hsdpa": {"dynamic": 0.732, "bola": 0.746, "bola_basic": 0.742, "throughput": 0.609, "rebuffer": 0.0119},
    "pensieve_fcc": {"dynamic": 0.238, "bola": 0.260, "bola_basic": 0.193, "throughput": 0.133, "rebuffer": 0.0293},
}


def default_traces_dir() -> Path:
    """The development set beside the repo when it is there, else the shipped few traces."""
    shared = REPO.parent / "shared" / "traces"
    return shared if (shared / "pensieve_video").is_dir() else SHIPPED_TRACES_DIR


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--traces", type=Path, default=default_traces_dir(),
                    help="folder holding pensieve_hsdpa/, pensieve_fcc/, pensieve_video/ (default: "
                         "../shared/traces, the development set, when it is there, else the small "
                         "set shipped in client/traces_data/: a quick run, not the benchmark figures)")
    ap.add_argument("--workers", type=int, default=None, help="processes (default: CPU count)")
    ap.add_argument("--setup", choices=("target", "pensieve"), default="target",
                    help="simulation conventions (default: issue 6's target conventions)")
    ap.add_argument("--no-optimal", action="store_true", help="skip the offline optimum")
    ap.add_argument("--json", type=Path, help="also write the results as JSON here")
    args = ap.parse_args()

    setup = SETUPS[args.setup]
    loader = load_target_traces if args.setup == "target" else load_traces
    video = load_video(args.traces / "pensieve_video" / "video_chunk_sizes.csv")
    names = expand_names("all")
    results: dict[str, dict] = {}
    sim_s = opt_s = 0.0
    for ds in SETS:
        traces = loader(args.traces / ds)
        t0 = time.perf_counter()
        matrix = run_matrix(video, traces, names, setup, workers=args.workers)
        sim_s += time.perf_counter() - t0
        rows = {n: aggregate(n, matrix[n]) for n in names}
        opt_mean = None
        if not args.no_optimal:
            t0 = time.perf_counter()
            opt = run_optimal(video, traces, setup, workers=args.workers)
            opt_s += time.perf_counter() - t0
            opt_mean = sum(o.qoe_lin for o in opt) / len(opt)
        results[ds] = {"traces": len(traces), "rows": rows, "optimal": opt_mean}

    all_traces = sum(r["traces"] for r in results.values())
    print(f"ABR benchmark, setup {setup.name}, video {video.name} "
          f"({video.segments} x {video.segment_duration_s:g} s, {len(video.ladder_bps)} rungs)\n")
    verdicts: list[tuple[str, bool]] = []
    for ds, res in results.items():
        ref = REFERENCE[ds]
        opt_mean = res["optimal"]
        print(f"== {ds} ({res['traces']} traces) ==")
        sab = SABRE_MEASURED[ds] if setup.name == "target" else {}
        print(f"{'abr':18s} {'QoE_lin':>8s} {'x opt':>6s} {'ref':>6s} {'sabre':>6s} {'x refDYN':>8s} {'kbps':>6s} "
              f"{'rebuf%':>7s} {'x refDYN':>8s} {'rebuf s':>8s} {'switch':>7s} {'startup':>8s}")
        for n, r in res["rows"].items():
            ratio = f"{r.qoe_lin / opt_mean:6.2f}" if opt_mean else f"{'-':>6s}"
            label = f"{n} (default)" if n == DEFAULT else n
            refq = f"{ref[n]:6.3f}" if n in ref else f"{'':6s}"
            sabq = f"{sab[n]:6.3f}" if n in sab else f"{'':6s}"
            print(f"{label:18s} {r.qoe_lin:8.3f} {ratio} {refq} {sabq} {r.qoe_lin / ref['dynamic']:8.2f} "
                  f"{r.avg_bitrate_kbps:6.0f} {100 * r.rebuffer_ratio:7.2f} {r.rebuffer_ratio / ref['rebuffer']:8.2f} "
                  f"{r.rebuffer_s:8.2f} {r.switches:7.1f} {r.startup_s:8.2f}")
        if opt_mean is not None:
            print(f"{'optimal':18s} {opt_mean:8.3f} {1.0:6.2f} {'':6s} {'':6s} {opt_mean / ref['dynamic']:8.2f}")
        print(f"{'reference DYNAMIC':18s} {ref['dynamic']:8.3f} "
              + (f"{ref['dynamic'] / opt_mean:6.2f}" if opt_mean else f"{'-':>6s}")
              + f" {'':6s} {'':6s} {1.0:8.2f} {'':6s} {100 * ref['rebuffer']:7.2f} {1.0:8.2f}")
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
