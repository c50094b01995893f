"""One load worker process: many player sessions on one event loop, one shared aiohttp session.

    python -m client.load.worker [--loop uvloop|asyncio] [--log-level error]

The runner starts one per ``--workers`` and talks to it in JSON lines:

    stdin   {"type": "job", ...}          the sessions of this worker (`plan.PlannedSession` dicts)
                                          and how to play them (steering URL, speed, ABR, ...)
            {"type": "go", "t0": T}       start: session i starts at monotonic T + at_s / speed
                                          (a Dask task gets ``start_in_s`` instead: `serve_job`)
            {"type": "stop"}              stop now (EOF on stdin means the same)
    stdout  {"type": "ready", ...}        job read, HTTP session made (baseline RSS)
            {"type": "session", ...}      one per session when it ends (`session_result`; with the
                                          job's ``p1203``, its P.1203 input as ``p1203``)
            {"type": "stats", ...}        every ``stats_interval_s``: active, started, stalled,
                                          bytes, failovers, start-ups since the last stats, rungs
                                          by device, event-loop lag, CPU seconds, RSS
            {"type": "done", ...}         last line: totals, peak RSS and active sessions, lag

The worker shares one ``aiohttp.ClientSession`` (unlimited pool, no cookie jar) and one
`playlists.PlaylistCache` between its sessions, and tunes the cyclic GC (`tune_gc`).

Sessions still playing when told to stop are cancelled and reported as ``state: "cut"`` with
what their live status showed. Everything a session reports on its own clock (media seconds from
its start) is also placed on the run's scenario timeline: ``start_s + at_s``.
"""
from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import os
import re
import sys
import time
from dataclasses import replace
from typing import Any, Awaitable, Callable, overload

import aiohttp

from client.context import SessionConfig
from client.devices import DeviceProfile, load_devices
from serverkit.tls import client_context
from client.fetch import FetchTimeouts
from client.network import BandwidthSchedule, Clock, parse_network
from client.p1203 import p1203_input
from client.playlists import PlaylistCache
from client.script import ViewerScript
from client.session import PlayerSession

from .plan import PlannedSession
from .summary import error_kind, percentile

log = logging.getLogger(__name__)

PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")
LAG_PROBE_S = 0.05
MAX_EVENTS = 50  # stall events and failovers kept per session result
MAX_MEDIA_ERRORS = 5  # media errors kept per verifying session result
MAX_REQUESTS = 5000  # media requests kept per session result (with record_requests: the joined report)
#: The columns of a session result's ``requests`` rows (scenario seconds).
REQUEST_FIELDS = ("ot", "url", "range", "start_s", "ttfb_s", "end_s", "size_bytes", "status", "complete")
GC_THRESHOLDS = (100_000, 50, 1000)  # see tune_gc


_TOKEN_IN_PATH = re.compile(r"/t/[^/\s]+/")


@overload
def redact(text: str) -> str: ...


@overload
def redact(text: None) -> None: ...


def redact(text: str | None) -> str | None:
    """Error texts without the signed token in edge URLs (``/t/<token>/``)."""
    return None if text is None else _TOKEN_IN_PATH.sub("/t/<token>/", text)


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE_BYTES


def _r(x: float | None, digits: int = 4) -> float | None:
    return None if x is None else round(x, digits)


def played_format(session: PlayerSession | None) -> str | None:
    """``hls`` or ``dash``: what the session's manifest turned out to be (None: none was loaded)."""
    return session.ctx.manifest_format if session is not None and session.ctx.master_base else None


