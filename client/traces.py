"""Network bandwidth traces: the `Trace` value and the loaders for Pensieve and Sabre files.

A trace is a list of periods played in order and looped when it runs out; each period has a
duration, a constant bandwidth and (Sabre only) a per-request latency.

Formats:

* **Pensieve** (``pensieve_hsdpa/*.log``, ``pensieve_fcc/trace_*``): text lines
  ``<time_s>\\t<throughput_Mbps>``. Pensieve's simulator (``sim/env.py``, ``test/fixed_env.py``)
  starts at line 0 and gives the interval ``(t[i-1], t[i]]`` the bandwidth of line ``i``; when it
  reaches the last line it loops to ``(0, t[1]]``. We keep exactly that convention: period ``i``
  lasts ``t[i] - t[i-1]`` at ``bw[i]`` for ``i = 1..n-1`` (the first line's bandwidth is unused).
  Pensieve traces carry no latency (``latency_s`` is None: the simulator setup supplies it).
* **Sabre** (``sabre/3Glogs_dev/*.json`` ...): a JSON list of
  ``{"duration_ms": int, "bandwidth_kbps": number, "latency_ms": number}``.

``load_traces`` accepts files and folders (a folder loads every regular file inside it, sorted by
name, skipping dot-files and ``README*``). A file that cannot be read or parsed raises
`TraceError` (a ValueError) whose one-line message names the file.

`SHIPPED_TRACES_DIR` is the small set shipped inside the package (``client/traces_data/``, laid out
like ``../shared/traces``; its README gives provenance and licences): a few Pensieve HSDPA and FCC
traces, Sabre's ``bbb.json`` and ``network.json`` and Pensieve's video table.
"""
from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["SHIPPED_TRACES_DIR", "Trace", "TraceError", "load_trace", "load_traces", "load_pensieve_trace",
           "load_sabre_trace"]

#: The traces and video tables shipped as package data (see ``traces_data/README.md``).
SHIPPED_TRACES_DIR = Path(__file__).resolve().with_name("traces_data")


class TraceError(ValueError):
    """A trace file is missing, unreadable or malformed; the message names the file."""


@dataclass(frozen=True)
class Trace:
    """A bandwidth trace as consecutive periods (looped by the simulator when it runs out)."""

    name: str
    durations_s: tuple[float, ...]
    bandwidths_bps: tuple[float, ...]
    latencies_s: tuple[float, ...] | None = None  # per period; None when the format has none
    source: str = ""  # the file it came from

    def __post_init__(self) -> None:
        n = len(self.durations_s)
        if n == 0 or len(self.bandwidths_bps) != n or (self.latencies_s is not None and len(self.latencies_s) != n):
            raise TraceError(f"{self.source or self.name}: trace needs equally long, non-empty period lists")
        if self.total_bytes <= 0:
            raise TraceError(f"{self.source or self.name}: trace carries no data (all bandwidths are 0)")

    @property
    def duration_s(self) -> float:
        return float(sum(self.durations_s))

    @property
    def total_bytes(self) -> float:
        return sum(d * b for d, b in zip(self.durations_s, self.bandwidths_bps)) / 8.0

    @property
    def mean_bandwidth_bps(self) -> float:
        return 8.0 * self.total_bytes / self.duration_s

    @classmethod
    def constant(cls, bandwidth_bps: float, duration_s: float = 1000.0, latency_s: float | None = None,
                 name: str = "constant") -> Trace:
        """A one-period trace (handy in tests and for `vodstack simulate` smoke runs)."""
        lat = None if latency_s is None else (latency_s,)
        return cls(name=name, durations_s=(duration_s,), bandwidths_bps=(bandwidth_bps,), latencies_s=lat)


