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
* with verification (``SessionConfig.verify_every``), ``media_errors`` (`verify.MediaError`: URL and
  what is wrong) and ``verification`` (`verify.VerifySummary`: what was checked).

Times are media-clock seconds from the start of the session. ``startup_s`` runs from the start
of the session (resolve included) to the first frame. `write_json` writes `as_dict`; `figure`
draws the session in three panels, each with its own y-axis (the chosen rung's bitrate over the
ladder's rungs, with the edge's CMSD ``mb`` hints where it sent any; the measured throughput on a
log axis; the buffer), stalls shaded and failovers marked on every panel, and `plot` writes it as a
PNG (matplotlib's Agg, imported only when plotting).
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .abr.snapshot import ThroughputSample
from .qoe import QoeSummary, rebuffer_ratio, summarize
from .verify import MediaError, VerifySummary

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

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
    mb_bps: int | None = None
    """The CMSD max suggested bitrate (CMSD-Dynamic ``mb``) the edge sent with this segment, if any."""
    start_s: float | None = None
    """Where the segment starts in the title (media seconds); None in reports written before it was kept."""
    media_s: float | None = None
    """The media time the segment covers (seconds)."""
    discarded: bool = False
    """A seek flushed the buffer while it downloaded: its bytes came, the viewer never saw it."""


@dataclass(slots=True)
class RequestRecord:
    """One request a session sent to a media server and got an answer to (times: media-clock seconds
    since the session started). ``url`` is the URL as the session knows it (no CMCD argument); what the
    edge's access log says of the same request joins on it and the CMCD session id (``client/joined.py``)."""

    ot: str          #: CMCD object type (m, v, a, c, i, o; "" when not said)
    url: str
    range: str       #: the Range header sent, "" for none
    start_s: float
    ttfb_s: float    #: request sent to response headers
    end_s: float
    size_bytes: int
    status: int
    complete: bool = True  #: False: the session stopped reading it (abandoned for a lower rung)


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
    session_id: str = ""
    requests: list[RequestRecord] = field(default_factory=list)
    """Every answered request to the media servers, in the order sent (``SessionConfig.record_requests``)."""
    media_errors: list[MediaError] = field(default_factory=list)
    """Broken media the session downloaded (``SessionConfig.verify_every``; ``client/verify.py``): the
    session is still ``ok``, its media is not."""
    verification: VerifySummary | None = None
    """What verification checked (None: it did not verify)."""
    behaviour: dict[str, Any] | None = None
    """What the viewer did (`script.ViewerScript`; None: played from 0 to the end): the script, the
    start position, every seek (``at_s`` session time, ``from_s``, ``to_s``, ``wait_s``), every
    pause, ``quit_early`` (the viewer left before the end) and ``watched_s``."""

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
    def shown(self) -> list[SegmentRecord]:
        """The segments that joined the buffer (not flushed by a seek while they downloaded)."""
        return [s for s in self.segments if not s.discarded]

    @property
    def avg_bitrate_bps(self) -> float:
        shown = self.shown
        return sum(s.bitrate_bps for s in shown) / len(shown) if shown else 0.0

    @property
    def switches(self) -> int:
        shown = self.shown
        return sum(1 for a, b in zip(shown, shown[1:]) if a.rung != b.rung)

    @property
    def qoe(self) -> QoeSummary | None:
        shown = self.shown
        if not shown:
            return None
        rebuffers = [0.0] + [s.rebuffer_s for s in shown[1:]]
        first = shown[0]
        return summarize([s.bitrate_bps for s in shown], rebuffers,
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
            "session_id": self.session_id,
            "requests": [asdict(r) for r in self.requests],
            "verification": self.verification.as_dict() if self.verification is not None else None,
            "media_errors": [asdict(e) for e in self.media_errors],
            "behaviour": self.behaviour,
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
        if self.behaviour:
            b = self.behaviour
            lines.append(f"  viewer: started at {b['start_s']:.1f} s, {len(b['seeks'])} seeks "
                         f"(waited {b['seek_wait_s']:.2f} s), {len(b['pauses'])} pauses, "
                         f"{'quit early' if b['quit_early'] else 'watched to the end'} after {b['watched_s']:.1f} s "
                         f"of watching; {sum(1 for x in self.segments if x.discarded)} segments flushed by seeks")
        audio = self.tracks.get("audio") or {}
        subs = self.tracks.get("subtitles") or {}
        subtitles = f"{subs['name']}{' [forced]' if subs.get('forced') else ''}" if subs else "off"
        lines.append(f"  audio {audio.get('name', 'muxed')} ({audio.get('channels') or '?'} ch), subtitles {subtitles}")
        for f in self.failovers:
            lines.append(f"  failover at {f.at_s:.2f} s: {f.from_pathway} -> {f.to_pathway} "
                         f"(gap {f.gap_s:.2f} s, buffer {f.buffer_s:.1f} s): {f.error}")
        total = sum(self.bytes.values())
        lines.append(f"  bytes {total:,} ({', '.join(f'{k} {v:,}' for k, v in self.bytes.items() if v)})")
        if self.verification is not None:
            lines.append(f"  {self.verification.line()}")
            lines += [f"  media error: {e.line()}" for e in self.media_errors]
            if self.verification.errors > len(self.media_errors):
                lines.append(f"  ... and {self.verification.errors - len(self.media_errors)} more media errors")
        return lines

    def plot(self, path: str | Path) -> None:
        """Write `figure` as a PNG."""
        self.figure().savefig(path, dpi=100)

    def figure(self) -> Figure:
        """The session as a matplotlib figure on the Agg canvas (no pyplot: nothing global to close).

        Three panels over the media clock, x shared, each with its own y-axis:

        * bitrate: the chosen rung's bitrate as steps, segment i from its request to the next request
          (the records say when each was fetched, not which media time it covers); the ladder's rungs
          (``tracks["ladder"]`` and every rung played) as ticks and gridlines, on a log axis when they
          span more than `_LOG_RUNG_SPAN`; the edge's CMSD ``mb`` dashed, if any segment carried one;
        * throughput: per segment, bits over transfer time, on a log axis, the top rung dotted;
        * buffer: seconds buffered after each segment, and when playback started.

        Stalls are shaded and failovers drawn on every panel; the title counts both. The artists
        carry gids (``bitrate``, ``cmsd-mb``, ``throughput``, ``buffer``, ``stall``, ``failover``).
        """
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        fig = Figure(figsize=(11, 8.5), layout="constrained")
        FigureCanvasAgg(fig)
        ax_rate, ax_thr, ax_buf = fig.subplots(3, 1, sharex=True, height_ratios=[1.3, 1, 1])
        axes: tuple[Axes, ...] = (ax_rate, ax_thr, ax_buf)
        segs = self.segments
        rungs_bps = self._rungs_bps()
        _bitrate_panel(ax_rate, segs, rungs_bps)
        _throughput_panel(ax_thr, segs, rungs_bps)
        if segs:
            ax_buf.plot([segs[0].requested_s] + [s.done_s for s in segs], [0.0] + [s.buffer_after_s for s in segs],
                        "-", color="tab:blue", label="buffer", gid="buffer")
        if self.startup_s is not None:
            ax_buf.axvline(self.startup_s, color="green", ls=":", lw=1, label="playback starts")
        ax_buf.set_ylabel("buffer (s)")
        ax_buf.set_xlabel("media-clock time (s)")
        stalls = f"{self.stall_count} stall{'' if self.stall_count == 1 else 's'} ({self.stall_s:.1f} s)"
        for ax in axes:
            for k, stall in enumerate(self.stalls):
                ax.axvspan(stall.at_s, stall.at_s + stall.duration_s, color="red", alpha=0.2, lw=0, gid="stall",
                           label=stalls if k == 0 else None)
            for k, f in enumerate(self.failovers):
                ax.axvline(f.at_s, color="purple", ls="--", lw=1, gid="failover",
                           label="failover" if k == 0 else None)
        for f in self.failovers:
            ax_rate.annotate(f"{f.from_pathway}\u2192{f.to_pathway}", (f.at_s, 1.0),
                             xycoords=ax_rate.get_xaxis_transform(), xytext=(-2, -4), textcoords="offset points",
                             rotation=90, va="top", ha="right", fontsize=7, color="purple")
        for ax in axes:
            if ax.get_legend_handles_labels()[0]:
                ax.legend(loc="upper left", bbox_to_anchor=(1.005, 1.0), fontsize=7, frameon=False)
        failovers = f"{len(self.failovers)} failover{'' if len(self.failovers) == 1 else 's'}"
        fig.suptitle(f"{self.device} / {self.network} / {self.abr}: {stalls}, {failovers}", fontsize=10)
        return fig

    def _rungs_bps(self) -> list[int]:
        """The ladder's bitrates, ascending: the selection's ladder and every rung a segment played."""
        rungs = {s.bitrate_bps for s in self.segments if s.bitrate_bps > 0}
        for r in self.tracks.get("ladder") or []:
            nominal = r.get("nominal_bps") if isinstance(r, dict) else None
            if isinstance(nominal, int) and nominal > 0:
                rungs.add(nominal)
        return sorted(rungs)


def _bitrate_panel(ax: Axes, segs: list[SegmentRecord], rungs_bps: list[int]) -> None:
    """The chosen rung as steps from each request to the next, the CMSD ``mb`` hints, the rungs as ticks."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    values_mbps = [b / 1e6 for b in rungs_bps]
    if segs:
        x = [s.requested_s for s in segs] + [segs[-1].done_s]
        chosen = [s.bitrate_bps / 1e6 for s in segs]
        ax.step(x, chosen + chosen[-1:], where="post", lw=2, color="tab:blue", label="bitrate (chosen rung)",
                gid="bitrate")
        if any(s.mb_bps is not None for s in segs):
            mb = [math.nan if s.mb_bps is None else s.mb_bps / 1e6 for s in segs]
            ax.step(x, mb + mb[-1:], where="post", ls="--", lw=1.5, color="tab:orange",
                    label="CMSD mb (edge's max suggested bitrate)", gid="cmsd-mb")
            values_mbps += [v for v in mb if v > 0]
    if values_mbps:
        lo, hi = min(values_mbps), max(values_mbps)
        if hi > _LOG_RUNG_SPAN * lo:
            ax.set_yscale("log")
            ax.set_ylim(lo / 1.5, hi * 1.5)
        else:
            ax.set_ylim(0, hi * 1.15)
    if rungs_bps:
        lo, hi = ax.get_ylim()
        labelled = _labelled_rungs(rungs_bps, {s.bitrate_bps for s in segs if s.bitrate_bps > 0}, lo, hi,
                                   log=ax.get_yscale() == "log")
        ax.yaxis.set_major_locator(FixedLocator([b / 1e6 for b in rungs_bps]))
        ax.yaxis.set_major_formatter(FuncFormatter(
            lambda v, _pos: _rate_label(v * 1e6) if round(v * 1e6) in labelled else ""))
        ax.yaxis.set_minor_locator(NullLocator())
        ax.tick_params(axis="y", labelsize=7)
    ax.grid(axis="y", alpha=0.4)
    ax.set_ylabel("bitrate")


def _throughput_panel(ax: Axes, segs: list[SegmentRecord], rungs_bps: list[int]) -> None:
    """Each segment's measured throughput on a log axis (at least a decade in view), the top rung dotted."""
    from matplotlib.ticker import FuncFormatter, LogLocator

    thr = [s.throughput_bps / 1e6 if s.throughput_bps > 0 and math.isfinite(s.throughput_bps) else math.nan
           for s in segs]
    if segs:
        ax.plot([s.done_s for s in segs], thr, ".-", ms=5, lw=0.6, color="tab:green",
                label="throughput (per segment)", gid="throughput")
    if rungs_bps:
        ax.axhline(rungs_bps[-1] / 1e6, color="gray", ls=":", lw=1, label=f"top rung ({_rate_label(rungs_bps[-1])})")
    ax.set_yscale("log")
    shown = [v for v in thr if math.isfinite(v)] + ([rungs_bps[-1] / 1e6] if rungs_bps else [])
    if shown:
        lo, hi = min(shown) / 2, max(shown) * 2
        if hi < 20 * lo:  # at least a decade, so a labelled tick is in view
            mid = math.sqrt(lo * hi)
            lo, hi = mid / math.sqrt(20), mid * math.sqrt(20)
        ax.set_ylim(lo, hi)
    lo, hi = ax.get_ylim()
    few_decades = math.log10(hi / lo) <= 2.5
    ax.yaxis.set_major_locator(LogLocator(base=10))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: _rate_label(v * 1e6)))
    ax.yaxis.set_minor_formatter(FuncFormatter(
        lambda v, _pos: _rate_label(v * 1e6) if few_decades and _leading_digit(v) in (2, 5) else ""))
    ax.grid(axis="y", which="major", alpha=0.4)
    ax.set_ylabel("throughput")


