"""The runner's view of a load run (pure): worker messages in, counters, timelines and figures out.

`RunState.on_message` takes every JSON line a worker sends (`worker` module docstring);
`RunState.sample(t_real)` appends one point to the run's timeline (the runner calls it once a
second); `RunState.view()` is what the live dashboard shows; `RunState.resources()` the
generator's own costs (CPU per session, memory per session, event-loop lag).

Timeline times: ``t_real`` is wall-clock seconds since the load started, ``t_s`` scenario seconds
(``t_real * speed``), the timeline the chaos schedule and the sessions' events live on.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from client.qoe import rebuffer_ratio

from .summary import error_kind, percentile

__all__ = ["RunState"]

_SUMMED = ("launched", "active", "starting", "playing", "stalled", "finished", "failed", "cut", "bytes", "failovers")


class RunState:
    def __init__(self, *, speed: float, workers: int, planned: int) -> None:
        self.speed = speed
        self.workers = workers
        self.planned = planned
        self.sessions: list[dict[str, Any]] = []
        self.stats: dict[int, dict[str, Any]] = {}
        self.done: dict[int, dict[str, Any]] = {}
        self.startups: list[float] = []
        self.timeline: list[dict[str, Any]] = []
        self.chaos: list[dict[str, Any]] = []
        self.edge_series: list[dict[str, Any]] = []
        self.edges_latest: dict[str, dict[str, Any]] = {}
        self.errors: Counter[str] = Counter()
        self.session_seconds: dict[int, float] = defaultdict(float)
        self.cpu_first: dict[int, float] = {}
        self.lag_max_ms: dict[int, float] = defaultdict(float)
        self._last_bytes = 0
        self._last_t = 0.0

    # --- input ---------------------------------------------------------------------------------

    def on_message(self, msg: dict[str, Any]) -> None:
        kind = msg.get("type")
        w = int(msg.get("worker", -1))
        if kind == "session":
            self.sessions.append(msg)
            if msg["state"] == "failed":
                self.errors[msg.get("error_kind") or error_kind(msg.get("error"))] += 1
        elif kind == "stats":
            prev = self.stats.get(w)
            if prev is not None:
                dt = msg["t_real"] - prev["t_real"]
                if dt > 0:
                    self.session_seconds[w] += dt * (prev["active"] + msg["active"]) / 2
            else:
                self.cpu_first.setdefault(w, msg.get("cpu_s") or 0.0)
            self.stats[w] = msg
            self.startups.extend(msg.get("startups") or ())
            lag = (msg.get("lag_ms") or {}).get("max")
            if lag is not None:
                self.lag_max_ms[w] = max(self.lag_max_ms[w], lag)
        elif kind == "done":
            self.done[w] = msg
        elif kind == "ready":
            self.cpu_first.setdefault(w, 0.0)

    def on_edges(self, t_real: float, rows: dict[str, dict[str, Any]]) -> None:
        """One scrape: ``{edge: {"region", "in_rotation", "up", and EdgeRates fields or None}}``."""
        for name, row in rows.items():
            point = {"t_real": round(t_real, 3), "t_s": round(t_real * self.speed, 3), "edge": name, **row}
            self.edge_series.append(point)
            self.edges_latest[name] = point

    def on_chaos(self, record: dict[str, Any]) -> None:
        self.chaos.append(record)

    # --- output --------------------------------------------------------------------------------

    def totals(self) -> dict[str, int]:
        out = {k: 0 for k in _SUMMED}
        for s in self.stats.values():
            for k in _SUMMED:
                out[k] += int(s.get(k) or 0)
        # results that arrived after the worker's last stats line
        finished = sum(1 for s in self.sessions if s["state"] == "ok")
        failed = sum(1 for s in self.sessions if s["state"] == "failed")
        cut = sum(1 for s in self.sessions if s["state"] == "cut")
        out["finished"], out["failed"], out["cut"] = finished, failed, cut
        return out

    def sample(self, t_real: float) -> dict[str, Any]:
        tot = self.totals()
        dt = t_real - self._last_t
        throughput = 8 * (tot["bytes"] - self._last_bytes) / dt if dt > 0 else 0.0
        self._last_bytes, self._last_t = tot["bytes"], t_real
        watching = tot["playing"] + tot["stalled"]
        p99s = [(s.get("lag_ms") or {}).get("p99") for s in self.stats.values()]
        lags: list[float] = [x for x in p99s if x is not None]
        point = {"t_real": round(t_real, 3), "t_s": round(t_real * self.speed, 3), "active": tot["active"],
                 "starting": tot["starting"], "playing": tot["playing"], "stalled": tot["stalled"],
                 "stall_ratio": round(tot["stalled"] / watching, 5) if watching else 0.0,
                 "throughput_bps": round(max(throughput, 0.0)), "launched": tot["launched"],
                 "finished": tot["finished"], "failed": tot["failed"], "failovers": tot["failovers"],
                 "loop_lag_p99_ms": max(lags) if lags else None}
        self.timeline.append(point)
        return point

    def rungs_by_device(self) -> dict[str, dict[int, int]]:
        merged: dict[str, dict[int, int]] = defaultdict(dict)
        for s in self.stats.values():
            for device, hist in (s.get("rungs") or {}).items():
                for bps, n in hist.items():
                    merged[device][int(bps)] = merged[device].get(int(bps), 0) + n
        return dict(merged)

    def view(self) -> dict[str, Any]:
        tot = self.totals()
        done = [s for s in self.sessions if s["state"] != "cut"]
        stall_s = sum(s.get("stall_s") or 0.0 for s in done)
        played = sum(s.get("played_s") or 0.0 for s in done)
        last = self.timeline[-1] if self.timeline else {}
        return {"totals": tot, "planned": self.planned,
                "startup_p50_s": percentile(self.startups, 50), "startup_p95_s": percentile(self.startups, 95),
                "stall_ratio_now": last.get("stall_ratio", 0.0), "throughput_bps": last.get("throughput_bps", 0),
                "rebuffer_ratio_done": rebuffer_ratio(stall_s, played),
                "rungs": self.rungs_by_device(), "errors": dict(self.errors.most_common()),
                "edges": dict(self.edges_latest), "chaos": list(self.chaos), "resources": self.resources(),
                "t_s": last.get("t_s", 0.0)}

    def resources(self) -> dict[str, Any]:
        """The generator's costs: per worker and overall (CPU per session-second, RSS per session, lag)."""
        per_worker: dict[int, dict[str, Any]] = {}
        for w, s in sorted(self.stats.items()):
            d = self.done.get(w, {})
            cpu = (d.get("cpu_s") or s.get("cpu_s") or 0.0) - self.cpu_first.get(w, 0.0)
            sess_s = self.session_seconds.get(w, 0.0)
            peak = d.get("peak_active") or 0
            rss_delta = (d.get("rss_at_peak_active_bytes") or 0) - (d.get("rss_base_bytes") or 0)
            per_worker[w] = {
                "cpu_s": round(cpu, 3), "session_seconds": round(sess_s, 2),
                "cpu_per_session": round(cpu / sess_s, 6) if sess_s > 0 else None,
                "rss_bytes": s.get("rss_bytes"), "peak_active": peak,
                "rss_per_session_bytes": round(rss_delta / peak) if peak else None,
                "loop_lag_ms": d.get("lag_ms") or s.get("lag_ms"), "loop_lag_max_ms": self.lag_max_ms.get(w)}
        cpus = [v["cpu_s"] for v in per_worker.values()]
        secs = [v["session_seconds"] for v in per_worker.values()]
        mems = [v["rss_per_session_bytes"] for v in per_worker.values() if v["rss_per_session_bytes"] is not None]
        lag = [v["loop_lag_max_ms"] for v in per_worker.values() if v["loop_lag_max_ms"] is not None]
        return {"workers": per_worker,
                "cpu_per_session": round(sum(cpus) / sum(secs), 6) if sum(secs) > 0 else None,
                "rss_per_session_bytes": round(sum(mems) / len(mems)) if mems else None,
                "loop_lag_max_ms": max(lag) if lag else None}