def _bad(path: Path, why: str) -> TraceError:
    return TraceError(f"{path}: {why}")


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise _bad(path, "no such trace file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise _bad(path, f"cannot read trace ({type(e).__name__})") from None


def _finite(x: float) -> bool:
    return math.isfinite(x)


def load_pensieve_trace(path: str | Path) -> Trace:
    """Read a Pensieve ``time_s<TAB>Mbps`` trace (CRLF tolerated); see the module docstring."""
    path = Path(path)
    times: list[float] = []
    mbps: list[float] = []
    for lineno, line in enumerate(_read_text(path).splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2:
            raise _bad(path, f"line {lineno}: expected '<time_s> <Mbps>', got {line.strip()[:40]!r}")
        try:
            t, bw = float(parts[0]), float(parts[1])
        except ValueError:
            raise _bad(path, f"line {lineno}: not numbers: {line.strip()[:40]!r}") from None
        if not (_finite(t) and _finite(bw)) or bw < 0:
            raise _bad(path, f"line {lineno}: bandwidth must be finite and >= 0")
        if times and t <= times[-1]:
            raise _bad(path, f"line {lineno}: time {t} does not increase")
        times.append(t)
        mbps.append(bw)
    if len(times) < 2:
        raise _bad(path, "a Pensieve trace needs at least 2 lines")
    if times[0] != 0.0:
        # Pensieve loops back to time 0: a trace that does not start at 0 gets its first period stretched
        raise _bad(path, f"a Pensieve trace must start at time 0, starts at {times[0]}")
    durations = tuple(times[i] - times[i - 1] for i in range(1, len(times)))
    bandwidths = tuple(mbps[i] * 1e6 for i in range(1, len(times)))
    try:
        return Trace(name=path.name, durations_s=durations, bandwidths_bps=bandwidths, source=str(path))
    except TraceError as e:
        raise _bad(path, str(e).split(": ", 1)[-1]) from None


def load_sabre_trace(path: str | Path) -> Trace:
    """Read a Sabre JSON trace (list of ``{duration_ms, bandwidth_kbps, latency_ms}``)."""
    path = Path(path)
    try:
        periods = json.loads(_read_text(path))
    except json.JSONDecodeError as e:
        raise _bad(path, f"invalid JSON at line {e.lineno}") from None
    if not isinstance(periods, list) or not periods:
        raise _bad(path, "a Sabre trace is a non-empty JSON list of periods")
    durations, bandwidths, latencies = [], [], []
    for i, p in enumerate(periods):
        try:
            d, bw, lat = float(p["duration_ms"]), float(p["bandwidth_kbps"]), float(p.get("latency_ms", 0.0))
        except (TypeError, KeyError, ValueError):
            raise _bad(path, f"period {i}: needs numeric duration_ms and bandwidth_kbps") from None
        if not (_finite(d) and _finite(bw) and _finite(lat)) or d <= 0 or bw < 0 or lat < 0:
            raise _bad(path, f"period {i}: duration must be > 0, bandwidth and latency >= 0")
        durations.append(d / 1000.0)
        bandwidths.append(bw * 1000.0)
        latencies.append(lat / 1000.0)
    try:
        return Trace(name=path.stem, durations_s=tuple(durations), bandwidths_bps=tuple(bandwidths),
                     latencies_s=tuple(latencies), source=str(path))
    except TraceError as e:
        raise _bad(path, str(e).split(": ", 1)[-1]) from None


def load_trace(path: str | Path) -> Trace:
    """Read one trace file, Sabre JSON if it starts with ``[`` (or ends in .json), else Pensieve text."""
    path = Path(path)
    if path.is_dir():
        raise _bad(path, "is a folder (use load_traces)")
    text_head = _read_text(path).lstrip()[:1]
    if path.suffix.lower() == ".json" or text_head == "[":
        return load_sabre_trace(path)
    return load_pensieve_trace(path)


def _is_trace_file(p: Path) -> bool:
    return p.is_file() and not p.name.startswith(".") and not p.name.upper().startswith("README")


def load_traces(paths: str | Path | Iterable[str | Path]) -> list[Trace]:
    """Load traces from files and/or folders (folders: every trace file inside, sorted by name)."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    traces: list[Trace] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            files = sorted(f for f in p.iterdir() if _is_trace_file(f))
            if not files:
                raise _bad(p, "folder holds no trace files")
            traces.extend(load_trace(f) for f in files)
        elif p.exists():
            traces.append(load_trace(p))
        else:
            raise _bad(p, "no such trace file or folder")
    if not traces:
        raise TraceError("no traces given")
    return traces
