"""The values that cross the ABR boundary: throughput samples, the decision snapshot, decisions,
and the in-flight download progress used by abandonment.

All are frozen dataclasses; times in seconds, sizes in bytes, rates in bits per second.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ThroughputSample:
    """One finished (or abandoned) segment download, as the player measured it.

    ``seq`` numbers downloads in the order they finished, strictly increasing within a session
    (0, 1, 2, ...): stateful algorithms use it to take each sample exactly once.
    ``duration_s`` runs from the request to the last byte and includes ``ttfb_s`` (request to
    first byte, i.e. latency).
    """

    seq: int
    size_bytes: int
    duration_s: float
    ttfb_s: float = 0.0
    end_s: float | None = None  # session clock at the last byte, when known
    rung: int | None = None  # ladder index downloaded, when it was a media segment
    complete: bool = True  # False: an abandoned download (size_bytes is what arrived)

    @property
    def throughput_bps(self) -> float:
        """Bits over the whole request time, latency included (Pensieve's measure)."""
        return 8.0 * self.size_bytes / self.duration_s if self.duration_s > 0 else 0.0

    @property
    def transfer_s(self) -> float:
        """Time from first to last byte (never below 1 ms, so a rate is always defined)."""
        return max(self.duration_s - self.ttfb_s, 1e-3)

    @property
    def transfer_bps(self) -> float:
        """Bits over the transfer time, latency excluded (Sabre's and Shaka's measure)."""
        return 8.0 * self.size_bytes / self.transfer_s


@dataclass(frozen=True, slots=True)
class AbrSnapshot:
    """Everything an ABR decision may look at, taken just before requesting segment ``segment_index``.

    ``sizes_ahead_bytes[k][r]`` is the size of segment ``segment_index + k`` at rung ``r``; it holds
    the next few segments (the simulator passes up to 16, fewer near the end), or is None when
    the player does not know sizes (it then plans with ``ladder_bps * segment_duration_s``).
    ``samples`` are the most recent downloads, oldest first (at least every sample since the
    previous decision). ``idle_s`` is the time the player sat idle because the buffer was full
    since the previous decision.
    """

    buffer_s: float
    ladder_bps: tuple[int, ...]  # nominal bitrate per rung, ascending
    segment_duration_s: float
    segment_index: int  # the segment about to be requested
    segments_total: int | None  # None for an unbounded (live-like) stream
    samples: tuple[ThroughputSample, ...] = ()
    sizes_ahead_bytes: tuple[tuple[int, ...], ...] | None = None
    last_index: int | None = None  # rung of the previous segment, None before the first
    max_buffer_s: float = 60.0
    startup: bool = False  # True until playback has started
    rebuffering: bool = False  # True when the buffer ran dry and playback is stalled
    playback_rate: float = 1.0
    idle_s: float = 0.0

    @property
    def rungs(self) -> int:
        return len(self.ladder_bps)

    @property
    def segments_left(self) -> int | None:
        """Segments still to fetch, this one included."""
        return None if self.segments_total is None else max(self.segments_total - self.segment_index, 0)

    def segment_size_bytes(self, ahead: int, rung: int) -> float:
        """Size of segment ``segment_index + ahead`` at ``rung`` (nominal when sizes are unknown)."""
        sizes = self.sizes_ahead_bytes
        if sizes is not None and ahead < len(sizes):
            return float(sizes[ahead][rung])
        return self.ladder_bps[rung] * self.segment_duration_s / 8.0


@dataclass(frozen=True, slots=True)
class Decision:
    """Which rung to fetch, and why (a short, human-readable reason for logs and tests)."""

    index: int
    reason: str


@dataclass(frozen=True, slots=True)
class DownloadProgress:
    """An in-flight segment download, for `should_abandon`.

    ``buffer_s`` is the buffer level *now* (it has been draining while the download ran).
    ``sizes_bytes[r]`` is this segment's size at rung ``r`` when known.
    """

    rung: int
    size_bytes: int
    downloaded_bytes: int
    elapsed_s: float  # since the request was sent
    ttfb_s: float  # request to first byte (0 if not yet known)
    buffer_s: float
    ladder_bps: tuple[int, ...]
    segment_duration_s: float
    sizes_bytes: tuple[int, ...] | None = None
