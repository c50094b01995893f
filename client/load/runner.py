"""The load run: preflight, plan, worker processes, chaos, edge scrapes, live view, result.

    result = await run_load(cfg, stop=asyncio.Event(), live=make_live())

1. `preflight.preflight` checks everything that can be checked before any session plays.
2. `plan.plan_sessions` makes the seeded plan; each worker gets its share (round robin).
3. One process per worker (``python -m client.load.worker``, its own session and process group,
   SIGTERM if this process dies), or with ``cfg.scheduler`` one Dask task per worker on that cluster
   (`dask_workers.DaskWorker`; both are a `LoadWorker`). The run starts (``go``, one shared
   monotonic ``t0``) once every worker has read its job and made its HTTP session.
4. While it runs: worker lines feed `collect.RunState`; once a ``stats_interval_s`` a timeline
   point and the live view; once a ``scrape_interval_s`` the steering's ``/edges`` and each edge's
   ``/_/metrics``; the chaos schedule on time.
5. The run ends when every worker has played all its sessions, or on ``stop`` (Ctrl-C) or the
   time limit: workers are told to stop, report their sessions as cut, and exit (killed after a
   grace). Chaos events not yet applied are recorded as skipped, never dropped.

The result is the document written as ``report.json`` (`report.write_report`). With ``record_requests``
and edge logs (``LoadConfig.edge_logs``), it also has ``joined``: the sessions' requests joined with
what the edges' access logs added during the run, and where the stalls came from
(``client/joined.py``, ``client/edgelogs.py``).
"""
from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import logging
import signal
import sys
import time
from collections import deque
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

import aiohttp

from client.devices import load_devices
from client.edgelogs import collect, note_offsets
from client.joined import from_load_row
from serverkit.tls import client_context, read_ca

from .behaviour import load_behaviours
from .chaos import ChaosApplier
from .collect import RunState
from .config import DEFAULT_TIME_LIMIT_S, LoadConfig
from .dask_workers import DaskCluster
from .edges import EdgeInfo, EdgeRates, fetch_edges, is_loopback_url, scrape_edge
from .errors import LoadError
from .plan import PlanInputs, PlannedSession, plan_sessions
from .specs import ChaosEvent
from .preflight import Preflight, preflight
from .summary import evaluate_slos, summarize

__all__ = ["run_load", "WorkerProcess", "LoadWorker"]

log = logging.getLogger(__name__)
STOP_GRACE_S = 15.0
#: A worker whose event-loop lag p99 is above this made its own delays: the report says so.
LAG_WARNING_MS = 100.0


def _set_pdeathsig() -> None:  # in the child, between fork and exec
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class LoadWorker(Protocol):
    """What the run needs of one load worker: a `WorkerProcess` or a `dask_workers.DaskWorker`."""

    index: int
    sessions: list[PlannedSession]
    tail: deque[str]
    ready: asyncio.Event
    finished: asyncio.Event
    done_msg: dict[str, Any] | None

    async def start(self, cfg: LoadConfig, job: dict[str, Any], on_message: Any) -> None: ...

    async def send(self, doc: dict[str, Any]) -> None: ...

    async def stop(self, grace_s: float = STOP_GRACE_S) -> None: ...

    def problem(self) -> str | None:
        """What went wrong with it, for the report's ``worker_problems`` (None: nothing)."""


