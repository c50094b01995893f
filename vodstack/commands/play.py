"""``vodstack play``: one headless playback session, with a live status line and a report.

    vodstack play http://127.0.0.1:8101/demo/master.m3u8 --device iphone --network 3g
    vodstack play demo --steering http://127.0.0.1:8400 --region eu-west-1 --device tv-4k \\
        --network fiber --speed 10 --report r.json --plot r.png

TARGET is a multivariant playlist URL, or a title when ``--steering`` is given. The status line
goes to stderr (rewritten in place on a terminal, one line every few seconds otherwise); the
summary goes to stdout (``--json``: the whole report as JSON). Exit status 0 when the session
played to its end, 1 when it failed (every pathway failed, a broken playlist, nothing playable),
2 for bad flags. With ``--edge-logs GLOB`` (or ``--data-dir DIR`` of a ``vodstack up`` stack: its
``logs/*.access.log``), the report gets a ``joined`` section: every request of the session beside the
edge's access-log line for it (CMCD session id), each segment's throughput and buffer beside the
edge's answer, and where each stall came from (``client/joined.py``). ``--p1203 FILE`` writes the
session's ITU-T P.1203 mode 0 input. Settings can also come from ``--config FILE`` (``[play]`` for `SessionConfig`,
``[abr]`` for `AbrConfig`) and ``VODSTACK_PLAY_*`` / ``VODSTACK_ABR_*`` variables.
``--start``, ``--seek TO@AT``, ``--pause DUR@AT`` and ``--watch S`` script what the viewer does
(``client/script.py``: AT is seconds of watching, so a script replays the same on any network);
the report's ``behaviour`` says what happened. Exit status 4: it played, but ``--verify`` found broken media (a segment that does not decode,
a timestamp gap or overlap, audio out of sync: ``client/verify.py``).
"""
from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import ssl
import sys
import time
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Coroutine, TypeVar

import aiohttp

from serverkit.tls import client_context

from ..config import load_config
from ..errors import UsageError

if TYPE_CHECKING:
    from client.report import SessionReport

T = TypeVar("T")

