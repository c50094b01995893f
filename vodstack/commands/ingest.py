"""``vodstack ingest SOURCE --title ID``: transcode a source into the ladder and publish it.

Progress per stage on stderr (rich), then a summary table (or ``--json`` on stdout for scripts).
"""
from __future__ import annotations

import argparse
import io
import json
import signal
import sys
from typing import Any

from origin.transcode import IngestEvents
from origin.transcode.subtitles import parse_spec

EPILOG = """\
subtitles: --subs LANG=FILE (SRT or WebVTT), with flags after a colon:
  --subs fr=fr.srt --subs fr:forced=fr-forced.vtt --subs en:sdh=en-cc.srt --subs de:default=de.vtt
ladder: 'default' (built in, see origin/transcode/ladder_default.toml) or a TOML file of that shape.
executor: local (a pool of --jobs), dask://HOST:PORT (a Dask scheduler), dask://local (a LocalCluster).
SIGTERM / Ctrl-C: every task stops and its ffmpeg is killed (local pool and Dask workers), the work
  folder is removed, nothing is published; exit 130 (SIGINT) or 143 (SIGTERM).
"""


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "ingest", help="transcode a source into a device ladder (CMAF + HLS) and publish it",
        description="Probe, split, encode every chunk x rendition in parallel, merge, validate (VMAF), package "
                    "as CMAF + HLS and publish to storage; the title appears only when complete. Every publish is "
                    "a new immutable version under TITLE/v/VERSION/ (a content hash); a re-ingest says which "
                    "version it replaces, which stays until 'vodstack gc'.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("source", help="the source video file")
    p.add_argument("--title", required=True, help="title id (the storage prefix and URL path)")
    p.add_argument("--out", default="./vodstack-data",
                   help="storage URL: a folder, file://..., s3://bucket/prefix?endpoint=... (default: ./vodstack-data)")
    p.add_argument("--subs", action="append", default=[], metavar="LANG[:FLAGS]=FILE",
                   help="a subtitle file (repeatable); flags: forced, sdh, default")
    p.add_argument("--ladder", default="default", help="built-in ladder name or a TOML file (default: default)")
    p.add_argument("--codecs", default="", help="keep only these codec families, e.g. h264 or h264,hevc")
    p.add_argument("--segment-duration", type=float, default=4.0, metavar="S", help="segment seconds (default: 4)")
    p.add_argument("--chunk-duration", type=float, default=30.0, metavar="S",
                   help="seconds per encode chunk, rounded to whole segments (default: 30)")
    p.add_argument("--layout", choices=("segments", "byterange"), default="segments",
                   help="one file per segment, or one file per rendition with EXT-X-BYTERANGE")
    p.add_argument("--jobs", type=int, default=0, help="parallel tasks (default: the cores)")
    p.add_argument("--executor", default="local", help="local | dask://HOST:PORT | dask://local")
    p.add_argument("--rungs-per-task", type=int, default=0,
                   help="video rungs one chunk task encodes from one decode (0: all rungs of a codec, the default; "
                        "1: one task per chunk x rung)")
    p.add_argument("--preroll-below-kbps", type=int, default=1000, metavar="KBPS",
                   help="rungs under this bitrate start each chunk one segment early to warm up their rate "
                        "control, then drop that segment (default 1000; 0: none)")
    p.add_argument("--ffmpeg", default=None, help="ffmpeg binary (default: $VODSTACK_FFMPEG, else imageio-ffmpeg's)")
    p.add_argument("--vmaf-subsample", type=int, default=50, metavar="N", help="VMAF on every N-th frame (default 50)")
    p.add_argument("--no-vmaf", action="store_true", help="skip the VMAF check (decoding is still checked)")
    p.add_argument("--nice", type=int, default=0, help="run ffmpeg at this nice level (default 0)")
    p.add_argument("--work-dir", default=None, help="where to keep intermediate files (default: system temp)")
    p.add_argument("--keep-work", action="store_true", help="do not delete the intermediate files")
    p.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    p.set_defaults(run=run)