_LOG_RUNG_SPAN = 8.0
"""The bitrate panel is logarithmic when the top rung is more than this many times the bottom one."""


def _labelled_rungs(rungs_bps: list[int], played_bps: set[int], lo: float, hi: float, *, log: bool,
                    min_gap: float = 0.045) -> set[int]:
    """The rungs whose tick is labelled on a bitrate axis from ``lo`` to ``hi`` Mbps: the played ones
    first, then the others, top down, each at least ``min_gap`` of the axis height from every one kept
    (a ladder with two codecs at one height has rungs a few percent apart)."""
    def at(bps: int) -> float:
        v = bps / 1e6
        return math.log(v / lo) / math.log(hi / lo) if log else (v - lo) / (hi - lo)

    kept: list[int] = []
    for b in sorted(played_bps, reverse=True) + sorted(set(rungs_bps) - played_bps, reverse=True):
        if all(abs(at(b) - at(k)) >= min_gap for k in kept):
            kept.append(b)
    return set(kept)


def _leading_digit(v: float) -> int | None:
    """2 for 0.2 or 2000; None unless ``v`` is a whole digit times a power of ten."""
    m = v / 10 ** math.floor(math.log10(v))
    return round(m) if abs(m - round(m)) < 1e-6 else None


def _rate_label(bps: float) -> str:
    """``800 kbps``, ``2.5 Mbps``, ``1 Gbps``."""
    for unit, scale in (("Gbps", 1e9), ("Mbps", 1e6)):
        if bps >= scale:
            return f"{bps / scale:.3g} {unit}"
    return f"{bps / 1e3:.3g} kbps"


def _r(x: float | None, digits: int = 3) -> float | None:
    if x is None or not math.isfinite(x):
        return None
    return round(x, digits)


def _json_default(o: object) -> object:
    if isinstance(o, (set, tuple)):
        return list(o)
    return str(o)