DEVICES = ("iphone", "android-phone", "tv-4k", "laptop-chrome", "low-end")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "play", help="play a title headlessly (ABR, tracks, shaped network, failover) and report QoE",
        description="Play a title like a device would: pick tracks for the device, shape the network, "
                    "fetch segments by ABR decisions, fail over between edges, report QoE.")
    p.add_argument("target", metavar="TARGET", help="multivariant playlist or DASH MPD URL, or a title with --steering")
    p.add_argument("--steering", metavar="URL", help="steering service base URL (TARGET is then a title)")
    p.add_argument("--ca", metavar="FILE",
                   help="PEM CA certificates to verify HTTPS servers with (default: the system's store)")
    p.add_argument("--region", help="the viewer's region, for the steering service")
    p.add_argument("--format", choices=("hls", "dash", "auto"),
                   help="manifest asked of the steering service: hls (default), dash, or auto (the "
                        "device's first); a TARGET URL plays as what it is (an MPD or a playlist)")
    p.add_argument("--device", default="laptop-chrome",
                   help=f"device profile: {', '.join(DEVICES)} or one from --devices (default laptop-chrome)")
    p.add_argument("--devices", metavar="FILE", help="TOML file overriding/adding device profiles "
                                                     "(default: $VODSTACK_DEVICES)")
    p.add_argument("--network", help="3g, 4g, wifi, cable, fiber, none or trace:FILE (default: the device's)")
    p.add_argument("--abr", help="ABR algorithm (default: default)")
    p.add_argument("--initial-kbps", type=float, help="bandwidth estimate before the first sample")
    p.add_argument("--audio-lang", metavar="LANGS", help="audio language preferences, e.g. fr,en")
    p.add_argument("--subs-lang", metavar="LANG", help="subtitle language, or off (forced subtitles still show)")
    p.add_argument("--sdh", action="store_true", help="prefer SDH subtitles")
    p.add_argument("--audio-description", action="store_true", help="prefer an audio description track")
    p.add_argument("--duration", type=float, metavar="S", help="play only the first S seconds of the title")
    p.add_argument("--start", metavar="POS", help="start at POS: seconds (90) or a share of the title (40%%)")
    p.add_argument("--seek", metavar="TO@AT", action="append", default=[],
                   help="after AT seconds of watching, seek to TO: seconds, a share (50%%) or a jump (+30; a jump back "
                        "as --seek=-10@AT); repeatable")
    p.add_argument("--pause", metavar="DUR@AT", action="append", default=[],
                   help="after AT seconds of watching, pause for DUR seconds; repeatable")
    p.add_argument("--watch", type=float, metavar="S", help="quit after watching S seconds (early quit)")
    p.add_argument("--speed", type=float, default=1.0, metavar="X",
                   help="media clock speed: 10 plays a minute in six seconds (default 1)")
    p.add_argument("--max-buffer", type=float, metavar="S", help="buffer goal in seconds (default 30)")
    p.add_argument("--stall-budget", type=float, metavar="S",
                   help="give up on a segment whose bytes trickle in (and fail over) when it cannot arrive "
                        "before the buffer runs dry plus S seconds; at start-up, within S (default 10)")
    p.add_argument("--cmcd", choices=("query", "header", "off"),
                   help="send CMCD (CTA-5004) with every media request: as the CMCD query argument (default, as "
                        "hls.js), as CMCD-* headers, or not at all")
    p.add_argument("--cmsd-mb", action="store_true",
                   help="honour the edge's CMSD max suggested bitrate (mb): no rung above it")
    p.add_argument("--verify", action="store_true",
                   help="decode what arrives (every init section, the first frames of every segment; timestamps "
                        "without gaps or overlaps, audio within a frame of video) and list each broken segment "
                        "with its URL; exit status 4 when there is any")
    p.add_argument("--verify-every", type=int, metavar="N",
                   help="with --verify, check every Nth segment of each playlist (default 1; implies --verify)")
    p.add_argument("--report", metavar="FILE.json", help="write the session report as JSON (with --edge-logs or "
                   "--data-dir: its requests joined with the edges' access logs by CMCD session id, and where "
                   "its stalls came from)")
    p.add_argument("--edge-logs", metavar="GLOB", action="append", default=[],
                   help="edge access-log files to join the session with (repeatable; default: DATA_DIR/logs/"
                        "*.access.log of a `vodstack up` stack, see --data-dir)")
    p.add_argument("--data-dir", metavar="DIR",
                   help="the data dir of the `vodstack up` stack played from, for its edges' access logs "
                        "(default: vodstack-data, when it has a logs folder)")
    p.add_argument("--p1203", metavar="FILE", help="write the session's ITU-T P.1203 mode 0 input (one JSON line)")
    p.add_argument("--plot", metavar="FILE.png", help="plot bitrate, throughput, buffer, stalls and failovers")
    p.add_argument("--json", action="store_true", help="print the report as JSON on stdout")
    p.add_argument("--quiet", action="store_true", help="no status line")
    p.add_argument("--config", metavar="FILE", help="TOML file with [play] and [abr] tables")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from client.abr.config import AbrConfig
    from client.devices import get_device
    from client.edgelogs import collect, note_offsets
    from client.joined import NO_LOGS_NOTE, from_report
    from client.p1203 import p1203_input

    from .load import joined_lines
    from client.network import parse_network
    from client.context import SessionConfig
    from client.script import ScriptError, parse_script
    from client.tracks import TrackPreferences

    if args.steering is None and not args.target.startswith(("http://", "https://")):
        raise UsageError(f"{args.target!r} is not a playlist URL; give --steering URL to play a title by name")
    if args.steering is not None and args.target.startswith(("http://", "https://")):
        raise UsageError("with --steering, TARGET is a title name, not a URL")
    if not (args.speed > 0):
        raise UsageError("--speed must be positive")
    if args.duration is not None and args.duration <= 0:
        raise UsageError("--duration must be positive")
    if args.stall_budget is not None and not args.stall_budget > 0:
        raise UsageError("--stall-budget must be positive")
    if args.verify_every is not None and args.verify_every < 1:
        raise UsageError("--verify-every must be at least 1")
    from client.abr import ALGORITHMS
    from client.errors import ProfileError

    try:
        device = get_device(args.device, args.devices or os.environ.get("VODSTACK_DEVICES"))
        network_name = args.network or device.default_network
        schedule = parse_network(network_name)
    except ProfileError as e:
        raise UsageError(str(e)) from None
    if args.abr is not None and args.abr not in ALGORITHMS:
        raise UsageError(f"unknown ABR algorithm {args.abr!r} (known: {', '.join(ALGORITHMS)})")
    config = load_config(SessionConfig, section="play", file=args.config, flags={
        "abr": args.abr, "duration_s": args.duration, "max_buffer_s": args.max_buffer,
        "stall_budget_s": args.stall_budget, "format": args.format, "cmcd": args.cmcd,
        "cmsd_mb": True if args.cmsd_mb else None,
        "verify_every": args.verify_every if args.verify_every is not None else 1 if args.verify else None})
    try:
        script = parse_script(start=args.start, seeks=args.seek, pauses=args.pause, watch_s=args.watch)
    except ScriptError as e:
        raise UsageError(str(e)) from None
    config = dataclasses.replace(config, script=script)
    abr_config = load_config(AbrConfig, section="abr", file=args.config, flags={
        "initial_bandwidth_bps": args.initial_kbps * 1000 if args.initial_kbps else None})
    langs = tuple(x.strip() for x in (args.audio_lang or "").split(",") if x.strip())
    prefs = TrackPreferences(audio_languages=langs, subtitle_language=args.subs_lang, prefer_sdh=args.sdh,
                             audio_description=args.audio_description)
    kwargs = dict(device=device, network=schedule, network_name=network_name, speed=args.speed, prefs=prefs,
                  config=config, abr_config=abr_config)
    if args.steering:
        kwargs.update(steering_url=args.steering, title=args.target, region=args.region)
    else:
        kwargs.update(master_url=args.target)
    status = None if args.quiet else StatusLine(sys.stderr)
    globs = edge_log_globs(args) if (args.report or args.json) else []
    offsets = note_offsets(globs) if globs else {}
    report = _run_loop(_play(kwargs, status, client_context(args.ca)))
    doc = report.as_dict()
    if globs:
        joined = _run_loop(collect(globs, offsets, [from_report(report)],
                                   segments={report.session_id: report.segments}))
        if joined is None:
            print(f"vodstack play: {NO_LOGS_NOTE}: no file matches {' '.join(globs)}", file=sys.stderr)
        else:
            doc["joined"] = joined
    if args.report:
        with open(args.report, "w") as f:
            f.write(json.dumps(doc, indent=1, default=str) + "\n")
    if args.p1203:
        with open(args.p1203, "w") as f:
            f.write(json.dumps(p1203_input(report, device=device), separators=(",", ":")) + "\n")
    if args.plot:
        report.plot(args.plot)
    if args.json:
        print(json.dumps(doc, indent=1, default=str))
    else:
        print("\n".join(report.summary_lines() + (joined_lines(doc["joined"]) if "joined" in doc else [])))
    if not report.ok:
        print(f"vodstack: error: playback failed: {report.error}", file=sys.stderr)
        return 1
    if report.verification is not None and report.verification.errors:
        n = report.verification.errors
        print(f"vodstack: error: {n} media error{'' if n == 1 else 's'} (see above)", file=sys.stderr)
        return 4
    return 0