def build_config(args: argparse.Namespace) -> Any:
    from origin.transcode import IngestConfig

    return IngestConfig(
        source=args.source, title=args.title, out=args.out, subs=tuple(parse_spec(s) for s in args.subs),
        ladder=args.ladder, codecs=tuple(c.strip() for c in args.codecs.split(",") if c.strip()),
        segment_duration_s=args.segment_duration, chunk_duration_s=args.chunk_duration, layout=args.layout,
        jobs=args.jobs, executor=args.executor, ffmpeg=args.ffmpeg, rungs_per_task=args.rungs_per_task,
        preroll_below_kbps=args.preroll_below_kbps,
        vmaf_subsample=max(1, args.vmaf_subsample), check_vmaf=not args.no_vmaf, niceness=args.nice,
        work_dir=args.work_dir, keep_work=args.keep_work)


def run(args: argparse.Namespace) -> int:
    from origin.transcode import ingest

    config = build_config(args)
    received: list[int] = []
    previous = stop_on_signals(received)
    events = RichEvents(enabled=sys.stderr.isatty() or not args.json)
    try:
        with events:
            result = ingest(config, events)
    except KeyboardInterrupt:
        return interrupted(received[0] if received else signal.SIGINT, keep_work=args.keep_work,
                           published="publish" in events.finished)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    line = replaced_line(result)
    if line:
        print(line, file=sys.stderr)
    if args.json:
        print(json.dumps(result_json(result), indent=2))
    else:
        print_summary(result)
    return 0


def stop_on_signals(received: list[int]) -> dict[int, Any]:
    """SIGINT and SIGTERM (to this process alone or to its group) raise KeyboardInterrupt in the
    main thread, once: the pipeline then stops every task and kills its ffmpeg (local pool and
    Dask), removes the work folder and publishes nothing. A second signal while it stops is
    ignored: the stop takes a poll of the tasks (SIGKILL still works, and ``PR_SET_PDEATHSIG``
    takes the ffmpeg children along). Returns the handlers it replaced."""

    def on_signal(signum: int, _frame: Any) -> None:
        if received:
            return
        received.append(signum)
        raise KeyboardInterrupt

    return {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}


def interrupted(signum: int, *, keep_work: bool, published: bool = False) -> int:
    """The one stderr line of an interrupted ingest; exit code 128 + the signal (130 SIGINT, 143 SIGTERM).
    ``published``: the signal came after the entry points were written (while the ingest was
    closing its executor): the title is out, say so."""
    work = "work folder kept (--keep-work)" if keep_work else "work folder removed"
    outcome = "but the title was already published" if published else "nothing published"
    print(f"vodstack: ingest interrupted by {signal.Signals(signum).name}: tasks cancelled and their ffmpeg "
          f"processes killed, {work}, {outcome}", file=sys.stderr, flush=True)
    return 128 + signum


def replaced_line(result: Any) -> str | None:
    """What a publish over an existing title replaced, for stderr (None: a new title)."""
    t = result.title
    if result.unchanged:
        return f"vodstack: {t.title}: same bytes as the published version {result.version}: nothing changes"
    r = result.replaced
    if r is None:
        return None
    when = "" if r.published_at_s is None else f" (published {_utc(r.published_at_s)})"
    return (f"vodstack: {t.title}: replacing version {r.version}{when} with {result.version}; "
            f"it stays until 'vodstack gc'")


