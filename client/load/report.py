"""The load report: ``report.json`` (the run's whole result) and ``index.html`` with PNG plots.

    write_report(folder, result)  ->  folder/report.json, folder/index.html, folder/*.png

Plots (matplotlib, Agg, imported only here): ``timeline.png`` (active and stalled sessions,
stall ratio, delivered throughput over scenario time, chaos events as vertical lines and
failovers as ticks), ``startup_cdf.png`` (start-up time CDF per device), ``bitrate.png``
(session average bitrate per device and per network), ``edges.png`` (each edge's byte hit ratio
and bytes served over time, chaos events marked), ``stall_causes.png`` (stall seconds by cause, in all,
per device and per network, from the ``joined`` section: ``client/joined.py``). A plot with no data is
left out. The page's "Where the stalls came from" section shows the joined section (or says that no
edge logs were joined), and the hit ratio per device and per network from the edges' lines.
"""
from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

__all__ = ["write_report", "write_json"]


def write_json(folder: Path, result: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "report.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=1, default=str) + "\n")
    tmp.replace(path)
    return path


def write_report(folder: Path, result: dict[str, Any]) -> list[Path]:
    """Write every file; returns their paths (report.json first)."""
    files = [write_json(folder, result)]
    images = _plots(folder, result)
    files += images
    index = folder / "index.html"
    index.write_text(_html(result, [p.name for p in images]))
    files.append(index)
    return files


# --- plots ------------------------------------------------------------------------------------

def _mark_chaos(axes: list[Any], chaos: list[dict[str, Any]]) -> None:
    for c in chaos:
        at = c.get("applied_at_s")
        if at is None:
            continue
        for ax in axes:
            ax.axvline(at, color="crimson", ls="--", lw=1)
        axes[0].annotate(f"{c['action']}:{c['target']}", (at, 1.0), xycoords=("data", "axes fraction"),
                         rotation=90, va="top", ha="right", fontsize=7, color="crimson")


def _plots(folder: Path, result: dict[str, Any]) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out: list[Path] = []
    tl = result.get("timeline") or []
    chaos = result.get("chaos") or []
    sessions = result.get("sessions") or []
    if tl:
        t = [p["t_s"] for p in tl]
        fig, (a1, a2, a3) = plt.subplots(3, 1, sharex=True, figsize=(10, 8), constrained_layout=True)
        a1.plot(t, [p["active"] for p in tl], label="active")
        a1.plot(t, [p["stalled"] for p in tl], label="stalled", color="red")
        fo = [f["at_s"] for s in sessions for f in s.get("failovers") or ()]
        if fo:
            a1.plot(fo, [0] * len(fo), "|", color="purple", ms=12, label="failover")
        a1.set_ylabel("sessions")
        a1.legend(loc="upper left", fontsize=8)
        a2.plot(t, [100 * p["stall_ratio"] for p in tl], color="red")
        a2.set_ylabel("stalled (% of watching)")
        a3.plot(t, [p["throughput_bps"] / 1e6 for p in tl], color="green")
        a3.set_ylabel("delivered Mb/s (wall clock)")
        a3.set_xlabel("scenario time (s)")
        _mark_chaos([a1, a2, a3], chaos)
        a1.set_title("sessions, stalls and throughput over time", fontsize=10)
        out.append(_save(fig, folder / "timeline.png", plt))
    by_device: dict[str, list[float]] = {}
    for s in sessions:
        if s.get("startup_s") is not None:
            by_device.setdefault(s["device"], []).append(s["startup_s"])
    if by_device:
        fig, ax = plt.subplots(figsize=(8, 5), constrained_layout=True)
        for device, xs in sorted(by_device.items()):
            xs = sorted(xs)
            ax.step(xs, [(i + 1) / len(xs) for i in range(len(xs))], where="post", label=f"{device} (n={len(xs)})")
        ax.set_xlabel("start-up time (media s)")
        ax.set_ylabel("fraction of sessions")
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        ax.set_title("start-up time CDF per device", fontsize=10)
        out.append(_save(fig, folder / "startup_cdf.png", plt))
    rated = [s for s in sessions if s.get("avg_bitrate_bps")]
    if rated:
        fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), constrained_layout=True)
        for ax, key, title in ((axes[0], "device", "per device"), (axes[1], "network_mix", "per network")):
            groups: dict[str, list[float]] = {}
            for s in rated:
                groups.setdefault(str(s.get(key) or s["network"]), []).append(s["avg_bitrate_bps"] / 1e3)
            names = sorted(groups)
            ax.boxplot([groups[n] for n in names], showfliers=True)
            ax.set_xticks(range(1, len(names) + 1), [n if len(n) < 24 else n[:21] + "..." for n in names],
                          rotation=20, fontsize=8)
            ax.set_ylabel("session average bitrate (kb/s)")
            ax.set_title(f"bitrate {title}", fontsize=10)
        out.append(_save(fig, folder / "bitrate.png", plt))
    series = (result.get("edges") or {}).get("series") or []
    if series:
        fig, (a1, a2) = plt.subplots(2, 1, sharex=True, figsize=(10, 6), constrained_layout=True)
        for name in sorted({p["edge"] for p in series}):
            pts = [p for p in series if p["edge"] == name]
            a1.plot([p["t_s"] for p in pts], [100 * p["hit_ratio"] if p.get("hit_ratio") is not None else float("nan")
                                              for p in pts], ".-", label=name, ms=3)
            a2.plot([p["t_s"] for p in pts], [(p.get("served_bps") or 0) / 1e6 if p.get("up") else float("nan")
                                              for p in pts], label=name)
        a1.set_ylabel("byte hit ratio (%)")
        a1.set_ylim(-2, 102)
        a1.legend(fontsize=7, ncol=2, loc="lower right")
        a2.set_ylabel("served Mb/s")
        a2.set_xlabel("scenario time (s)")
        _mark_chaos([a1, a2], chaos)
        a1.set_title("edges: hit ratio and bytes served (from /_/metrics)", fontsize=10)
        out.append(_save(fig, folder / "edges.png", plt))
    stalls = (result.get("joined") or {}).get("stalls") or {}
    if stalls.get("count"):
        out.append(_stall_causes_plot(folder / STALL_PLOT, stalls, plt))
    return out


