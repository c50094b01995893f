"""``vodstack simulate``: play a title over bandwidth traces with ABR algorithms, no network.

    vodstack simulate --manifest ../shared/traces/pensieve_video/video_chunk_sizes.csv \\
        --traces ../shared/traces/pensieve_hsdpa --abr all --optimal
    vodstack simulate --manifest client/traces_data/pensieve_video/video_chunk_sizes.csv \\
        --traces client/traces_data/pensieve_hsdpa      # the few traces shipped in the package
    vodstack simulate --manifest titles/demo/title.json --traces trace.json --abr default --json
    vodstack simulate --manifest titles/demo/manifest.mpd --traces trace.json   # a DASH MPD: sizes from its
                                                # byte ranges, else from the title.json beside it

Prints one row per algorithm, averaged over the traces (``--per-trace``: one row per trace too),
or JSON with ``--json``. Bad input (missing or malformed trace or manifest, unknown ABR)
is a `UsageError`: one line on stderr, exit 2.
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any, Sequence

from ..errors import UsageError

if TYPE_CHECKING:
    from client.sim.manifests import Video
    from client.sim.optimal import OptimalResult
    from client.sim.runner import Aggregate
    from client.qoe import QoeSummary
    from client.traces import Trace


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "simulate", help="trace-driven ABR simulation (QoE per algorithm)",
        description="Simulate playback of a title over bandwidth traces with ABR algorithms "
                    "and report QoE_lin, bitrate, rebuffering, switches and start-up.")
    p.add_argument("--manifest", required=True, metavar="FILE",
                   help="Pensieve chunk table (.csv), Sabre manifest (.json), vodstack title.json or DASH "
                        "manifest.mpd (segment sizes from its byte ranges, else from the title.json beside it)")
    p.add_argument("--traces", required=True, nargs="+", metavar="PATH",
                   help="trace files and/or folders (Pensieve text or Sabre JSON)")
    p.add_argument("--abr", default="default", metavar="NAME",
                   help="algorithm name, comma-separated names, or 'all' (default: default)")
    p.add_argument("--setup", default="pensieve", choices=("pensieve", "sabre"),
                   help="simulation conventions (default: pensieve)")
    p.add_argument("--codec", default="avc1", help="codec family of title.json / MPD rungs (default: avc1)")
    p.add_argument("--max-buffer", type=float, metavar="S", help="override the setup's max buffer (s)")
    p.add_argument("--no-abandon", action="store_true", help="never offer abandonment to the ABR")
    p.add_argument("--cmsd-mb", metavar="KBPS[@FROM-TO]",
                   help="model an edge whose CMSD suggests at most KBPS (during session seconds FROM..TO), "
                        "honoured by the players as `vodstack play --cmsd-mb` honours it")
    p.add_argument("--optimal", action="store_true", help="add the offline optimum (slower)")
    p.add_argument("--per-trace", action="store_true", help="also report every trace")
    p.add_argument("--workers", type=int, metavar="N", help="worker processes (default: CPU count)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(run=run)


def parse_cmsd_mb(text: str) -> tuple[float, tuple[float, float] | None]:
    """``KBPS`` or ``KBPS@FROM-TO`` -> (bps, window in session seconds or None); UsageError if malformed."""
    rate, _, window = text.partition("@")
    try:
        kbps = float(rate)
        lo, hi = (float(x) for x in window.split("-", 1)) if window else (0.0, 0.0)
    except ValueError:
        raise UsageError(f"--cmsd-mb: expected KBPS or KBPS@FROM-TO, got {text!r}") from None
    if not kbps > 0 or (window and not 0 <= lo < hi):
        raise UsageError(f"--cmsd-mb: expected a positive KBPS and FROM < TO, got {text!r}")
    return kbps * 1000, ((lo, hi) if window else None)


def run(args: argparse.Namespace) -> int:
    from client.abr import ALGORITHMS
    from client.sim.manifests import ManifestError, load_video
    from client.sim.runner import aggregate, expand_names, run_matrix, run_optimal
    from client.sim.setups import SETUPS
    from client.traces import TraceError, load_traces

    names = expand_names(args.abr)
    unknown = [n for n in names if n not in ALGORITHMS]
    if unknown or not names:
        raise UsageError(f"unknown ABR {', '.join(unknown) or repr(args.abr)}; valid: all, {', '.join(ALGORITHMS)}")
    if args.workers is not None and args.workers < 1:
        raise UsageError("--workers must be >= 1")
    try:
        video = load_video(args.manifest, codec=args.codec)
        traces = load_traces(args.traces)
    except (TraceError, ManifestError) as e:
        raise UsageError(str(e)) from None
    setup = SETUPS[args.setup]
    if args.max_buffer is not None:
        if args.max_buffer < video.segment_duration_s:
            raise UsageError("--max-buffer must be at least one segment duration")
        setup = setup.with_(max_buffer_s=args.max_buffer)
    if args.no_abandon:
        setup = setup.with_(abandonment=False)
    if args.cmsd_mb:
        mb_bps, window = parse_cmsd_mb(args.cmsd_mb)
        setup = setup.with_(cmsd_mb_bps=mb_bps, cmsd_window_s=window)

    matrix = run_matrix(video, traces, names, setup, workers=args.workers)
    rows = [aggregate(n, matrix[n]) for n in names]
    opt = run_optimal(video, traces, setup, workers=args.workers) if args.optimal else None
    opt_mean = sum(o.qoe_lin for o in opt) / len(opt) if opt else None

    if args.json:
        out: dict[str, Any] = {
            "setup": setup.name, "manifest": args.manifest, "video": video.name,
            "segments": video.segments, "traces": len(traces),
            "algorithms": [r.as_dict() for r in rows],
            "optimal_qoe_lin": opt_mean,
        }
        if args.per_trace:
            out["per_trace"] = [
                {"trace": t.name, "abr": n, **matrix[n][i].as_dict()}
                for n in names for i, t in enumerate(traces)]
            if opt:
                out["per_trace_optimal"] = [{"trace": o.trace, "qoe_lin": o.qoe_lin} for o in opt]
        json.dump(out, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    _print_tables(args, video, traces, names, rows, matrix, opt, opt_mean, setup.name)
    return 0


def _print_tables(args: argparse.Namespace, video: Video, traces: Sequence[Trace], names: Sequence[str],
                  rows: Sequence[Aggregate], matrix: dict[str, list[QoeSummary]], opt: list[OptimalResult] | None,
                  opt_mean: float | None, setup_name: str) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if console.width < 120:  # piped output: do not squeeze the columns
        console = Console(width=120)
    title = (f"{video.name}: {video.segments} segments x {video.segment_duration_s:g} s, "
             f"{len(video.ladder_bps)} rungs; {len(traces)} traces; setup {setup_name}")
    table = Table(title=title)
    for col in ("ABR", "QoE_lin", "vs opt", "bitrate kbps", "rebuffer s", "rebuffer %", "switches",
                "Δbitrate kbps/chunk", "startup s"):
        table.add_column(col, justify="left" if col == "ABR" else "right")
    for r in rows:
        ratio = f"{r.qoe_lin / opt_mean:.2f}" if opt_mean and opt_mean > 0 else "-"
        table.add_row(r.abr, f"{r.qoe_lin:.3f}", ratio, f"{r.avg_bitrate_kbps:.0f}", f"{r.rebuffer_s:.2f}",
                      f"{100 * r.rebuffer_ratio:.2f}", f"{r.switches:.1f}", f"{r.bitrate_change_kbps:.0f}",
                      f"{r.startup_s:.2f}")
    if opt_mean is not None:
        table.add_row("optimal (offline)", f"{opt_mean:.3f}", "1.00", "", "", "", "", "", "")
    console.print(table)
    if args.per_trace:
        per = Table(title="per trace")
        for col in ("trace", "ABR", "QoE_lin", "bitrate kbps", "rebuffer s", "switches", "startup s"):
            per.add_column(col, justify="left" if col in ("trace", "ABR") else "right")
        for i, t in enumerate(traces):
            for n in names:
                q = matrix[n][i]
                per.add_row(t.name, n, f"{q.qoe_lin:.3f}", f"{q.avg_bitrate_kbps:.0f}", f"{q.rebuffer_s:.2f}",
                            str(q.switches), f"{q.startup_s:.2f}")
            if opt:
                per.add_row(t.name, "optimal", f"{opt[i].qoe_lin:.3f}", "", "", "", "")
        console.print(per)