def session_result(p: PlannedSession, report: Any, *, worker: int, start_s: float, end_s: float,
                   bytes_read: int, played: str | None = None) -> dict[str, Any]:
    """The compact summary of a finished session (``report`` is a `client.report.SessionReport`;
    ``played``, the format of the manifest it played)."""
    qoe = report.qoe
    kind = getattr(report, "error_kind", None) or error_kind(report.error)
    return {
        "type": "session", "index": p.index, "session_id": p.session_id, "worker": worker,
        "device": p.device, "network": p.network, "network_mix": p.network_mix, "region": p.region,
        "title": p.title, "asked_format": p.format, "format": played, "arrival_s": _r(p.at_s), "start_s": _r(start_s), "end_s": _r(end_s),
        "state": "ok" if report.ok else "failed", "error": redact(report.error),
        "error_kind": kind if report.error else "",
        "startup_s": _r(report.startup_s), "played_s": _r(report.played_s), "content_s": _r(report.content_s),
        "session_s": _r(report.session_s), "stalls": report.stall_count, "stall_s": _r(report.stall_s),
        "stall_ratio": _r(report.stall_ratio, 6), "avg_bitrate_bps": round(report.avg_bitrate_bps),
        "switches": report.switches, "qoe_lin": _r(qoe.qoe_lin) if qoe else None, "bytes": bytes_read,
        "segments": len(report.segments), "pathway": report.segments[0].pathway if report.segments else None,
        "failovers": [{"at_s": _r(start_s + f.at_s), "from": f.from_pathway, "to": f.to_pathway,
                       "gap_s": _r(f.gap_s), "cause": f.cause, "error": redact(f.error)[:200]} for f in report.failovers[:MAX_EVENTS]],
        "stall_events": [[_r(start_s + s.at_s), _r(s.duration_s)] for s in report.stalls[:MAX_EVENTS]],
        **({"requests": [request_row(r, start_s) for r in report.requests[:MAX_REQUESTS]]} if report.requests else {}),
        **({"verify": verify_result(report)} if getattr(report, "verification", None) is not None else {}),
        "behaviour": p.behaviour, **({"script": p.script} if p.script is not None else {}),
        **({"viewer": viewer_result(report)} if getattr(report, "behaviour", None) else {}),
    }


def viewer_result(report: Any) -> dict[str, Any]:
    """What a scripted viewer did (`client.report.SessionReport.behaviour`), in counts."""
    b = report.behaviour
    return {"start_s": b["start_s"], "seeks": len(b["seeks"]), "seeks_flushed": sum(1 for x in b["seeks"] if x["flushed"]),
            "seek_wait_s": b["seek_wait_s"], "pauses": len(b["pauses"]), "quit_early": b["quit_early"],
            "watched_s": b["watched_s"], "flushed_segments": sum(1 for x in report.segments if x.discarded)}


def verify_result(report: Any) -> dict[str, Any]:
    """What a verifying session checked, with its first `MAX_MEDIA_ERRORS` media errors (URLs redacted)."""
    return {**report.verification.as_dict(), "media_errors": [
        {"url": redact(e.url), "what": e.what, "track": e.track, "segment": e.segment}
        for e in report.media_errors[:MAX_MEDIA_ERRORS]]}


def request_row(r: Any, start_s: float) -> list[Any]:
    """A `client.report.RequestRecord` as a compact row on the scenario timeline (`REQUEST_FIELDS`)."""
    return [r.ot, redact(r.url), r.range, _r(start_s + r.start_s), _r(r.ttfb_s), _r(start_s + r.end_s),
            r.size_bytes, r.status, r.complete]


def cut_result(p: PlannedSession, session: PlayerSession | None, *, worker: int, start_s: float,
               end_s: float, startup_s: float | None) -> dict[str, Any]:
    """A session stopped before its end (Ctrl-C, time limit): what its live status showed."""
    st = session.status() if session is not None else {}
    segments = session.segments if session is not None else []
    failovers = session.failovers if session is not None else []
    state = session.state if session is not None else None
    stall_s = state.stalled_s(session.clock.now_s()) if state is not None and session is not None else 0.0
    played = state.watched_s if state is not None else 0.0  # media shown (a start position is not watching)
    return {
        "type": "session", "index": p.index, "session_id": p.session_id, "worker": worker,
        "device": p.device, "network": p.network, "network_mix": p.network_mix, "region": p.region,
        "title": p.title, "asked_format": p.format, "format": played_format(session),
        "arrival_s": _r(p.at_s), "start_s": _r(start_s), "end_s": _r(end_s),
        "state": "cut", "error": None, "error_kind": "", "startup_s": _r(startup_s), "played_s": _r(played),
        "content_s": _r(st.get("content_s", 0.0)), "session_s": _r(end_s - start_s),
        "stalls": st.get("stalls", 0), "stall_s": _r(stall_s),
        "stall_ratio": _r(stall_s / (stall_s + played) if stall_s + played > 0 else 0.0, 6),
        "avg_bitrate_bps": round(sum(s.bitrate_bps for s in segments) / len(segments)) if segments else 0,
        "switches": sum(1 for a, b in zip(segments, segments[1:]) if a.rung != b.rung), "qoe_lin": None,
        "bytes": session.fetcher.bytes_read if session is not None else 0, "segments": len(segments),
        "pathway": segments[0].pathway if segments else None,
        "failovers": [{"at_s": _r(start_s + f.at_s), "from": f.from_pathway, "to": f.to_pathway,
                       "gap_s": _r(f.gap_s), "cause": f.cause, "error": redact(f.error)[:200]} for f in failovers[:MAX_EVENTS]],
        "stall_events": [], "behaviour": p.behaviour,
    }