STALL_PLOT = "stall_causes.png"
CAUSE_COLORS = {"origin_error": "tab:red", "edge_failure": "tab:purple", "fill": "tab:orange",
                "network": "tab:blue", "unknown": "tab:gray"}


def _stall_causes_plot(path: Path, stalls: dict[str, Any], plt: Any) -> Path:
    """Stall seconds by cause: one bar per cause, then per device and per network stacked by cause."""
    causes = list(stalls["by_cause"])
    fig, axes = plt.subplots(1, 3, figsize=(12, 4), constrained_layout=True,
                             gridspec_kw={"width_ratios": [1.2, 1, 1]})
    totals = stalls["by_cause"]
    axes[0].bar(causes, [totals[c]["seconds"] for c in causes], color=[CAUSE_COLORS.get(c, "k") for c in causes])
    axes[0].set_ylabel("stall seconds (media)")
    axes[0].set_title("stall seconds by cause", fontsize=10)
    axes[0].tick_params(axis="x", rotation=20, labelsize=8)
    for ax, key, title in ((axes[1], "by_device", "per device"), (axes[2], "by_network", "per network")):
        groups = stalls.get(key) or {}
        names = list(groups)
        bottom = [0.0] * len(names)
        for c in causes:
            values = [groups[n][c]["seconds"] for n in names]
            if any(values):
                ax.bar(range(len(names)), values, bottom=bottom, color=CAUSE_COLORS.get(c, "k"), label=c)
                bottom = [b + v for b, v in zip(bottom, values)]
        ax.set_xticks(range(len(names)), [n if len(n) < 20 else n[:17] + "..." for n in names], rotation=20,
                      fontsize=8)
        ax.set_title(f"stall seconds {title}", fontsize=10)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    return _save(fig, path, plt)


def _save(fig: Any, path: Path, plt: Any) -> Path:
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


# --- html -------------------------------------------------------------------------------------