class WorkerProcess:
    """One ``python -m client.load.worker`` child and its pipes."""

    def __init__(self, index: int, sessions: list[PlannedSession], log_path: Path | None) -> None:
        self.index = index
        self.sessions = sessions
        self.log_path = log_path
        self.proc: asyncio.subprocess.Process | None = None
        self.tail: deque[str] = deque(maxlen=20)
        self.ready = asyncio.Event()
        self.finished = asyncio.Event()
        self.done_msg: dict[str, Any] | None = None
        self.tasks: list[asyncio.Task[None]] = []

    async def start(self, cfg: LoadConfig, job: dict[str, Any], on_message: Any) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "client.load.worker", "--loop", cfg.loop, "--log-level", cfg.worker_log_level,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            start_new_session=True, preexec_fn=_set_pdeathsig, limit=1 << 24)
        self.tasks = [asyncio.create_task(self._read(on_message)), asyncio.create_task(self._pump_stderr())]
        await self.send(job)

    async def send(self, doc: dict[str, Any]) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        try:
            self.proc.stdin.write(json.dumps(doc, separators=(",", ":")).encode() + b"\n")
            await self.proc.stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            pass

    async def _read(self, on_message: Any) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        try:
            while True:
                line = await self.proc.stdout.readline()
                if not line:
                    return
                try:
                    msg = json.loads(line)
                except ValueError:
                    self.tail.append(line.decode(errors="replace").rstrip())
                    continue
                if msg.get("type") == "ready":
                    self.ready.set()
                elif msg.get("type") == "done":
                    self.done_msg = msg
                on_message(msg)
        finally:
            self.finished.set()

    async def _pump_stderr(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        out = open(self.log_path, "ab") if self.log_path else None
        try:
            while True:
                line = await self.proc.stderr.readline()
                if not line:
                    return
                self.tail.append(line.decode(errors="replace").rstrip())
                if out:
                    out.write(line)
        finally:
            if out:
                out.close()

    def problem(self) -> str | None:
        if self.done_msg is not None:
            return None
        return (f"worker {self.index} exited without finishing (code {self.proc.returncode if self.proc else None}): "
                + " / ".join(list(self.tail)[-3:]))

    async def stop(self, grace_s: float = STOP_GRACE_S) -> None:
        """Ask it to stop (its sessions become ``cut``), wait, kill after ``grace_s``."""
        if self.proc is None:
            return
        if self.proc.returncode is None and not self.finished.is_set():
            await self.send({"type": "stop"})
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self.finished.wait(), grace_s)
        if self.proc.returncode is None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.proc.wait(), 2.0)
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
            await self.proc.wait()
        await asyncio.gather(*self.tasks, return_exceptions=True)