def edge_log_globs(args: argparse.Namespace) -> list[str]:
    """``--edge-logs``, else the stack's ``DATA_DIR/logs/*.access.log`` (``--data-dir``, else ``vodstack-data``
    when it has a logs folder), else none."""
    if args.edge_logs:
        return list(args.edge_logs)
    logs = Path(args.data_dir or "vodstack-data") / "logs"
    return [str(logs / "*.access.log")] if args.data_dir or logs.is_dir() else []


def _run_loop(coro: Coroutine[Any, Any, T]) -> T:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency
        return asyncio.run(coro)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)


async def _play(kwargs: dict[str, Any], status: StatusLine | None, ssl_context: ssl.SSLContext) -> SessionReport:
    from client.session import PlayerSession

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ssl_context)) as http:
        session = PlayerSession(http, **kwargs)
        task = asyncio.create_task(session.run())
        try:
            while not task.done():
                if status is not None:
                    status.show(session.status())
                await asyncio.wait({task}, timeout=0.5)
        finally:
            if status is not None:
                status.done()
            if not task.done():
                task.cancel()
        return task.result()


class StatusLine:
    """``  12.0/60.0 s playing  buffer 14.2 s  720p avc1 3000kbps  thr 25.3 Mbps  stalls 0  edge-a``"""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self.last_print = 0.0
        self.shown = False

    def show(self, s: dict[str, Any]) -> None:
        line = (f"{s['position_s']:6.1f}/{s['content_s']:.1f} s {s['state']:<9} buffer {s['buffer_s']:5.1f} s  "
                f"{s['rung'] or '-':<22} thr {s['throughput_bps'] / 1e6:6.2f} Mbps  stalls {s['stalls']}  "
                f"failovers {s['failovers']}  {s['pathway'] or ''}")
        if self.tty:
            self.stream.write("\r\033[K" + line)
            self.stream.flush()
            self.shown = True
        elif time.monotonic() - self.last_print >= 5.0:
            self.stream.write(line + "\n")
            self.stream.flush()
            self.last_print = time.monotonic()

    def done(self) -> None:
        if self.tty and self.shown:
            self.stream.write("\r\033[K")
            self.stream.flush()
