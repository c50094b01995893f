"""Do a session's segments run on in time? The timestamp checks of media verification (pure).

Each checked segment comes as a `SegmentTimes`: where its playlist (or MPD) says it starts and how
long it lasts, and per audio/video stream what decoding it found (`StreamTimes`): the first
presented timestamp, the end of its last frame, one frame's duration, all in seconds on the
stream's own clock (``client/verify.py`` reads them with PyAV). `TimelineCheck.check` compares
them with what came before and returns one line per problem. No clock, no I/O.

It keeps a `Timeline` per (source, kind): ``source`` is the playlist a segment came from
(``video``: a variant's segments, which may carry muxed audio; ``audio``: an audio rendition's),
``kind`` the stream's. The renditions of one source share a timeline, so a rendition switch is
checked like any other step.

Tolerance: one frame of the stream checked (1/fps of the video; an audio frame's samples / rate,
21.3 ms for AAC at 48 kHz) plus `ROUNDING_S` (1 ms) for playlist durations written rounded. The
rules:

* **offset**: timestamps need not start at 0 (MPEG-TS muxers start at 1.4 s or 10 s, B-frames
  delay video by a frame or two, AAC priming moves audio by a frame): the first segment checked
  on a timeline sets its offset (pts minus playlist time); later ones are compared through it;
* **position**: a segment's *primary* stream (the video of a variant's segment, the audio of an
  audio rendition's) starts where the playlist says and ends where the playlist's next segment
  starts;
* **continuity**: every stream starts where the same timeline's previous segment (index - 1, in
  any rendition) ended. This is the one timing check muxed audio gets: a muxer interleaves it by
  decode time, so its segment boundaries do not follow the playlist's (ffmpeg's TS segments carry
  audio from the video's decode time, 80 ms before its first picture);
* **A/V sync**: with video and audio from separate playlists, the two primaries' pts-minus-
  playlist-time agree within one video frame (reported when it breaks, again only after it
  mended); muxed audio shares the video's clock, so at segment 0 its first pts is within one video
  frame of the video's;
* a problem is reported once: a segment already reported (or a stream that did not decode) is
  not blamed again by the next segment's continuity check, nor checked for A/V sync.
"""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ROUNDING_S", "StreamTimes", "SegmentTimes", "Timeline", "TimelineCheck"]

ROUNDING_S = 0.001
"""Added to every tolerance: playlists write durations rounded (EXTINF to 3 to 6 decimals)."""


@dataclass(frozen=True, slots=True)
class StreamTimes:
    """One audio or video stream of a decoded segment, seconds on the stream's own clock."""

    kind: str
    """``video`` or ``audio``."""
    start_s: float | None
    """The first presented timestamp (negative pre-roll an edit list cuts left out); None: no packets."""
    end_s: float | None
    """The latest timestamp plus its frame's duration."""
    frame_s: float
    """One frame: 1/fps, or an audio frame's samples / sample rate."""
    broken: bool = False
    """It did not decode (reported as such): no timing checks, and the next segment is not blamed."""


@dataclass(frozen=True, slots=True)
class SegmentTimes:
    """One checked segment: what its playlist says and what its streams hold."""

    source: str
    """The playlist it came from: ``video`` (a variant) or ``audio`` (an audio rendition)."""
    rendition: str
    """Who it is in messages: ``640x360``, ``audio_2 (en)``."""
    index: int
    """Its index in its playlist (0-based)."""
    start_s: float
    """Where the playlist (or MPD) says it starts, media seconds."""
    duration_s: float
    streams: tuple[StreamTimes, ...]


@dataclass(slots=True)
class Timeline:
    """What one (source, kind) timeline knows: its offset and the last segment checked on it."""

    offset_s: float
    last_index: int
    last_rendition: str
    last_end_s: float | None
    """The last segment's end (stream clock); None when it did not decode."""
    last_reported: bool