async def _wait_any(*aws: Any, timeout: float | None = None) -> None:
    tasks = [asyncio.ensure_future(a) for a in aws]
    try:
        await asyncio.wait(tasks, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in tasks:
            t.cancel()


class _Run:
    """One run's moving parts (see the module docstring)."""

    def __init__(self, cfg: LoadConfig, pre: Preflight, plan: tuple[PlannedSession, ...], live: Any,
                 report_dir: Path | None) -> None:
        self.cfg = cfg
        self.pre = pre
        self.plan = plan
        self.live = live
        self.report_dir = report_dir
        self.state = RunState(speed=cfg.speed, workers=cfg.workers, planned=len(plan))
        self.t0 = 0.0
        self.edges: list[EdgeInfo] = list(pre.edges)
        self.rates: dict[str, EdgeRates] = {}
        self.pending_chaos = list(cfg.chaos)
        self.applying: set[ChaosEvent] = set()
        self.log_offsets: dict[str, int] | None = None  #: edge log sizes at the start (the joined report)

    def now_real(self) -> float:
        return time.monotonic() - self.t0

    async def scrape(self, http: aiohttp.ClientSession) -> None:
        if self.cfg.steering_url is not None:  # stream URLs (--url): no edges to scrape
            with contextlib.suppress(aiohttp.ClientError, asyncio.TimeoutError, OSError, ValueError, KeyError):
                found = await fetch_edges(http, self.cfg.steering_url.rstrip("/"), timeout_s=2.0)
                self.edges = [e for e in found if self.cfg.allow_remote or is_loopback_url(e.url)]
        t = self.now_real()
        totals = await asyncio.gather(*(scrape_edge(http, e.url) for e in self.edges))
        rows = {}
        for e, tot in zip(self.edges, totals):
            rates = self.rates.setdefault(e.name, EdgeRates())
            row: dict[str, Any] = {"region": e.region, "in_rotation": e.in_rotation, "up": tot is not None}
            if tot is not None:
                r = rates.update(tot, time.monotonic())  # rates need only differences: valid before t0 too
                row.update(r or {})
                row["byte_hit_ratio_total"] = tot.get("byte_hit_ratio")
            rows[e.name] = row
        if self.t0:
            self.state.on_edges(t, rows)

    async def scrape_loop(self, http: aiohttp.ClientSession) -> None:
        while True:
            await asyncio.sleep(self.cfg.scrape_interval_s)
            await self.scrape(http)

    async def sample_loop(self) -> None:
        while True:
            await asyncio.sleep(self.cfg.stats_interval_s)
            self.state.sample(self.now_real())
            if self.live is not None:
                self.live.update(self.state.view())

    async def chaos_loop(self, applier: ChaosApplier) -> None:
        """Events on different targets run independently; those on one target in schedule order."""
        targets = list(dict.fromkeys(ev.target for ev in self.pending_chaos))
        await asyncio.gather(*(self._chaos_target(applier, t) for t in targets))

    async def _chaos_target(self, applier: ChaosApplier, target: str) -> None:
        for ev in [e for e in self.pending_chaos if e.target == target]:
            delay = self.t0 + ev.at_s / self.cfg.speed - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            applied_at = self.now_real() * self.cfg.speed
            self.applying.add(ev)
            outcome = await applier.apply(ev)
            self.applying.discard(ev)
            self.pending_chaos.remove(ev)
            record = {"at_s": ev.at_s, "applied_at_s": round(applied_at, 3),
                      "done_at_s": round(self.now_real() * self.cfg.speed, 3), "action": ev.action,
                      "target": ev.target, **outcome}
            self.state.on_chaos(record)
            log.debug("chaos applied", extra={"kv": {"action": ev.action, "target": ev.target,
                                                       "ok": outcome["ok"], "detail": outcome["detail"]}})
            if self.live is not None:
                self.live.event(f"chaos {ev.action}:{ev.target} at {applied_at:.1f} s: "
                                f"{'ok' if outcome['ok'] else 'FAILED'} {outcome['detail']}".rstrip())


async def run_load(cfg: LoadConfig, *, stop: asyncio.Event | None = None, live: Any = None,
                   report_dir: Path | None = None) -> dict[str, Any]:
    """Run the load (module docstring); returns the report document. `LoadError` before the load
    starts if anything is wrong."""
    stop = stop or asyncio.Event()
    started_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    ca_pem = read_ca(cfg.ca_file) if cfg.ca_file else None  # a bad --ca: one line before any load
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=client_context(cadata=ca_pem))) as http, \
            contextlib.AsyncExitStack() as scope:
        pre = await preflight(cfg, http)
        dask = await DaskCluster.connect(cfg.scheduler) if cfg.scheduler else None  # LoadError: one line
        if dask is not None:
            scope.push_async_callback(dask.close)
            cfg = dask.sized(cfg)
        behaviours = load_behaviours(cfg.behaviour) if cfg.behaviour else None  # BehaviourError: one line
        plan = plan_sessions(PlanInputs(
            players=cfg.players, titles=cfg.titles, devices=cfg.devices, networks=cfg.networks, regions=pre.regions, formats=cfg.formats,
            device_formats={name: d.formats for name, d in load_devices(cfg.devices_file).items()},
            popularity=cfg.popularity, title_weights=cfg.title_weights,
            verify_fraction=cfg.verify_fraction, behaviours=behaviours, ramp_s=cfg.ramp_s, arrival_rate=cfg.arrival_rate, workers=cfg.workers,
            trace_files=pre.trace_files), seed=cfg.seed)
        run = _Run(cfg, pre, plan, live, report_dir)
        if report_dir is not None:
            report_dir.mkdir(parents=True, exist_ok=True)
        workers: list[LoadWorker] = [
            dask.worker(k, [p for p in plan if p.worker == k]) if dask is not None else
            WorkerProcess(k, [p for p in plan if p.worker == k], report_dir / f"worker-{k}.log" if report_dir else None)
            for k in range(cfg.workers)]
        stopped_by = "end"
        try:
            await _start_workers(cfg, workers, run, stop, ca_pem)
            if stop.is_set():
                raise KeyboardInterrupt
            await run.scrape(http)  # a first reading, so the first interval has rates
            if cfg.record_requests and cfg.edge_logs:
                run.log_offsets = note_offsets(cfg.edge_logs)
            run.t0 = time.monotonic() + 0.05
            for w in workers:
                await w.send({"type": "go", "t0": run.t0})
            if live is not None:
                live.start()
            last_arrival = plan[-1].at_s if plan else 0.0
            limit_s = cfg.time_limit_s if cfg.time_limit_s is not None else last_arrival + DEFAULT_TIME_LIMIT_S
            applier = ChaosApplier(http, steering_url=cfg.steering_url or "", control_url=pre.control_url,
                                   admin_key=cfg.admin_key)
            chaos = asyncio.create_task(run.chaos_loop(applier))
            background = [asyncio.create_task(run.sample_loop()), asyncio.create_task(run.scrape_loop(http))]
            all_done = asyncio.gather(*(w.finished.wait() for w in workers))
            await _wait_any(all_done, stop.wait(), timeout=max(limit_s / cfg.speed, 0.0))
            if stop.is_set():
                stopped_by = "interrupt"
            elif not all(w.finished.is_set() for w in workers):
                stopped_by = "time-limit"
            if stopped_by != "end":
                await asyncio.gather(*(w.stop() for w in workers))
            # events not applied yet are recorded as skipped
            deadline = time.monotonic() + 30.0
            while run.applying and stopped_by == "end" and time.monotonic() < deadline:
                await asyncio.sleep(0.05)  # an event being applied is let finish (bounded)
            interrupted = set(run.applying)
            chaos.cancel()
            await asyncio.gather(chaos, return_exceptions=True)
            for t in background:
                t.cancel()
            await asyncio.gather(*background, return_exceptions=True)
            end_s = run.now_real() * cfg.speed
            for ev in run.pending_chaos:
                why = (f"interrupted while being applied at {end_s:.1f} s" if ev in interrupted
                       else f"skipped: the run ended at {end_s:.1f} s")
                run.state.on_chaos({"at_s": ev.at_s, "applied_at_s": None, "done_at_s": None, "action": ev.action,
                                    "target": ev.target, "ok": False, "status": None, "detail": why})
            await run.scrape(http)
            run.state.sample(run.now_real())
            if live is not None:
                live.update(run.state.view(), force=True)
        finally:
            if live is not None and run.t0:
                live.stop()
            await asyncio.gather(*(w.stop(grace_s=5.0) for w in workers), return_exceptions=True)
        result = _result(cfg, run, workers, started_at, stopped_by)
        if run.log_offsets is not None:
            joined = await collect(cfg.edge_logs, run.log_offsets,
                                   [from_load_row(s, cfg.speed) for s in result["sessions"]])
            if joined is not None:
                result["joined"] = joined
        for session in result["sessions"]:  # joined: the rows stay out of report.json (players x requests)
            session.pop("requests", None)
        return result


