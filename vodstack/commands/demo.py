"""``vodstack demo``: ingest a sample title, bring up 3 regions, play, break things, report.

    vodstack demo                       # everything in ./vodstack-data (the title is kept for next time)
    vodstack demo --data-dir /tmp/vs --speed 2 --json

Exit status 0 when every session played to its end and every chaos step took effect, 1 otherwise.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from ..errors import UsageError


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "demo", help="the whole stack end to end: ingest, 3 regions, 4 viewers, an edge killed, a region evacuated",
        description="Make (or find) a sample title and ingest it; start 3 regions x (origin + 2 edges) and the "
                    "steering service on loopback; play an iPhone on 3G, a 4K TV on fibre, a laptop on Wi-Fi "
                    "and an Android phone on 4G in different regions; kill the edge serving the TV mid-session "
                    "and evacuate a region; print a table per session and write reports and plots.")
    p.add_argument("--data-dir", default="vodstack-data", metavar="DIR",
                   help="storage, caches, reports (default ./vodstack-data; the title is reused next time)")
    p.add_argument("--speed", type=float, default=2.0, metavar="X",
                   help="media clock speed for the sessions (default 2: the 30 s title plays in ~15 s)")
    p.add_argument("--server-logs", action="store_true", help="show every server's log lines")
    p.add_argument("--json", action="store_true", help="print the sessions and events as JSON on stdout")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..demo import ensure_title, run_demo, session_rows
    from .ingest import RichEvents

    if not args.speed > 0:
        raise UsageError("--speed must be positive")
    data_dir = Path(args.data_dir).absolute()
    say = (lambda m: print(m, file=sys.stderr)) if args.json else (lambda m: print(m, flush=True))
    with RichEvents(enabled=sys.stderr.isatty()) as events:
        ensure_title(data_dir, say, events)
    sink = None
    if args.server_logs:
        def sink(name: str, line: str) -> None:
            print(f"[{name}] {line}", file=sys.stderr, flush=True)
    result = asyncio.run(run_demo(data_dir, speed=args.speed, say=say, sink=sink))
    rows = session_rows(result)
    if args.json:
        print(json.dumps({"ok": result.ok, "sessions": rows, "events": result.events,
                          "problems": result.problems, "reports": str(result.report_dir),
                          "wall_s": round(result.wall_s, 1)}, indent=1, default=str))
    else:
        _table(rows)
        print(f"reports and plots: {result.report_dir}")
        print(f"stack and sessions took {result.wall_s:.0f} s")
    for p in result.problems:
        print(f"vodstack: error: {p}", file=sys.stderr)
    for row in rows:
        if not row["ok"]:
            print(f"vodstack: error: {row['device']} session failed: {row['error']}", file=sys.stderr)
    return 0 if result.ok else 1


def _table(rows: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="vodstack demo: one row per viewer")
    for col in ("device", "network", "region", "format", "top video", "audio", "subs", "startup", "rebuffers",
                "stalls from", "avg kbps", "failovers", "edges", "edge hits", "result"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            r["device"], r["network"], r["region"], r["format"].upper(), f"{r['top_codec']} {r['top_resolution']}", str(r["audio"]),
            str(r["subtitles"]), "-" if r["startup_s"] is None else f"{r['startup_s']:.2f} s",
            f"{r['stalls']} ({r['stall_s']:.1f} s)",
            ", ".join(f"{c} {s:.1f} s" for c, s in r["stall_causes"].items()) or "-",
            str(r["avg_bitrate_kbps"]), str(r["failovers"]), " → ".join(r["edges"]),
            "-" if r["edge_hit_ratio"] is None else f"{100 * r['edge_hit_ratio']:.0f} %", "ok" if r["ok"] else "FAILED")
    Console(width=200).print(table)
