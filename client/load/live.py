"""The live view of a load run on stderr: a `rich` dashboard on a terminal, one status line otherwise.

Both take `collect.RunState.view()` dicts through ``update(view)``; ``make_live(stream)`` picks
the dashboard when the stream is a TTY. The status line is printed every ``every_s`` seconds.
"""
from __future__ import annotations

import sys
import time
from typing import Any, TextIO

__all__ = ["make_live", "status_line", "Dashboard", "LineStatus"]


def _ms(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}s"


def _rate(bps: float | None) -> str:
    if bps is None:
        return "-"
    return f"{bps / 1e9:.2f} Gb/s" if bps >= 1e9 else f"{bps / 1e6:.1f} Mb/s"


def status_line(view: dict[str, Any]) -> str:
    t = view["totals"]
    line = (f"load t={view['t_s']:.0f}s active {t['active']} started {t['launched']}/{view['planned']} "
            f"finished {t['finished']} failed {t['failed']} | startup p50 {_ms(view['startup_p50_s'])} "
            f"p95 {_ms(view['startup_p95_s'])} | stalled {100 * view['stall_ratio_now']:.1f}% | "
            f"failovers {t['failovers']} | {_rate(view['throughput_bps'])}")
    if view["errors"]:
        line += " | errors " + ",".join(f"{k}={v}" for k, v in view["errors"].items())
    return line


class LineStatus:
    """One line every ``every_s`` seconds (stderr is not a terminal: CI, pipes, files)."""

    def __init__(self, stream: TextIO, every_s: float = 5.0) -> None:
        self.stream = stream
        self.every_s = every_s
        self._last = 0.0

    def start(self) -> None:
        pass

    def update(self, view: dict[str, Any], force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._last >= self.every_s:
            self._last = now
            self.stream.write(status_line(view) + "\n")
            self.stream.flush()

    def event(self, text: str) -> None:
        self.stream.write(f"load: {text}\n")
        self.stream.flush()

    def stop(self) -> None:
        pass


class Dashboard:
    """A `rich` Live dashboard: sessions, QoE, bitrate by device, errors, edges, chaos, generator."""

    def __init__(self, stream: TextIO) -> None:
        from rich.console import Console
        from rich.live import Live

        self.console = Console(file=stream)
        self.live = Live(console=self.console, refresh_per_second=2, transient=False)

    def start(self) -> None:
        self.live.start()

    def update(self, view: dict[str, Any], force: bool = False) -> None:
        self.live.update(self.render(view), refresh=force)

    def event(self, text: str) -> None:
        self.console.log(text)

    def stop(self) -> None:
        self.live.stop()

    def render(self, view: dict[str, Any]) -> Any:
        from rich.console import Group
        from rich.table import Table

        t = view["totals"]
        head = Table.grid(padding=(0, 2))
        head.add_row(f"[b]vodstack load[/b]  t={view['t_s']:.0f}s (scenario)",
                     f"active [b]{t['active']}[/b]", f"started {t['launched']}/{view['planned']}",
                     f"finished [green]{t['finished']}[/green]", f"failed [red]{t['failed']}[/red]")
        head.add_row(f"start-up p50 {_ms(view['startup_p50_s'])}  p95 {_ms(view['startup_p95_s'])}",
                     f"stalled now {100 * view['stall_ratio_now']:.1f}%",
                     f"rebuffer (done) {100 * view['rebuffer_ratio_done']:.2f}%",
                     f"failovers {t['failovers']}", f"delivered {_rate(view['throughput_bps'])}")
        parts: list[Any] = [head]
        if view["rungs"]:
            rungs = Table(title="bitrate by device (sessions per rung, now)", title_justify="left", expand=False)
            rungs.add_column("device")
            rungs.add_column("mean")
            rungs.add_column("distribution")
            for device, hist in sorted(view["rungs"].items()):
                n = sum(hist.values())
                mean = sum(k * v for k, v in hist.items()) / n if n else 0
                dist = "  ".join(f"{k // 1000}k:{v}" for k, v in sorted(hist.items()))
                rungs.add_row(device, f"{mean / 1e3:.0f} kb/s", dist)
            parts.append(rungs)
        if view["edges"]:
            edges = Table(title="edges (from their /_/metrics)", title_justify="left")
            for col in ("edge", "region", "state", "hit ratio", "served", "fills/s", "fill"):
                edges.add_column(col)
            for name, e in sorted(view["edges"].items()):
                state = "down" if not e.get("up") else "in rotation" if e.get("in_rotation") else "out"
                hit = e.get("hit_ratio")
                edges.add_row(name, e.get("region", ""), state, "-" if hit is None else f"{100 * hit:.1f}%",
                              _rate(e.get("served_bps")), f"{e.get('fills_per_s') or 0:.1f}", _rate(e.get("fill_bps")))
            parts.append(edges)
        if view["errors"]:
            parts.append("errors: " + ", ".join(f"{k} {v}" for k, v in view["errors"].items()))
        if view["chaos"]:
            parts.append("chaos: " + ", ".join(
                f"{c['action']}:{c['target'] or ''}@{c['applied_at_s']:.0f}s {'ok' if c['ok'] else 'FAILED'}"
                for c in view["chaos"]))
        res = view["resources"]
        lag = res.get("loop_lag_max_ms")
        parts.append(f"[dim]generator: {len(res['workers'])} workers, loop lag max "
                     f"{'-' if lag is None else f'{lag:.0f} ms'}[/dim]")
        return Group(*parts)


def make_live(stream: TextIO | None = None, *, every_s: float = 5.0) -> Dashboard | LineStatus:
    stream = stream or sys.stderr
    if stream.isatty():
        return Dashboard(stream)
    return LineStatus(stream, every_s)