async def _start_workers(cfg: LoadConfig, workers: list[LoadWorker], run: _Run, stop: asyncio.Event,
                         ca_pem: str | None) -> None:
    for w in workers:
        job = {"type": "job", "worker": w.index, "steering_url": cfg.steering_url.rstrip("/") if cfg.steering_url else None, "speed": cfg.speed,
               "abr": cfg.abr, "watch_s": cfg.watch_s, "stats_interval_s": cfg.stats_interval_s,
               "cmcd": cfg.cmcd, "cmsd_mb": cfg.cmsd_mb, "record_requests": cfg.record_requests,
               "p1203": cfg.p1203, "verify_every": cfg.verify_every,
               "min_real_timeout_s": cfg.min_real_timeout_s, "devices_file": cfg.devices_file,
               "ca_pem": ca_pem,
               "sessions": [p.as_dict() for p in w.sessions]}
        await w.start(cfg, job, run.state.on_message)
    ready = asyncio.gather(*(w.ready.wait() for w in workers))
    await _wait_any(ready, stop.wait(), *(w.finished.wait() for w in workers), timeout=cfg.worker_ready_timeout_s)
    if stop.is_set():
        return
    bad = [w for w in workers if not w.ready.is_set()]
    if bad:
        w = bad[0]
        why = " / ".join(list(w.tail)[-3:]) or "no output"
        raise LoadError(f"load worker {w.index} did not start within {cfg.worker_ready_timeout_s:g} s: {why}")


def _result(cfg: LoadConfig, run: _Run, workers: list[LoadWorker], started_at: str,
            stopped_by: str) -> dict[str, Any]:
    state = run.state
    sessions = sorted(state.sessions, key=lambda s: s["index"])
    summary = summarize(sessions)
    summary["planned"] = len(run.plan)
    summary["not_started"] = len(run.plan) - len(sessions)
    resources = state.resources()
    warnings = []
    for w, r in resources["workers"].items():
        p99 = (r.get("loop_lag_ms") or {}).get("p99")
        if p99 is not None and p99 > LAG_WARNING_MS:
            warnings.append(f"worker {w}: event-loop lag p99 {p99:.0f} ms (> {LAG_WARNING_MS:g} ms): the generator "
                            "itself delayed requests; stalls and start-up times are pessimistic (more --workers, "
                            "or fewer sessions per worker)")
    problems = [p for p in (w.problem() for w in workers) if p is not None]
    return {
        "format": "vodstack-load/1", "started_at": started_at, "stopped_by": stopped_by,
        "interrupted": stopped_by == "interrupt", "duration_real_s": round(run.now_real(), 3),
        "duration_s": round(run.now_real() * cfg.speed, 3), "config": cfg.describe(),
        "regions": {e.name: round(e.weight, 6) for e in run.pre.regions},
        "summary": summary, "slos": evaluate_slos(cfg.slos, summary), "resources": resources,
        "worker_problems": problems, "warnings": warnings, "chaos": state.chaos, "timeline": state.timeline,
        "edges": {"list": [{"name": e.name, "region": e.region, "url": e.url} for e in run.edges],
                  "series": state.edge_series},
        "sessions": sessions,
    }
