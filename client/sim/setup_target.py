"""The ``target`` setup: the conventions of issue 6's ABR targets, as Sabre's simulator runs them.

The reference figures of the targets are Sabre's algorithms run in Sabre's own simulator
(``UMass-LIDS/sabre`` ``src/sabre.py``) on Pensieve's video and traces; ``bench/abr/CONVENTIONS.md``
records the Sabre commands that reproduce them. This module states the same conventions for our
simulator:

* **Link**: full payload (no 0.95 factor); each request waits 80 ms of latency during which the
  trace clock runs and no bytes arrive, then the transfer follows the trace (Sabre's
  ``NetworkModel``: ``do_latency_delay`` then ``do_download``).
* **Buffer**: 60 s; before a request the player waits exactly until one more segment fits.
* **First segment**: the lowest rung, without asking the ABR (Sabre's ``get_first_quality``
  returns 0 for all its algorithms); its download is start-up, not rebuffering, and it is never
  abandoned. Later downloads are offered to the ABR's ``abandon`` every 50 ms (Sabre checks after
  every 12 kbit / 50 ms of progress).
* **Traces**: played from t=0 and looped. A Pensieve sample ``<time_s> <Mbps>`` holds from its
  timestamp until the next one (`load_target_traces`; the last line, which has no successor,
  carries no period). This differs from Pensieve's own simulator, which gives the interval
  *before* a timestamp that line's bandwidth (`client.traces.load_pensieve_trace`). Sabre JSON
  traces load unchanged (their own latency is then ignored: the setup fixes 80 ms).
"""
from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path

from ..traces import Trace, TraceError, load_sabre_trace
from .setups import TARGET

__all__ = ["TARGET", "load_target_trace", "load_target_traces"]


def _pensieve_holding_until_next(path: Path) -> Trace:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise TraceError(f"{path}: cannot read trace ({type(e).__name__})") from None
    times: list[float] = []
    mbps: list[float] = []
    for lineno, line in enumerate(text.splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        try:
            t, bw = (float(x) for x in parts) if len(parts) == 2 else (math.nan, math.nan)
        except ValueError:
            t = bw = math.nan
        if not (math.isfinite(t) and math.isfinite(bw)) or bw < 0:
            raise TraceError(f"{path}: line {lineno}: expected '<time_s> <Mbps>' with finite values")
        if times and t <= times[-1]:
            raise TraceError(f"{path}: line {lineno}: time {t} does not increase")
        times.append(t)
        mbps.append(bw)
    if len(times) < 2:
        raise TraceError(f"{path}: a Pensieve trace needs at least 2 lines")
    durations = tuple(times[i + 1] - times[i] for i in range(len(times) - 1))
    bandwidths = tuple(mbps[i] * 1e6 for i in range(len(times) - 1))
    return Trace(name=path.name, durations_s=durations, bandwidths_bps=bandwidths, source=str(path))


def load_target_trace(path: str | Path) -> Trace:
    """One trace under the target conventions (Sabre JSON by suffix, else Pensieve text)."""
    path = Path(path)
    if path.suffix == ".json":
        return load_sabre_trace(path)
    return _pensieve_holding_until_next(path)


def load_target_traces(paths: str | Path | Iterable[str | Path]) -> list[Trace]:
    """Files and folders (a folder: its regular files sorted by name, no dot-files or README*)."""
    items = [paths] if isinstance(paths, (str, Path)) else list(paths)
    files: list[Path] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            files.extend(f for f in sorted(p.iterdir())
                         if f.is_file() and not f.name.startswith(".") and not f.name.startswith("README"))
        else:
            files.append(p)
    return [load_target_trace(f) for f in files]
