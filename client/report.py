"""The session report: what a viewer would have seen, as numbers, JSON and a plot.

A `SessionReport` is built by the player session from its records:

* `SegmentRecord` per video segment played: rung, bitrate, bytes, request/finish times, TTFB,
  measured throughput, buffer before and after, rebuffering charged to it, pathway, ABR reason;
* `StallRecord` per stall after start-up (when, how long);
* `FailoverRecord` per pathway switch forced by a failure: when the failure was detected, from
  and to which pathway, the error and its class (``cause``: ``TransferTooSlow``, ``ConnectError``,
  ``FetchTimeout``, ...), the buffer at that moment, and the gap (failure to the end of the
  re-requested download on the new pathway);
* the chosen tracks (`tracks.TrackSelection.describe`), bytes by kind, and QoE (``client.qoe``:
  Pensieve's QoE_lin per chunk, averaged; the first chunk's download is start-up).

Times are media-clock seconds from the start of the session. ``startup_s`` runs from the start
of the session (resolve included) to the first frame. `write_json` writes `as_dict`; `plot`
draws bitrate, throughput and buffer over time with stalls shaded and failovers marked
(matplotlib, imported only when plotting).
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .abr.snapshot import ThroughputSample
from .qoe import QoeSummary, rebuffer_ratio, summarize

__all__ = ["SegmentRecord", "StallRecord", "FailoverRecord", "SessionReport"]


@dataclass(slots=True)
class SegmentRecord:
    index: int
    rung: int
    bitrate_bps: int
    label: str
    size_bytes: int
    requested_s: float
    done_s: float
    ttfb_s: float
    throughput_bps: float
    buffer_before_s: float
    buffer_after_s: float
    rebuffer_s: float
    pathway: str
    abandoned: int
    reason: str


@dataclass(slots=True)
class StallRecord:
    at_s: float
    duration_s: float


@dataclass(slots=True)
class FailoverRecord:
    at_s: float
    from_pathway: str
    to_pathway: str
    error: str
    buffer_s: float
    gap_s: float
    cause: str = ""
    """The `client.errors` class of the failure (``TransferTooSlow``, ``ConnectError``, ...)."""


@dataclass
class SessionReport:
    """Everything about one session; `ok` is False when it failed (``error`` says why)."""

    ok: bool
    error: str | None
    source: str
    device: str
    network: str
    abr: str
    speed: float
    startup_s: float | None
    played_s: float
    content_s: float
    session_s: float
    segments: list[SegmentRecord] = field(default_factory=list)
    stalls: list[StallRecord] = field(default_factory=list)
    failovers: list[FailoverRecord] = field(default_factory=list)
    tracks: dict[str, Any] = field(default_factory=dict)
    bytes: dict[str, int] = field(default_factory=dict)
    steering_reloads: int = 0
    samples: list[ThroughputSample] = field(default_factory=list)

    @property
    def stall_count(self) -> int:
        return len(self.stalls)

    @property
    def stall_s(self) -> float:
        return sum(s.duration_s for s in self.stalls)

    @property
    def stall_ratio(self) -> float:
        """Stall time / (stall time + play time) (`qoe.rebuffer_ratio`)."""
        return rebuffer_ratio(self.stall_s, self.played_s)

    @property
    def avg_bitrate_bps(self) -> float:
        return sum(s.bitrate_bps for s in self.segments) / len(self.segments) if self.segments else 0.0

    @property
    def switches(self) -> int:
        return sum(1 for a, b in zip(self.segments, self.segments[1:]) if a.rung != b.rung)

    @property
    def qoe(self) -> QoeSummary | None:
        if not self.segments:
            return None
        rebuffers = [0.0] + [s.rebuffer_s for s in self.segments[1:]]
        first = self.segments[0]
        return summarize([s.bitrate_bps for s in self.segments], rebuffers,
                         first.done_s - first.requested_s, self.content_s)

    def as_dict(self) -> dict[str, Any]:
        qoe = self.qoe
        return {
            "ok": self.ok, "error": self.error, "source": self.source, "device": self.device,
            "network": self.network, "abr": self.abr, "speed": self.speed,
            "startup_s": _r(self.startup_s), "played_s": _r(self.played_s), "content_s": _r(self.content_s),
            "session_s": _r(self.session_s),
            "stalls": {"count": self.stall_count, "seconds": _r(self.stall_s), "ratio": _r(self.stall_ratio, 5),
                       "events": [asdict(s) for s in self.stalls]},
            "avg_bitrate_bps": round(self.avg_bitrate_bps), "switches": self.switches,
            "qoe": qoe.as_dict() if qoe else None,
            "failovers": [asdict(f) for f in self.failovers],
            "steering_reloads": self.steering_reloads,
            "bytes": dict(self.bytes),
            "tracks": self.tracks,
            "segments": [asdict(s) for s in self.segments],
            "samples": [{"seq": s.seq, "size_bytes": s.size_bytes, "duration_s": s.duration_s, "ttfb_s": s.ttfb_s,
                         "end_s": s.end_s, "rung": s.rung, "complete": s.complete} for s in self.samples],
        }

    def write_json(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.as_dict(), indent=1, default=_json_default) + "\n")

    def summary_lines(self) -> list[str]:
        """A few lines for people (the CLI prints them at the end)."""
        qoe = self.qoe
        lines = [f"{'ok' if self.ok else 'FAILED'}: {self.source} on {self.device} over {self.network}, abr {self.abr}"]
        if self.error:
            lines.append(f"  error: {self.error}")
        startup = "never" if self.startup_s is None else f"{self.startup_s:.2f} s"
        lines.append(f"  start-up {startup}, played {self.played_s:.1f} s of {self.content_s:.1f} s "
                     f"in {self.session_s:.1f} s")
        lines.append(f"  stalls {self.stall_count} ({self.stall_s:.2f} s, {100 * self.stall_ratio:.2f}%), "
                     f"avg bitrate {self.avg_bitrate_bps / 1e3:.0f} kbps, switches {self.switches}")
        if qoe:
            lines.append(f"  QoE_lin {qoe.qoe_lin:.3f} per chunk over {qoe.chunks} chunks")
        audio = self.tracks.get("audio") or {}
        subs = self.tracks.get("subtitles") or {}
        subtitles = f"{subs['name']}{' [forced]' if subs.get('forced') else ''}" if subs else "off"
        lines.append(f"  audio {audio.get('name', 'muxed')} ({audio.get('channels') or '?'} ch), subtitles {subtitles}")
        for f in self.failovers:
            lines.append(f"  failover at {f.at_s:.2f} s: {f.from_pathway} -> {f.to_pathway} "
                         f"(gap {f.gap_s:.2f} s, buffer {f.buffer_s:.1f} s): {f.error}")
        total = sum(self.bytes.values())
        lines.append(f"  bytes {total:,} ({', '.join(f'{k} {v:,}' for k, v in self.bytes.items() if v)})")
        return lines

    def plot(self, path: str | Path) -> None:
        """A PNG: bitrate and throughput (Mbps), buffer (s), stalls shaded, failovers marked."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, (ax_rate, ax_buf) = plt.subplots(2, 1, sharex=True, figsize=(10, 6), constrained_layout=True)
        segs = self.segments
        if segs:
            t = [s.done_s for s in segs]
            ax_rate.step(t, [s.bitrate_bps / 1e6 for s in segs], where="pre", label="bitrate (rung)", lw=2)
            ax_rate.plot(t, [s.throughput_bps / 1e6 for s in segs], ".", ms=4, alpha=0.7, label="throughput")
            ax_buf.plot([segs[0].requested_s] + t, [0.0] + [s.buffer_after_s for s in segs], "-", label="buffer")
        for stall in self.stalls:
            for ax in (ax_rate, ax_buf):
                ax.axvspan(stall.at_s, stall.at_s + stall.duration_s, color="red", alpha=0.2, lw=0)
        for f in self.failovers:
            for ax in (ax_rate, ax_buf):
                ax.axvline(f.at_s, color="purple", ls="--", lw=1)
            ax_rate.annotate(f"{f.from_pathway}\u2192{f.to_pathway}", (f.at_s, ax_rate.get_ylim()[1]),
                             rotation=90, va="top", ha="right", fontsize=7, color="purple")
        if self.startup_s is not None:
            ax_buf.axvline(self.startup_s, color="green", ls=":", lw=1, label="playback starts")
        ax_rate.set_ylabel("Mbps")
        ax_rate.legend(loc="upper left", fontsize=8)
        ax_buf.set_ylabel("buffer (s)")
        ax_buf.set_xlabel("media-clock time (s)")
        ax_buf.legend(loc="upper left", fontsize=8)
        ax_rate.set_title(f"{self.device} / {self.network} / {self.abr}: {self.stall_count} stalls, "
                          f"{len(self.failovers)} failovers", fontsize=10)
        fig.savefig(path, dpi=100)
        plt.close(fig)


def _r(x: float | None, digits: int = 3) -> float | None:
    if x is None or not math.isfinite(x):
        return None
    return round(x, digits)


def _json_default(o: object) -> object:
    if isinstance(o, (set, tuple)):
        return list(o)
    return str(o)