def _utc(ts_s: float) -> str:
    import datetime

    return datetime.datetime.fromtimestamp(ts_s, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def result_json(result: Any) -> dict[str, Any]:
    t = result.title
    r = result.replaced
    return {
        "title": t.title, "storage": result.storage_url, "objects": result.objects, "layout": t.layout,
        "version": result.version, "written": result.written, "unchanged": result.unchanged,
        "replaced": None if r is None else {"version": r.version, "published_at_s": r.published_at_s},
        "duration_s": t.duration_s, "segment_duration_s": t.segment_duration_s, "executor": result.executor,
        "tasks": result.tasks, "timings_s": {k: round(v, 3) for k, v in result.timings_s.items()},
        "cpu_s": {k: round(v, 3) for k, v in result.cpu_s.items()},
        "video": [{"id": v.id, "codec": v.codec, "width": v.width, "height": v.height,
                   "nominal_kbps": v.nominal_bitrate_kbps, "average_kbps": round(v.average_bandwidth_bps / 1000),
                   "peak_kbps": round(v.bandwidth_bps / 1000), "vmaf": v.vmaf, "segments": len(v.segments),
                   "devices": list(v.devices)} for v in t.video],
        "audio": [{"id": a.id, "codec": a.codec, "language": a.language, "channels": a.channels,
                   "average_kbps": round(a.average_bandwidth_bps / 1000), "group": a.group,
                   "segments": len(a.segments)} for a in t.audio],
        "subtitles": [{"id": s.id, "language": s.language, "forced": s.forced, "sdh": s.sdh,
                       "segments": len(s.segments)} for s in t.subtitles],
    }


def print_summary(result: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    t = result.title
    console = Console(width=None if sys.stdout.isatty() else 120)
    table = Table(title=f"{t.title}: {len(t.video)} video, {len(t.audio)} audio, {len(t.subtitles)} subtitle "
                        f"tracks, {t.duration_s:.2f} s, {t.layout}")
    for col in ("rendition", "resolution", "codec", "avg kbps", "peak kbps", "VMAF", "segments"):
        table.add_column(col, justify="right" if col not in ("rendition", "codec") else "left")
    for v in t.video:
        table.add_row(v.id, f"{v.width}x{v.height}", v.codec, f"{v.average_bandwidth_bps / 1000:.0f}",
                      f"{v.bandwidth_bps / 1000:.0f}", "-" if v.vmaf is None else f"{v.vmaf:.1f}",
                      str(len(v.segments)))
    for a in t.audio:
        table.add_row(a.id, f"{a.channels} ch", a.codec, f"{a.average_bandwidth_bps / 1000:.0f}",
                      f"{a.bandwidth_bps / 1000:.0f}", "-", str(len(a.segments)))
    for s in t.subtitles:
        table.add_row(f"subs {s.id}", s.language, "wvtt", "-", "-", "-", str(len(s.segments)))
    console.print(table)
    times = ", ".join(f"{k} {v:.1f} s" for k, v in result.timings_s.items())
    console.print(f"published {result.objects} objects to {result.storage_url}/{t.title}/ (version {result.version}) "
                  f"({result.tasks} tasks on {result.executor}; {times})")


class RichEvents(IngestEvents):
    """Progress bars per stage on stderr: tasks done / total, elapsed, ETA."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.finished: set[str] = set()  #: stages whose every task is done (``publish``: entry points written)
        self._progress: Any = None
        self._tasks: dict[str, Any] = {}

    def __enter__(self) -> "RichEvents":
        if self.enabled:
            from rich.console import Console
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                                       TimeRemainingColumn)

            self._progress = Progress(TextColumn("{task.description:<9}"), BarColumn(), MofNCompleteColumn(),
                                      TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                                      console=Console(stderr=True), transient=False)
            self._progress.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._progress is not None:
            if exc[0] is not None:  # a failed ingest shows its one error line, not half-done bars
                self._progress.live.transient = True
                console = self._progress.console
                if not console.is_terminal:  # nothing to erase: write nothing at all (not even a newline)
                    console.file = io.StringIO()
            self._progress.__exit__(*exc)

    def stage(self, name: str, total: int) -> None:
        if self._progress is not None and name not in self._tasks:
            self._tasks[name] = self._progress.add_task(name, total=total)

    def advance(self, name: str, done: int, total: int) -> None:
        if done >= total:
            self.finished.add(name)
        if self._progress is not None:
            if name not in self._tasks:
                self.stage(name, total)
            self._progress.update(self._tasks[name], completed=done, total=total)

    def info(self, message: str) -> None:
        if self._progress is not None:
            self._progress.console.print(message)