class TimelineCheck:
    """The timelines of one session; `check` each segment in the order it was downloaded."""

    def __init__(self) -> None:
        self.timelines: dict[tuple[str, str], Timeline] = {}
        #: ``video`` / ``audio`` -> (pts - playlist time, frame_s) of the last clean segment of that kind's playlist
        self._shift: dict[str, tuple[float, float]] = {}
        self._out_of_sync = False

    def check(self, seg: SegmentTimes) -> list[str]:
        """The problems of ``seg`` (one line each), the timelines moved on past it."""
        problems: list[str] = []
        kinds = {s.kind for s in seg.streams}
        primary_kind = seg.source if seg.source in kinds else (seg.streams[0].kind if seg.streams else None)
        for (source, kind), tl in self.timelines.items():
            if source == seg.source and kind not in kinds and tl.last_index == seg.index - 1 and \
                    tl.last_end_s is not None:
                problems.append(f"{seg.source} seg {seg.index} of {seg.rendition} has no {kind} (seg "
                                f"{seg.index - 1} of {tl.last_rendition} had)")
                tl.last_index, tl.last_rendition, tl.last_end_s, tl.last_reported = \
                    seg.index, seg.rendition, None, True
        primary = next((s for s in seg.streams if s.kind == primary_kind), None)
        for st in seg.streams:
            problems += self._check_stream(seg, st, primary if st is not primary else None)
        return problems

    def _check_stream(self, seg: SegmentTimes, st: StreamTimes, beside: StreamTimes | None) -> list[str]:
        """``beside``: the segment's primary stream when ``st`` is muxed beside it; None when ``st``
        is the primary."""
        key = (seg.source, st.kind)
        tl = self.timelines.get(key)
        who = _who(seg, st.kind, st.kind if beside is None else beside.kind)
        if st.broken or st.start_s is None or st.end_s is None:
            problems = [] if st.broken else [f"{who}: no {st.kind} packets"]
            if tl is not None:
                tl.last_index, tl.last_rendition, tl.last_end_s, tl.last_reported = \
                    seg.index, seg.rendition, None, True
            return problems
        tol = st.frame_s + ROUNDING_S
        first = tl is None
        if tl is None:
            tl = self.timelines[key] = Timeline(offset_s=st.start_s - seg.start_s, last_index=-2,
                                                last_rendition="", last_end_s=None, last_reported=False)
        start = st.start_s - tl.offset_s  # media seconds, through the timeline's offset
        end = st.end_s - tl.offset_s
        problems = []
        if beside is None:
            deviation = start - seg.start_s
            if not first and abs(deviation) > tol:
                problems.append(f"{who} starts at {start:.3f} s, expected {seg.start_s:.3f} s: {_gap(deviation)}")
            else:
                expected_end = seg.start_s + seg.duration_s
                over = end - expected_end
                if abs(over) > tol:
                    problems.append(f"{who} ends at {end:.3f} s, expected {expected_end:.3f} s: "
                                    f"{abs(over) * 1000:.0f} ms {'long' if over > 0 else 'short'}")
        elif seg.index == 0 and beside.start_s is not None and not beside.broken:
            lead = st.start_s - beside.start_s
            if abs(lead) > beside.frame_s + ROUNDING_S:
                problems.append(f"{who} starts {abs(lead) * 1000:.0f} ms {'after' if lead > 0 else 'before'} "
                                f"the {beside.kind} (more than a {beside.kind} frame)")
        if not problems and tl.last_index == seg.index - 1 and not tl.last_reported and tl.last_end_s is not None:
            gap = st.start_s - tl.last_end_s
            if abs(gap) > tol:
                problems.append(f"{who} starts at {start:.3f} s, but seg {tl.last_index} of {tl.last_rendition} "
                                f"ended at {tl.last_end_s - tl.offset_s:.3f} s: {_gap(gap)}")
        tl.last_index, tl.last_rendition, tl.last_end_s, tl.last_reported = \
            seg.index, seg.rendition, st.end_s, bool(problems)
        if beside is None and st.kind == seg.source and not problems:
            problems += self._sync(seg, st, who)
        return problems

    def _sync(self, seg: SegmentTimes, st: StreamTimes, who: str) -> list[str]:
        """A/V sync of separate video and audio playlists, after ``st`` (the primary of its own
        kind's playlist) checked clean."""
        assert st.start_s is not None
        self._shift[st.kind] = (st.start_s - seg.start_s, st.frame_s)
        if "video" not in self._shift or "audio" not in self._shift:
            return []
        (video_shift, video_frame_s), (audio_shift, _) = self._shift["video"], self._shift["audio"]
        lag = audio_shift - video_shift
        if abs(lag) <= video_frame_s + ROUNDING_S:
            self._out_of_sync = False
            return []
        if self._out_of_sync:
            return []
        self._out_of_sync = True
        return [f"audio {'lags' if lag > 0 else 'leads'} video by {abs(lag) * 1000:.0f} ms at {seg.start_s:.3f} s "
                f"(seen at {who}; more than a video frame)"]


def _who(seg: SegmentTimes, kind: str, primary_kind: str | None) -> str:
    """``video seg 3 of 640x360``, or ``audio in video seg 3 of 640x360`` for muxed audio."""
    if kind == primary_kind or primary_kind is None:
        return f"{kind} seg {seg.index} of {seg.rendition}"
    return f"{kind} in {primary_kind} seg {seg.index} of {seg.rendition}"


def _gap(later_s: float) -> str:
    """``gap of 64 ms`` when the media comes later than expected, ``overlap of 64 ms`` when earlier."""
    return f"{'gap' if later_s > 0 else 'overlap'} of {abs(later_s) * 1000:.0f} ms"