class _Live:
    """One running session as the worker tracks it."""

    __slots__ = ("plan", "session", "start_s", "startup_s", "task")

    def __init__(self, plan: PlannedSession, start_s: float) -> None:
        self.plan = plan
        self.session: PlayerSession | None = None
        self.start_s = start_s
        self.startup_s: float | None = None
        self.task: asyncio.Task[None] | None = None


class Worker:
    """Plays its share of the plan and streams results and stats (see the module docstring)."""

    def __init__(self, job: dict[str, Any], emit: Any) -> None:
        self.job = job
        self.emit = emit
        self.worker = int(job["worker"])
        self.speed = float(job["speed"])
        self.plan = [PlannedSession.from_dict(d) for d in job["sessions"]]
        if any(p.verify for p in self.plan):
            import av  # noqa: F401 - PyAV's first import (~0.2 s) before go, not in a verifying session's start-up
        floor_s = float(job.get("min_real_timeout_s", 1.0)) * self.speed
        base = FetchTimeouts()
        self.session_config = SessionConfig(
            abr=job.get("abr", "default"), duration_s=job.get("watch_s"),
            timeouts=FetchTimeouts(ttfb_s=max(base.ttfb_s, floor_s), stall_s=max(base.stall_s, floor_s),
                                   playlist_deadline_s=max(base.playlist_deadline_s, 5 * floor_s),
                                   segment_deadline_s=max(base.segment_deadline_s, 10 * floor_s)),
            stall_budget_s=max(SessionConfig.stall_budget_s, 2 * floor_s), cmcd=job.get("cmcd", "query"),
            cmsd_mb=bool(job.get("cmsd_mb", False)), record_requests=bool(job.get("record_requests", False)))
        self.devices: dict[str, DeviceProfile] = load_devices(job.get("devices_file"))
        self.networks: dict[str, BandwidthSchedule | None] = {}
        self.cache = PlaylistCache()
        self.live: dict[int, _Live] = {}
        self.t0 = 0.0
        self.launched = self.finished = self.failed = self.cut = 0
        self.done_bytes = self.done_failovers = 0
        self.new_startups: list[float] = []
        self.lags: list[float] = []
        self.all_lags: list[float] = []
        self.rss_base = rss_bytes()
        self.rss_peak = self.rss_base
        self.peak_active = 0
        self.rss_at_peak = self.rss_base
        self.stopping = asyncio.Event()
        self.idle = asyncio.Event()
        self.arrived_all = False
        self.http: aiohttp.ClientSession | None = None

    def scenario_now(self) -> float:
        return (time.monotonic() - self.t0) * self.speed

    def _network(self, name: str) -> BandwidthSchedule | None:
        if name not in self.networks:
            self.networks[name] = parse_network(name)
        return self.networks[name]

    async def run(self, t0: float) -> None:
        self.t0 = t0
        connector = aiohttp.TCPConnector(limit=0, limit_per_host=0, ttl_dns_cache=300,
                                         enable_cleanup_closed=True,
                                         ssl=client_context(cadata=self.job.get("ca_pem")))
        async with aiohttp.ClientSession(connector=connector, auto_decompress=False,
                                         cookie_jar=aiohttp.DummyCookieJar()) as http:
            self.http = http
            tasks = [asyncio.create_task(self._stats_loop()), asyncio.create_task(self._lag_probe())]
            try:
                await self._arrivals()
                self.arrived_all = True
                if self.live and not self.stopping.is_set():
                    idle = asyncio.create_task(self.idle.wait())
                    stop = asyncio.create_task(self.stopping.wait())
                    await asyncio.wait([idle, stop], return_when=asyncio.FIRST_COMPLETED)
                    idle.cancel()
                    stop.cancel()
                await self._cancel_all()
            finally:
                for t in tasks:
                    t.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                self._send_stats()
        self.emit({"type": "done", "worker": self.worker, "launched": self.launched, "finished": self.finished,
                   "failed": self.failed, "cut": self.cut, "rss_base_bytes": self.rss_base,
                   "rss_peak_bytes": self.rss_peak, "peak_active": self.peak_active,
                   "rss_at_peak_active_bytes": self.rss_at_peak, "cpu_s": _r(time.process_time(), 3),
                   "lag_ms": _lag_summary(self.all_lags)})

    async def _arrivals(self) -> None:
        for p in self.plan:
            delay = self.t0 + p.at_s / self.speed - time.monotonic()
            if delay > 0:
                try:
                    await asyncio.wait_for(self.stopping.wait(), delay)
                except asyncio.TimeoutError:
                    pass
            if self.stopping.is_set():
                return
            lv = _Live(p, self.scenario_now())
            self.live[p.index] = lv
            self.launched += 1
            lv.task = asyncio.create_task(self._play(lv))
            if len(self.live) > self.peak_active:
                self.peak_active = len(self.live)

    async def _play(self, lv: _Live) -> None:
        p = lv.plan
        result: dict[str, Any]
        try:
            assert self.http is not None
            device = self.devices[p.device]
            clock = Clock(self.speed)
            config = self.session_config if p.format == "hls" else replace(
                self.session_config, format="auto" if p.format == "device" else p.format)
            if p.verify:
                config = replace(config, verify_every=max(int(self.job.get("verify_every") or 1), 1))
            if p.script is not None:
                config = replace(config, script=ViewerScript.from_dict(p.script))
            steering = self.job.get("steering_url")  # None: p.title is a stream URL (--url)
            lv.session = PlayerSession(self.http, device=device, steering_url=steering,
                                       master_url=None if steering else p.title, title=p.title if steering else None,
                                       region=p.region, network=self._network(p.network), network_name=p.network,
                                       config=config, clock=clock, playlist_cache=self.cache,
                                       session_id=p.session_id, trace_offset_s=p.trace_offset_s)
            report = await lv.session.run()
            result = session_result(p, report, worker=self.worker, start_s=lv.start_s, end_s=self.scenario_now(),
                                    bytes_read=lv.session.fetcher.bytes_read, played=played_format(lv.session))
            if self.job.get("p1203"):
                result["p1203"] = p1203_input(report, device=device, stream_id=p.session_id)
        except asyncio.CancelledError:
            self._note_startup(lv)
            result = cut_result(p, lv.session, worker=self.worker, start_s=lv.start_s, end_s=self.scenario_now(),
                                startup_s=lv.startup_s)
        except Exception as e:  # noqa: BLE001 - one broken session must not take the worker down
            log.exception("session crashed", extra={"kv": {"session": p.session_id}})
            result = {"type": "session", "index": p.index, "session_id": p.session_id, "worker": self.worker,
                      "device": p.device, "network": p.network, "network_mix": p.network_mix, "region": p.region,
                      "title": p.title, "asked_format": p.format, "format": played_format(lv.session),
                      "arrival_s": _r(p.at_s), "start_s": _r(lv.start_s),
                      "end_s": _r(self.scenario_now()), "state": "failed", "error": f"internal error: {e!r}"[:300],
                      "error_kind": "internal", "startup_s": None, "played_s": 0.0, "content_s": 0.0,
                      "session_s": 0.0, "stalls": 0, "stall_s": 0.0, "stall_ratio": 0.0, "avg_bitrate_bps": 0,
                      "switches": 0, "qoe_lin": None, "bytes": 0, "segments": 0, "pathway": None,
                      "failovers": [], "stall_events": [], "behaviour": p.behaviour}
        self.live.pop(p.index, None)
        if not self.live and self.arrived_all:
            self.idle.set()
        if lv.startup_s is None and result.get("startup_s") is not None:
            self.new_startups.append(result["startup_s"])
        state = result["state"]
        if state == "ok":
            self.finished += 1
        elif state == "failed":
            self.failed += 1
        else:
            self.cut += 1
        self.done_bytes += result["bytes"]
        self.done_failovers += len(result["failovers"])
        self.emit(result)

    def _note_startup(self, lv: _Live) -> None:
        s = lv.session
        if lv.startup_s is None and s is not None and s.state is not None and s.state.started_at is not None:
            lv.startup_s = s.state.started_at  # the session's clock starts with it: ~0 at creation
            self.new_startups.append(lv.startup_s)

    async def _cancel_all(self) -> None:
        tasks = [lv.task for lv in self.live.values() if lv.task is not None]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _stats_loop(self) -> None:
        interval = float(self.job.get("stats_interval_s", 1.0))
        while True:
            await asyncio.sleep(interval)
            self._send_stats()

    def _send_stats(self) -> None:
        starting = playing = stalled = 0
        live_bytes = live_failovers = 0
        rungs: dict[str, dict[int, int]] = {}
        for lv in self.live.values():
            s = lv.session
            if s is None:
                starting += 1
                continue
            self._note_startup(lv)
            live_bytes += s.fetcher.bytes_read
            live_failovers += len(s.failovers)
            state = s.status()["state"]
            if state in ("resolving", "starting"):
                starting += 1
                continue
            if state == "stalled":
                stalled += 1
            else:
                playing += 1
            if s.segments:
                by = rungs.setdefault(lv.plan.device, {})
                bps = s.segments[-1].bitrate_bps
                by[bps] = by.get(bps, 0) + 1
        rss = rss_bytes()
        self.rss_peak = max(self.rss_peak, rss)
        if len(self.live) >= self.peak_active:
            self.rss_at_peak = max(self.rss_at_peak, rss)
        lags, self.lags = self.lags, []
        startups, self.new_startups = self.new_startups, []
        self.emit({"type": "stats", "worker": self.worker, "t_real": _r(time.monotonic() - self.t0, 3),
                   "launched": self.launched, "active": len(self.live), "starting": starting, "playing": playing,
                   "stalled": stalled, "finished": self.finished, "failed": self.failed, "cut": self.cut,
                   "bytes": self.done_bytes + live_bytes, "failovers": self.done_failovers + live_failovers,
                   "startups": [_r(x) for x in startups],
                   "rungs": {d: {str(k): v for k, v in r.items()} for d, r in rungs.items()},
                   "lag_ms": _lag_summary(lags), "cpu_s": _r(time.process_time(), 3), "rss_bytes": rss})

    async def _lag_probe(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            t = loop.time()
            await asyncio.sleep(LAG_PROBE_S)
            lag = max(loop.time() - t - LAG_PROBE_S, 0.0)
            self.lags.append(lag)
            self.all_lags.append(lag)


def _lag_summary(lags: list[float]) -> dict[str, float | None]:
    if not lags:
        return {"mean": None, "p99": None, "max": None}
    return {"mean": _r(1000 * sum(lags) / len(lags), 2), "p99": _r(1000 * (percentile(lags, 99) or 0.0), 2),
            "max": _r(1000 * max(lags), 2)}


def tune_gc() -> None:
    """Fewer, cheaper collections: with the default thresholds a worker holding a few hundred
    sessions spent about half its CPU in the cyclic GC, with pauses up to 0.45 s (loop lag that
    became stalls). Objects alive now (modules, profiles, the plan) leave the collector's view."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_THRESHOLDS[0], GC_THRESHOLDS[1], GC_THRESHOLDS[2])


async def serve(stdin: asyncio.StreamReader, emit: Any) -> None:
    """Read the job, say ready, wait for go, play; stop on ``stop`` or EOF."""
    line = await stdin.readline()
    if not line:
        return

    async def next_control() -> dict[str, Any]:
        raw = await stdin.readline()
        return json.loads(raw) if raw else {"type": "stop"}

    await serve_job(json.loads(line), emit, next_control)


async def serve_job(job: dict[str, Any], emit: Any, next_control: Callable[[], Awaitable[dict[str, Any]]]) -> None:
    """A worker's life once it has its job: say ready, wait for ``go``, play until done or ``stop``.
    ``go`` carries ``t0``, a monotonic time of the runner's (same host), or ``start_in_s``: start that
    many seconds after this worker's own monotonic now (a Dask task's child, `dask_workers`: another
    host has another monotonic clock)."""
    worker = Worker(job, emit)
    tune_gc()
    emit({"type": "ready", "worker": worker.worker, "pid": os.getpid(), "sessions": len(worker.plan),
          "rss_bytes": worker.rss_base})
    go = await next_control()
    if go.get("type") != "go":
        emit({"type": "done", "worker": worker.worker, "launched": 0, "finished": 0, "failed": 0, "cut": 0})
        return
    t0 = float(go["t0"]) if "t0" in go else time.monotonic() + max(float(go.get("start_in_s", 0.0)), 0.0)

    async def control() -> None:
        while (await next_control()).get("type") != "stop":
            pass
        worker.stopping.set()

    watcher = asyncio.create_task(control())
    try:
        await worker.run(t0)
    finally:
        watcher.cancel()


def _emitter() -> Any:
    out = sys.stdout.buffer

    def emit(doc: dict[str, Any]) -> None:
        out.write(json.dumps(doc, separators=(",", ":")).encode() + b"\n")
        out.flush()

    return emit


async def _main() -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 30)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    await serve(reader, _emitter())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m client.load.worker")
    parser.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop")
    parser.add_argument("--log-level", default="error")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if args.loop == "uvloop":
        import uvloop

        uvloop.run(_main())
    else:
        asyncio.run(_main())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
