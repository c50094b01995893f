"""Numbers over the merged per-session results (pure): percentiles, QoE totals, SLO verdicts.

Every figure is computed over the per-session values of all workers together (never by averaging
per-worker figures). A session result is the compact dict a worker sends (`worker.session_result`):
``state`` is ``ok``, ``failed`` or ``cut`` (still playing when the run stopped: Ctrl-C or the
time limit). Cut sessions count in ``sessions`` but are neither finished nor failed; their
start-up counts if they had started.

Definitions (times are media seconds, what the viewer lived through):

    startup_pXX          percentile of startup_s over sessions that started playing
    rebuffer_ratio       sum(stall_s) / (sum(stall_s) + sum(played_s)) over every session
    stalls_per_session   sum(stalls) / sessions
    failed / failed_ratio  failed sessions, and failed / sessions

Percentiles interpolate linearly between closest ranks (numpy's default "linear" method).
"""
from __future__ import annotations

import math
from collections import Counter, defaultdict
from typing import Any, Iterable

from client.qoe import rebuffer_ratio

from .specs import SLO_METRICS, Slo

__all__ = ["percentile", "summarize", "slo_values", "evaluate_slos", "format_slo_miss", "error_kind"]


def percentile(values: Iterable[float], q: float) -> float | None:
    """The ``q``-th percentile (0..100) with linear interpolation; None for no values."""
    xs = sorted(values)
    if not xs:
        return None
    if len(xs) == 1:
        return float(xs[0])
    pos = (len(xs) - 1) * min(max(q, 0.0), 100.0) / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(xs) - 1)
    return float(xs[lo] + (xs[hi] - xs[lo]) * (pos - lo))


def error_kind(error: str | None) -> str:
    """A short class for an error message, for "errors by kind" (the player reports text only)."""
    if not error:
        return ""
    e = error.lower()
    for needle, kind in (("steering service unreachable", "steering-unreachable"),
                         ("steering refused", "steering-refused"), ("steering answer", "steering-refused"),
                         ("every pathway failed", "all-pathways-failed"),
                         ("all pathways too slow", "all-pathways-too-slow"), ("no playable", "no-playable-tracks"),
                         ("nothing in the title", "no-playable-tracks"), ("playlist", "playlist"),
                         ("timeout", "timeout"), ("internal error", "internal")):
        if needle in e:
            return kind
    return "other"


def _r(x: float | None, digits: int = 4) -> float | None:
    return None if x is None else round(x, digits)


def _dist(values: list[float]) -> dict[str, Any]:
    return {"n": len(values), "mean": _r(sum(values) / len(values)) if values else None,
            "p5": _r(percentile(values, 5)), "p50": _r(percentile(values, 50)), "p95": _r(percentile(values, 95))}


def summarize(sessions: list[dict[str, Any]]) -> dict[str, Any]:
    """Counts, start-up percentiles, rebuffering, bitrate by device/network, sessions and start-up by
    the manifest format played (``hls``, ``dash``; ``none`` for a session that loaded none), errors,
    failovers."""
    states = Counter(s["state"] for s in sessions)
    startups = [s["startup_s"] for s in sessions if s.get("startup_s") is not None]
    stall_s = sum(s.get("stall_s") or 0.0 for s in sessions)
    played_s = sum(s.get("played_s") or 0.0 for s in sessions)
    stalls = sum(s.get("stalls") or 0 for s in sessions)
    n = len(sessions)
    by_device: dict[str, list[float]] = defaultdict(list)
    by_network: dict[str, list[float]] = defaultdict(list)
    startup_by_device: dict[str, list[float]] = defaultdict(list)
    startup_by_format: dict[str, list[float]] = defaultdict(list)
    formats = Counter(s.get("format") or "none" for s in sessions)
    for s in sessions:
        if s.get("avg_bitrate_bps"):
            by_device[s["device"]].append(s["avg_bitrate_bps"])
            by_network[s.get("network_mix") or s["network"]].append(s["avg_bitrate_bps"])
        if s.get("startup_s") is not None:
            startup_by_device[s["device"]].append(s["startup_s"])
            startup_by_format[s.get("format") or "none"].append(s["startup_s"])
    errors = Counter(s.get("error_kind") or error_kind(s.get("error")) for s in sessions if s["state"] == "failed")
    return {
        "sessions": n, "finished": states.get("ok", 0), "failed": states.get("failed", 0),
        "cut": states.get("cut", 0), "started": len(startups),
        "failed_ratio": _r(states.get("failed", 0) / n if n else 0.0, 6),
        "startup_p50_s": _r(percentile(startups, 50)), "startup_p95_s": _r(percentile(startups, 95)),
        "startup_p99_s": _r(percentile(startups, 99)), "startup_max_s": _r(max(startups) if startups else None),
        "stalls": stalls, "stall_s": _r(stall_s, 3), "played_s": _r(played_s, 3),
        "rebuffer_ratio": _r(rebuffer_ratio(stall_s, played_s), 6),
        "stalls_per_session": _r(stalls / n if n else 0.0),
        "failovers": sum(len(s.get("failovers") or ()) for s in sessions),
        "sessions_with_failover": sum(1 for s in sessions if s.get("failovers")),
        "bytes": sum(s.get("bytes") or 0 for s in sessions),
        "avg_bitrate_bps": _dist([s["avg_bitrate_bps"] for s in sessions if s.get("avg_bitrate_bps")]),
        "bitrate_by_device": {k: _dist(v) for k, v in sorted(by_device.items())},
        "bitrate_by_network": {k: _dist(v) for k, v in sorted(by_network.items())},
        "startup_by_device": {k: _dist(v) for k, v in sorted(startup_by_device.items())},
        "sessions_by_format": dict(sorted(formats.items())),
        "startup_by_format": {k: _dist(v) for k, v in sorted(startup_by_format.items())},
        "errors_by_kind": dict(errors.most_common()),
        "verify": _verify_totals(sessions),
        "behaviours": _behaviour_totals(sessions),
    }


