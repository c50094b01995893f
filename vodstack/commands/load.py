"""``vodstack load``: many real player sessions at once, chaos on a schedule, SLOs, a report.

    vodstack load --steering http://127.0.0.1:8400 --titles demo,other --players 500 --ramp 60 \\
        --devices iphone:0.5,tv-4k:0.2,laptop-chrome:0.3 --networks 3g:0.3,4g:0.4,wifi:0.3 \\
        --formats hls:0.5,dash:0.5 \\
        --chaos kill:edge-us-east-1a@30s,restart:edge-us-east-1a@60s --topology my-topology.toml \\
        --slo startup_p95=2s,rebuffer_ratio=0.01,failed=0 --report load-report/

Times (``--ramp``, ``--arrival-rate``, chaos ``@T``, ``--time-limit``) are scenario seconds:
``--speed X`` plays the whole scenario X times faster than real time. Exit codes: 0 every SLO
met, 3 an SLO missed (each named on stderr), 1/2 bad input or an unreachable stack (one line, no
load started), 130 interrupted (a partial report is still written).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

from ..errors import UsageError

EXIT_SLO_MISSED = 3
EXIT_INTERRUPTED = 130


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "load", help="load test: many real player sessions, chaos, SLOs, report",
        description="Play many real player sessions at once through the steering service and its edges, "
                    "apply a chaos schedule, check SLOs and write a report.")
    p.add_argument("--steering", metavar="URL",
                   help="the steering service (playback API) the sessions ask /play of, for --titles/--catalog")
    titles = p.add_mutually_exclusive_group(required=True)
    titles.add_argument("--titles", metavar="A,B", help="titles, most popular first (with --steering)")
    titles.add_argument("--url", metavar="URL[,URL]",
                        help="HLS playlists or DASH MPDs to play directly, any server's (no --steering), most "
                             "popular first")
    titles.add_argument("--catalog", metavar="FILE",
                        help="file of titles (with --steering) or stream URLs (without), one per line, most "
                             "popular first, each optionally followed by a weight: 'URL 0.3'")
    p.add_argument("--players", type=int, required=True, metavar="N", help="sessions to play")
    p.add_argument("--ramp", type=float, default=0.0, metavar="S", help="spread arrivals evenly over S seconds")
    p.add_argument("--arrival-rate", type=float, metavar="R", help="Poisson arrivals, R sessions per second")
    p.add_argument("--duration", type=float, metavar="S", help="media seconds each session plays (default: all)")
    p.add_argument("--speed", type=float, default=1.0, metavar="X", help="run the scenario X times faster")
    p.add_argument("--devices", default="iphone:0.5,tv-4k:0.2,laptop-chrome:0.3", metavar="MIX",
                   help="device mix NAME:WEIGHT,... (default: %(default)s)")
    p.add_argument("--formats", default="device", metavar="MIX",
                   help="manifest formats asked of /play: hls, dash, or device (each device's own first format: "
                        "android-phone and tv-4k play DASH, iphone HLS), with :WEIGHT (default: %(default)s)")
    p.add_argument("--networks", default="4g", metavar="MIX",
                   help="network mix: 3g,4g,wifi,cable,fiber,none or trace:PATH, with :WEIGHT (default: 4g)")
    p.add_argument("--regions", metavar="MIX", help="region mix (default: every region with edges, evenly)")
    p.add_argument("--popularity", default="zipf:0.9", metavar="P", help="zipf:S or uniform (default: zipf:0.9)")
    p.add_argument("--workers", type=int, metavar="W",
                   help="worker processes (default: CPU count; with --scheduler: one per Dask worker)")
    p.add_argument("--scheduler", metavar="tcp://HOST:PORT", help="run the workers as tasks on this Dask cluster")
    p.add_argument("--chaos", default="", metavar="SCHEDULE",
                   help="e.g. kill:edge-a@30s,restart:edge-a@60s,evacuate:us-west-2@90s,restore:us-west-2@120s")
    p.add_argument("--control", metavar="URL",
                   help="the supervisor's control endpoint (default: from DATA_DIR/run/up.json)")
    p.add_argument("--topology", metavar="FILE",
                   help="the running stack's topology: its admin key and data dir (default: the topology the "
                        "running `vodstack up` wrote next to its up.json)")
    p.add_argument("--data-dir", metavar="DIR",
                   help="where `vodstack up` keeps run/up.json (default: the topology's, else vodstack-data)")
    p.add_argument("--admin-key", metavar="K",
                   help="admin key (default: $VODSTACK_ADMIN_KEY, else the topology's, else the running stack's)")
    p.add_argument("--slo", default="", metavar="SPEC", help="e.g. startup_p95=2s,rebuffer_ratio=0.01,failed=0")
    p.add_argument("--report", metavar="DIR", help="write report.json, index.html and plots here (the sessions "
                   "joined with the edges' access logs by CMCD session id: see --edge-logs)")
    p.add_argument("--edge-logs", metavar="GLOB", action="append", default=[],
                   help="edge access-log files to join with the sessions (repeatable; default: the running "
                        "stack's DATA_DIR/logs/*.access.log)")
    p.add_argument("--p1203", metavar="FILE",
                   help="write each session's ITU-T P.1203 mode 0 input (JSON lines: I11, I13, I23, IGen; none for a "
                        "session cut at the end)")
    p.add_argument("--cmcd", choices=("query", "header", "off"), default="query",
                   help="CMCD (CTA-5004) on the sessions' media requests (default: query, as hls.js)")
    p.add_argument("--cmsd-mb", action="store_true", help="sessions honour the edges' CMSD max suggested bitrate")
    p.add_argument("--behaviour", metavar="FILE",
                   help="viewer behaviour profiles (TOML): start positions, watch times, seeks, pauses; 'default' for "
                        "the shipped client/load/behaviour.toml (its numbers are assumptions), 'play-from-0' "
                        "(the default: everyone plays from 0 to the end)")
    p.add_argument("--verify-fraction", type=float, default=0.0, metavar="F",
                   help="the share of sessions (0..1) that decode what they download (init segments, the first "
                        "frames of segments, timestamps, A/V sync; AES-128 decrypted): media errors are counted in "
                        "the summary and report (SLO media_errors=0) (default 0)")
    p.add_argument("--verify-every", type=int, default=1, metavar="N",
                   help="a verifying session checks every Nth segment of each track (default 1)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")
    p.add_argument("--seed", type=int, default=0, help="seed of the session plan (default: 0)")
    p.add_argument("--ca", metavar="FILE",
                   help="PEM CA certificates to verify HTTPS steering and edges with (default: the system's store)")
    p.add_argument("--abr", default="default", metavar="NAME", help="ABR algorithm (default: default)")
    p.add_argument("--time-limit", type=float, metavar="S", help="stop after S scenario seconds")
    p.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop", help="the workers' event loop")
    p.add_argument("--allow-remote", action="store_true", help="allow targets off loopback")
    p.add_argument("--no-live", action="store_true", help="no live view on stderr")
    p.set_defaults(run=run)


def _catalog(path: str) -> tuple[tuple[str, ...], tuple[float, ...] | None]:
    """``(names or URLs, their weights or None)`` from a catalogue file: lines ``NAME [WEIGHT]``
    (``#`` starts a comment unless it is part of a URL), or a JSON list of names or [name, weight]."""
    try:
        text = Path(path).read_text()
    except OSError as e:
        raise UsageError(f"--catalog {path}: {e.strerror}") from None
    rows: list[tuple[str, str | None]] = []
    if text.lstrip().startswith("["):
        try:
            doc = json.loads(text)
        except ValueError as e:
            raise UsageError(f"--catalog {path}: not valid JSON ({e})") from None
        for x in doc:
            if isinstance(x, list) and len(x) == 2:
                rows.append((str(x[0]).strip(), str(x[1])))
            else:
                rows.append((str(x).strip(), None))
    else:
        for n, line in enumerate(text.splitlines(), 1):
            fields = line.split()  # a field starting with # starts a comment
            fields = fields[:next((i for i, f in enumerate(fields) if f.startswith("#")), len(fields))]
            if len(fields) > 2:
                raise UsageError(f"--catalog {path}:{n}: expected 'NAME [WEIGHT]', got {line.strip()!r}")
            if fields:
                rows.append((fields[0], fields[1] if len(fields) == 2 else None))
    rows = [r for r in rows if r[0]]
    if not rows:
        raise UsageError(f"--catalog {path}: no titles")
    weighted = [w is not None for _, w in rows]
    if any(weighted) and not all(weighted):
        raise UsageError(f"--catalog {path}: give a weight on every line or on none")
    names = tuple(dict.fromkeys(name for name, _ in rows))
    if len(names) != len(rows):
        raise UsageError(f"--catalog {path}: an entry is listed twice")
    if not all(weighted):
        return names, None
    weights = []
    for name, w in rows:
        try:
            x = float(w or "")
        except ValueError:
            raise UsageError(f"--catalog {path}: weight of {name} is not a number: {w!r}") from None
        if not x > 0 or x == float("inf"):
            raise UsageError(f"--catalog {path}: weight of {name} must be > 0, got {w}")
        weights.append(x)
    return names, tuple(weights)


def _is_url(name: str) -> bool:
    return name.startswith(("http://", "https://"))


def running_stack(data_dir: Path) -> tuple[str, str | None] | None:
    """``(control URL, admin key)`` of the stack a running ``vodstack up`` keeps in ``data_dir``: the
    control URL from its ``run/up.json``, the admin key from the topology it wrote next to it
    (``run/topology.toml``; None when that has none or cannot be read). None without an up.json."""
    from client.load.chaos import find_control_url

    from ..errors import ConfigError
    from ..topology import load_topology

    control_url = find_control_url(data_dir)
    if control_url is None:
        return None
    try:
        topo = load_topology(data_dir / "run" / "topology.toml")
    except (ConfigError, OSError, ValueError):
        return control_url, None
    return control_url, topo.steering.admin_key or None


def build_config(args: argparse.Namespace) -> Any:
    from client.devices import load_devices
    from client.load.chaos import CONTROL_ACTIONS
    from client.load.config import LoadConfig
    from client.load.specs import FORMATS, parse_chaos, parse_mix, parse_popularity, parse_slos
    from client.network import PROFILES

    if args.players < 1:
        raise UsageError("--players must be >= 1")
    if args.workers is not None and args.workers < 1:
        raise UsageError("--workers must be >= 1")
    if not args.speed > 0:
        raise UsageError("--speed must be > 0")
    if args.ramp < 0:
        raise UsageError("--ramp must be >= 0")
    if args.arrival_rate is not None and not args.arrival_rate > 0:
        raise UsageError("--arrival-rate must be > 0")
    if args.duration is not None and not args.duration > 0:
        raise UsageError("--duration must be > 0")
    if args.behaviour is not None:
        from client.load.behaviour import BehaviourError, load_behaviours

        try:
            load_behaviours(args.behaviour)
        except BehaviourError as e:
            raise UsageError(str(e)) from None
    if not 0.0 <= args.verify_fraction <= 1.0:
        raise UsageError("--verify-fraction must be between 0 and 1")
    if args.verify_every < 1:
        raise UsageError("--verify-every must be >= 1")
    if args.time_limit is not None and not args.time_limit > 0:
        raise UsageError("--time-limit must be > 0")
    weights = None
    if args.catalog:
        titles, weights = _catalog(args.catalog)
    else:
        flag = "--url" if args.url else "--titles"
        titles = tuple(dict.fromkeys(t.strip() for t in (args.url or args.titles).split(",") if t.strip()))
        if not titles:
            raise UsageError(f"{flag}: nothing listed")
    urls = [t for t in titles if _is_url(t)]
    if urls and len(urls) != len(titles):
        raise UsageError("--catalog: mixes stream URLs and titles (list one or the other)")
    if args.url and not urls:
        raise UsageError(f"--url: not http(s) URLs: {titles[0]!r}")
    if urls and args.steering:
        raise UsageError("stream URLs play directly: give --url/--catalog of URLs without --steering, or titles "
                         "with --steering")
    if not urls and not args.steering:
        raise UsageError("titles are played through a steering service: give --steering URL (or --url for "
                         "stream URLs)")
    devices = parse_mix(args.devices, what="devices", known=tuple(sorted(load_devices())))
    formats = parse_mix(args.formats, what="formats", known=FORMATS)
    networks = parse_mix(args.networks, what="networks", known=(*PROFILES, "none"), allow_prefix=("trace:",))
    regions = parse_mix(args.regions, what="regions") if args.regions else None
    chaos = parse_chaos(args.chaos)
    slos = parse_slos(args.slo)
    popularity = parse_popularity(args.popularity)
    admin_key = args.admin_key or os.environ.get("VODSTACK_ADMIN_KEY") or None
    data_dir = Path(args.data_dir) if args.data_dir else Path("vodstack-data")
    control_url = args.control.rstrip("/") if args.control else None
    if args.topology:
        from ..topology import load_topology

        topo = load_topology(args.topology)
        admin_key = admin_key or topo.steering.admin_key or None
        if not args.data_dir:
            data_dir = topo.stack.data_dir
    control_chaos = [ev for ev in chaos if ev.action in CONTROL_ACTIONS]
    if control_chaos or (chaos and not admin_key):
        running = running_stack(data_dir)
        if running is not None and (control_url is None or control_url == running[0]):
            control_url = running[0]
            admin_key = admin_key or running[1]
        elif running is None and control_chaos and control_url is None:
            ev = control_chaos[0]
            where = f"`vodstack up {args.topology}`" if args.topology else "`vodstack up`"
            raise UsageError(f"chaos {ev.action}{':' + ev.target if ev.target else ''}@{ev.at_s:g}s needs the running "
                             f"stack, and there is no {data_dir / 'run' / 'up.json'}: start it with {where}, or give "
                             "--data-dir DIR (its data_dir), --topology FILE or --control URL")
    return LoadConfig(
        steering_url=args.steering.rstrip("/") if args.steering else None, titles=titles, title_weights=weights,
        players=args.players, devices=devices,
        formats=formats, networks=networks, regions=regions, popularity=popularity, ramp_s=args.ramp, arrival_rate=args.arrival_rate,
        watch_s=args.duration, speed=args.speed, chaos=chaos, scheduler=args.scheduler,
        workers=min(args.workers or (0 if args.scheduler else os.cpu_count() or 1), args.players),
        control_url=control_url, data_dir=data_dir, admin_key=admin_key, slos=slos, seed=args.seed, abr=args.abr,
        time_limit_s=args.time_limit, allow_remote=args.allow_remote, loop=args.loop, ca_file=args.ca,
        cmcd=args.cmcd, cmsd_mb=args.cmsd_mb, record_requests=bool(args.report or args.p1203),
        p1203=bool(args.p1203), verify_fraction=args.verify_fraction, verify_every=args.verify_every,
        behaviour=args.behaviour,
        edge_logs=tuple(args.edge_logs) or ((str(data_dir / "logs" / "*.access.log"),)
                                            if (data_dir / "logs").is_dir() else ()),
        worker_log_level="debug" if args.log_level == "debug" else "error")


def run(args: argparse.Namespace) -> int:
    from client.abr import ALGORITHMS

    if args.abr not in ALGORITHMS:
        raise UsageError(f"unknown ABR {args.abr!r} (known: {', '.join(sorted(ALGORITHMS))})")
    cfg = build_config(args)
    report_dir = Path(args.report) if args.report else None
    if report_dir is not None and report_dir.exists() and not report_dir.is_dir():
        raise UsageError(f"--report {report_dir} exists and is not a folder")
    if args.p1203 and not Path(args.p1203).resolve().parent.is_dir():
        raise UsageError(f"--p1203 {args.p1203}: no folder {Path(args.p1203).resolve().parent}")
    return asyncio.run(_main(cfg, report_dir, args))


async def _main(cfg: Any, report_dir: Path | None, args: argparse.Namespace) -> int:
    from client.load.live import make_live
    from client.load.report import write_report
    from client.load.runner import run_load

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        if stop.is_set():  # a second Ctrl-C: leave at once
            loop.remove_signal_handler(signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)
            return
        print("vodstack load: stopping (Ctrl-C again to abort without a report)...", file=sys.stderr, flush=True)
        stop.set()

    loop.add_signal_handler(signal.SIGINT, on_signal)
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    live = None if args.no_live else make_live(sys.stderr)
    result = await run_load(cfg, stop=stop, live=live, report_dir=report_dir)
    p1203 = [x.pop("p1203") for x in result["sessions"] if "p1203" in x]
    if args.p1203:
        write_p1203(Path(args.p1203), p1203)
    if report_dir is not None:
        write_report(report_dir, result)
    summary, slos = result["summary"], result["slos"]
    if args.json:
        doc = {k: result[k] for k in ("stopped_by", "duration_s", "duration_real_s", "summary", "slos", "chaos",
                                      "resources", "worker_problems", "warnings")}
        if "joined" in result:
            doc["joined"] = {k: v for k, v in result["joined"].items() if k != "sessions"}
        doc["report"] = str(report_dir / "report.json") if report_dir else None
        print(json.dumps(doc, indent=1))
    else:
        print("\n".join(_summary_lines(result, report_dir)))
    sys.stdout.flush()
    for problem in result["worker_problems"] + result["warnings"]:
        print(f"vodstack load: {problem}", file=sys.stderr)
    missed = [v for v in slos if v["missed"]]
    for v in missed:
        print(v["message"], file=sys.stderr)
    if result["interrupted"]:
        return EXIT_INTERRUPTED
    return EXIT_SLO_MISSED if missed else 0


def _summary_lines(result: dict[str, Any], report_dir: Path | None) -> list[str]:
    s = result["summary"]

    def f(x: Any, unit: str = "") -> str:
        return "-" if x is None else f"{x:.3g}{unit}"

    lines = [f"vodstack load: {s['sessions']} of {s['planned']} sessions played in {result['duration_s']:.1f} s "
             f"({result['duration_real_s']:.1f} s wall clock), stopped by {result['stopped_by']}",
             f"  finished {s['finished']}, failed {s['failed']}, cut {s['cut']}, not started {s['not_started']}",
             f"  start-up p50 {f(s['startup_p50_s'], ' s')}, p95 {f(s['startup_p95_s'], ' s')}, "
             f"p99 {f(s['startup_p99_s'], ' s')}",
             f"  rebuffer ratio {100 * s['rebuffer_ratio']:.3f}%, stalls/session {s['stalls_per_session']:.3g}, "
             f"failovers {s['failovers']} in {s['sessions_with_failover']} sessions"]
    for device, d in s["bitrate_by_device"].items():
        lines.append(f"  bitrate {device}: p50 {(d['p50'] or 0) / 1e3:.0f} kb/s (n={d['n']})")
    if s.get("sessions_by_format"):
        lines.append("  manifests: " + ", ".join(
            f"{fmt} {n} (start-up p50 {f((s['startup_by_format'].get(fmt) or {}).get('p50'), ' s')})"
            for fmt, n in s["sessions_by_format"].items()))
    behaviours = s.get("behaviours") or {}
    if len(behaviours) > 1 or any(name != "play-from-0" for name in behaviours):
        for name, b in behaviours.items():
            lines.append(f"  behaviour {name}: {b['sessions']} sessions, {b['resumed']} resumed, {b['seeks']} seeks "
                         f"({b['seeks_flushed']} flushed, waited {b['seek_wait_s']:.1f} s), {b['pauses']} pauses, "
                         f"{b['quit_early']} quit early, watched p50 {f(b['watched_s']['p50'], ' s')}, "
                         f"rebuffer {100 * (b['rebuffer_ratio'] or 0):.3f}%")
    v = s.get("verify") or {}
    if v.get("sessions"):
        lines.append(f"  verified: {v['sessions']} sessions, {v['segments']} segments and {v['inits']} inits checked "
                     f"(CPU {v['cpu_s']:.2f} s), {v['errors']} media errors in {v['sessions_with_errors']} sessions")
        lines.extend(f"  media error ({e['session_id']}): {e['url']}: {e['what']}" for e in v["first_errors"][:5])
    if s["errors_by_kind"]:
        lines.append("  errors: " + ", ".join(f"{k} {v}" for k, v in s["errors_by_kind"].items()))
    for c in result["chaos"]:
        at = "-" if c["applied_at_s"] is None else f"{c['applied_at_s']:.1f} s"
        lines.append(f"  chaos {c['action']}:{c['target']} planned {c['at_s']:g} s, applied {at}: "
                     f"{'ok' if c['ok'] else 'FAILED'} {c.get('detail') or ''}".rstrip())
    res = result["resources"]
    cpu = res.get("cpu_per_session")
    mem = res.get("rss_per_session_bytes")
    lines.append(f"  generator: CPU {'-' if cpu is None else f'{100 * cpu:.2f}% of a core'} per session, "
                 f"memory {'-' if mem is None else f'{mem / 1024:.0f} KiB'} per session, loop lag max "
                 f"{f(res.get('loop_lag_max_ms'), ' ms')}")
    for v in result["slos"]:
        lines.append(f"  SLO {v['metric']} <= {v['limit']:g}: measured {v['measured']:.4g} "
                     f"{'MISSED' if v['missed'] else 'met'}")
    joined = result.get("joined")
    if joined is not None:
        lines.extend(joined_lines(joined))
    elif report_dir is not None:
        lines.append("  joined: no edge logs joined (give --edge-logs)")
    if report_dir is not None:
        lines.append(f"  report: {report_dir / 'index.html'}")
    return lines


def joined_lines(joined: dict[str, Any]) -> list[str]:
    """The ``joined`` section in a few lines: requests matched, stall seconds by cause."""
    req, st = joined["requests"], joined["stalls"]
    lines = [f"  joined: {req['matched']} of {req['client']} requests matched to {len(joined['files'])} edge "
             f"log(s), {req['unmatched']} unmatched"]
    if st["count"]:
        lines.append("  stalls by cause: " + ", ".join(
            f"{c} {v['seconds']:.1f} s ({100 * v['share']:.0f}%, {v['count']})"
            for c, v in st["by_cause"].items() if v["count"]))
    if joined.get("note"):
        lines.append(f"  joined: {joined['note']}")
    return lines


def write_p1203(path: Path, inputs: list[dict[str, Any]]) -> None:
    """One ITU-T P.1203 mode 0 input per line (``client/p1203.py``)."""
    try:
        with open(path, "w") as f:
            for doc in inputs:
                f.write(json.dumps(doc, separators=(",", ":")) + "\n")
    except OSError as e:
        raise UsageError(f"--p1203 {path}: {e.strerror}") from None