def _pct(x: Any) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def _joined_html(joined: dict[str, Any] | None, plotted: bool) -> str:
    """"Where the stalls came from": stall seconds by cause and the rule, the sessions' stalls, the hit
    ratio per device and per network (``client/joined.py``)."""
    e = html.escape
    head = "<h2>Where the stalls came from</h2>"
    if not joined:
        return head + "<p>no edge logs joined (give --edge-logs)</p>"
    req, st = joined["requests"], joined["stalls"]
    files = ", ".join(e(f"{f['edge']} ({f.get('lines', 0)} lines)") for f in joined["files"]) or "none"
    parts = [head, f"<p>{req['matched']} of {req['client']} client requests matched to an edge access-log line "
                   f"({req['unmatched']} unmatched; {req['edge_lines_unmatched']} edge lines of these sessions "
                   f"without a client record, e.g. attempts that failed over). Logs read: {files}.</p>"]
    if joined.get("note"):
        parts.append(f"<p class=miss>{e(joined['note'])}</p>")
    parts.append(f"<p>{st['count']} stalls, {st['seconds']:.1f} media s in {st['sessions']} sessions; each "
                 "is given the first cause whose rule holds, in this order:</p>")
    parts.append("<table><tr><th>cause</th><th>stalls</th><th>seconds</th><th>share</th><th>rule</th></tr>" + "".join(
        f"<tr><td>{e(c)}</td><td>{v['count']}</td><td>{v['seconds']:.2f}</td><td>{_pct(v['share'])}</td>"
        f"<td>{e(joined['rules'].get(c, ''))}</td></tr>" for c, v in st["by_cause"].items()) + "</table>")
    if plotted:
        parts.append(f"<img src='{STALL_PLOT}'>")
    listed = [(x, a) for x in joined["sessions"] for a in x["stalls"]][:40]
    if listed:
        parts.append("<h3>Stalls, first 40</h3><table><tr><th>session</th><th>device</th><th>network</th>"
                     "<th>at (s)</th><th>seconds</th><th>cause</th><th>reason</th></tr>" + "".join(
                         f"<tr><td>{e(x['session_id'])}</td><td>{e(x['device'])}</td><td>{e(x['network'])}</td>"
                         f"<td>{a['at_s']:.2f}</td><td>{a['duration_s']:.2f}</td><td>{e(a['cause'])}</td>"
                         f"<td>{e(a['reason'])}</td></tr>" for x, a in listed) + "</table>")
    for key, title in (("by_device", "Edge hit ratio by device"), ("by_network", "Edge hit ratio by network"),
                       ("by_behaviour", "Edge hit ratio by viewer behaviour")):
        rows = joined["hit_ratio"].get(key)
        if rows:
            parts.append(f"<h3>{title}</h3><table><tr><th></th><th>requests</th><th>from cache (RAM, disk, "
                         "stale)</th><th>fills</th><th>request hit ratio</th><th>byte hit ratio</th></tr>" + "".join(
                             f"<tr><td>{e(k)}</td><td>{r['requests']}</td><td>{r['hit_requests']}</td>"
                             f"<td>{r['fill_requests']}</td><td>{_pct(r['request_hit_ratio'])}</td>"
                             f"<td>{_pct(r['byte_hit_ratio'])}</td></tr>" for k, r in rows.items()) + "</table>")
    return "\n".join(parts)


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _table(rows: list[tuple[str, Any]]) -> str:
    return "<table>" + "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(_fmt(v))}</td></tr>"
                               for k, v in rows) + "</table>"