def _behaviour_totals(sessions: list[dict[str, Any]]) -> dict[str, Any]:
    """Per viewer-behaviour profile: sessions, what the viewers did (seeks, pauses, early quits, the
    time seeks kept them waiting, segments flushed by a seek), watched time and rebuffering."""
    rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for s in sessions:
        rows[s.get("behaviour") or "play-from-0"].append(s)
    out = {}
    for name, group in sorted(rows.items()):
        viewers = [s["viewer"] for s in group if s.get("viewer")]
        stall_s = sum(s.get("stall_s") or 0.0 for s in group)
        played_s = sum(s.get("played_s") or 0.0 for s in group)
        out[name] = {
            "sessions": len(group), "finished": sum(1 for s in group if s["state"] == "ok"),
            "resumed": sum(1 for v in viewers if (v.get("start_s") or 0.0) > 0),
            "seeks": sum(v["seeks"] for v in viewers), "seeks_flushed": sum(v["seeks_flushed"] for v in viewers),
            "seek_wait_s": _r(sum(v["seek_wait_s"] or 0.0 for v in viewers), 3),
            "pauses": sum(v["pauses"] for v in viewers), "quit_early": sum(1 for v in viewers if v["quit_early"]),
            "flushed_segments": sum(v["flushed_segments"] for v in viewers),
            "watched_s": _dist([s.get("played_s") or 0.0 for s in group]),
            "stalls": sum(s.get("stalls") or 0 for s in group),
            "rebuffer_ratio": _r(rebuffer_ratio(stall_s, played_s), 6)}
    return out


def _verify_totals(sessions: list[dict[str, Any]]) -> dict[str, Any]:
    """The sessions that verified what they downloaded: how many, segments checked, CPU, media errors
    (all counted; the first ones kept with their session, URL and what is wrong)."""
    rows = [s for s in sessions if s.get("verify")]
    first = [{"session_id": s["session_id"], **e} for s in rows for e in s["verify"].get("media_errors", ())][:20]
    return {"sessions": len(rows), "segments": sum(s["verify"].get("segments_checked", 0) for s in rows),
            "inits": sum(s["verify"].get("inits_checked", 0) for s in rows),
            "errors": sum(s["verify"].get("errors", 0) for s in rows),
            "sessions_with_errors": sum(1 for s in rows if s["verify"].get("errors")),
            "cpu_s": _r(sum(s["verify"].get("cpu_s", 0.0) for s in rows), 3), "first_errors": first}


def slo_values(summary: dict[str, Any]) -> dict[str, float]:
    """Each SLO metric's measured value (start-up percentiles are 0 when nothing started)."""
    return {
        "startup_p50": summary["startup_p50_s"] or 0.0, "startup_p95": summary["startup_p95_s"] or 0.0,
        "startup_p99": summary["startup_p99_s"] or 0.0, "rebuffer_ratio": summary["rebuffer_ratio"],
        "stalls_per_session": summary["stalls_per_session"], "failed": float(summary["failed"]),
        "failed_ratio": summary["failed_ratio"], "media_errors": float((summary.get("verify") or {}).get("errors", 0)),
    }


def evaluate_slos(slos: tuple[Slo, ...], summary: dict[str, Any]) -> list[dict[str, Any]]:
    """One verdict per SLO: ``{"metric", "limit", "measured", "missed", "message"}``."""
    values = slo_values(summary)
    out = []
    for slo in slos:
        measured = values[slo.metric]
        missed = slo.missed(measured)
        out.append({"metric": slo.metric, "limit": slo.limit, "measured": measured, "missed": missed,
                    "message": format_slo_miss(slo, measured) if missed else ""})
    return out


def _fmt(value: float, unit: str) -> str:
    if unit == "s":
        return f"{value:.3g} s"
    if unit == "count" and float(value).is_integer():
        return str(int(value))
    return f"{value:.4g}"


def format_slo_miss(slo: Slo, measured: float) -> str:
    """``SLO missed: startup_p95 = 2.7 s > 2 s``."""
    unit = SLO_METRICS[slo.metric]
    return f"SLO missed: {slo.metric} = {_fmt(measured, unit)} > {_fmt(slo.limit, unit)}"