def _html(result: dict[str, Any], images: list[str]) -> str:
    s = result["summary"]
    cfg = result["config"]
    e = html.escape
    parts = [f"<!doctype html><meta charset=utf-8><title>vodstack load report</title>"
             "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto}table{border-collapse:collapse;"
             "margin:.5em 0}th,td{border:1px solid #ccc;padding:2px 8px;text-align:left}.miss{color:#b00}"
             ".ok{color:#070}img{max-width:100%}</style>",
             f"<h1>vodstack load report</h1><p>{e(result['started_at'])}: {cfg['players']} players on "
             f"{e(cfg['steering_url'] or ', '.join(cfg['titles'][:5]))}, speed {cfg['speed']}x, {cfg['workers']} workers; stopped by "
             f"<b>{e(result['stopped_by'])}</b> after {result['duration_s']:.1f} scenario s "
             f"({result['duration_real_s']:.1f} s wall clock).</p>"]
    parts.append("<h2>Sessions</h2>" + _table([
        ("planned", s["planned"]), ("played", s["sessions"]), ("finished", s["finished"]), ("failed", s["failed"]),
        ("cut (still playing at the end)", s["cut"]), ("not started", s["not_started"]),
        ("start-up p50 / p95 / p99 (s)", f"{_fmt(s['startup_p50_s'])} / {_fmt(s['startup_p95_s'])} / "
                                         f"{_fmt(s['startup_p99_s'])}"),
        ("rebuffer ratio", s["rebuffer_ratio"]), ("stalls per session", s["stalls_per_session"]),
        ("failovers (sessions)", f"{s['failovers']} ({s['sessions_with_failover']})"),
        ("bytes delivered", f"{s['bytes']:,}"), ("errors by kind", s["errors_by_kind"] or "none")]))
    if result["slos"]:
        parts.append("<h2>SLOs</h2><table><tr><th>SLO</th><th>limit</th><th>measured</th><th></th></tr>" + "".join(
            f"<tr><td>{e(v['metric'])}</td><td>{_fmt(v['limit'])}</td><td>{_fmt(v['measured'])}</td>"
            f"<td class={'miss' if v['missed'] else 'ok'}>{'MISSED' if v['missed'] else 'met'}</td></tr>"
            for v in result["slos"]) + "</table>")
    if result["chaos"]:
        parts.append("<h2>Chaos</h2><table><tr><th>planned (s)</th><th>applied (s)</th><th>event</th><th>outcome</th>"
                     "</tr>" + "".join(
                         f"<tr><td>{_fmt(c['at_s'])}</td><td>{_fmt(c['applied_at_s'])}</td>"
                         f"<td>{e(c['action'])}:{e(c['target'] or '')}</td>"
                         f"<td class={'ok' if c['ok'] else 'miss'}>{e(str(c.get('detail') or ''))}</td></tr>"
                         for c in result["chaos"]) + "</table>")
    for img in images:
        if img != STALL_PLOT:
            parts.append(f"<h2>{e(img.removesuffix('.png').replace('_', ' '))}</h2><img src='{e(img)}'>")
    parts.append(_joined_html(result.get("joined"), STALL_PLOT in images))
    for key, title in (("bitrate_by_device", "Bitrate by device (kb/s)"),
                       ("bitrate_by_network", "Bitrate by network (kb/s)")):
        if s[key]:
            parts.append(f"<h2>{title}</h2><table><tr><th></th><th>sessions</th><th>p5</th><th>p50</th><th>p95</th>"
                         "</tr>" + "".join(
                             f"<tr><td>{e(k)}</td><td>{d['n']}</td><td>{_fmt((d['p5'] or 0) / 1e3)}</td>"
                             f"<td>{_fmt((d['p50'] or 0) / 1e3)}</td><td>{_fmt((d['p95'] or 0) / 1e3)}</td></tr>"
                             for k, d in s[key].items()) + "</table>")
    if s.get("sessions_by_format"):
        parts.append("<h2>Sessions by manifest format</h2><table><tr><th></th><th>sessions</th><th>started</th>"
                     "<th>start-up p50 (s)</th><th>start-up p95 (s)</th></tr>" + "".join(
                         f"<tr><td>{e(k)}</td><td>{n}</td><td>{s['startup_by_format'].get(k, {}).get('n', 0)}</td>"
                         f"<td>{_fmt(s['startup_by_format'].get(k, {}).get('p50'))}</td>"
                         f"<td>{_fmt(s['startup_by_format'].get(k, {}).get('p95'))}</td></tr>"
                         for k, n in s["sessions_by_format"].items()) + "</table>")
    behaviours = s.get("behaviours") or {}
    if len(behaviours) > 1 or any(name != "play-from-0" for name in behaviours):
        parts.append("<h2>Viewer behaviour</h2><table><tr><th>profile</th><th>sessions</th><th>resumed</th>"
                     "<th>seeks (flushed)</th><th>seek wait (s)</th><th>pauses</th><th>quit early</th>"
                     "<th>watched p50 (s)</th><th>stalls</th><th>rebuffer ratio</th></tr>" + "".join(
                         f"<tr><td>{e(k)}</td><td>{b['sessions']}</td><td>{b['resumed']}</td>"
                         f"<td>{b['seeks']} ({b['seeks_flushed']})</td><td>{_fmt(b['seek_wait_s'])}</td>"
                         f"<td>{b['pauses']}</td><td>{b['quit_early']}</td><td>{_fmt(b['watched_s']['p50'])}</td>"
                         f"<td>{b['stalls']}</td><td>{_fmt(b['rebuffer_ratio'])}</td></tr>"
                         for k, b in behaviours.items()) + "</table><p>The edge hit ratio each behaviour produced "
                     "is under Edge hit ratio by viewer behaviour (with edge logs).</p>")
    res = result["resources"]
    parts.append("<h2>Generator</h2>" + _table([
        ("CPU per session (core fraction)", res.get("cpu_per_session")),
        ("memory per session (bytes, RSS growth / peak sessions)", res.get("rss_per_session_bytes")),
        ("event-loop lag max (ms)", res.get("loop_lag_max_ms"))]))
    if result.get("worker_problems") or result.get("warnings"):
        parts.append("<h2>Generator problems</h2><ul>" + "".join(
            f"<li>{e(p)}</li>" for p in result.get("worker_problems", []) + result.get("warnings", [])) + "</ul>")
    failed = [x for x in result["sessions"] if x["state"] == "failed"][:50]
    if failed:
        parts.append("<h2>Failed sessions (first 50)</h2><table>" + "".join(
            f"<tr><td>{e(x['session_id'])}</td><td>{e(x['device'])}</td><td>{e(x['title'])}</td>"
            f"<td>{e(str(x.get('error') or ''))}</td></tr>" for x in failed) + "</table>")
    parts.append("<p>Every session's summary, the time series and the edge metrics are in "
                 "<a href='report.json'>report.json</a>.</p>")
    return "\n".join(parts) + "\n"
