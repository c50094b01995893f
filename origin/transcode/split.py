"""Split: cut the source's timeline into chunks whose boundaries are segment boundaries.

Pure arithmetic on frame numbers. A segment boundary ``k`` is frame ``round(k * S * fps)``
(S = segment duration); a chunk is a run of whole segments, about ``chunk_duration_s`` long, so
every chunk starts with a forced keyframe that is also a segment boundary in every rendition.
Each chunk records ``seek_s``, the source keyframe (GOP start) at or before its first frame: the
encoder seeks there and decodes forward, so no chunk depends on another and the source's own GOP
structure never shifts a boundary. When a source keyframe lies within half a segment of an ideal
chunk boundary, the split prefers the segment boundary nearest to it (less decoding to throw away).
Each chunk after the first also records ``preroll_frames``, the length of the segment before it:
an encoder may start that early to warm up its rate control and throw the extra segment away.
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass
from fractions import Fraction


@dataclass(frozen=True, kw_only=True)
class Chunk:
    index: int
    start_frame: int
    end_frame: int  # exclusive
    start_s: float
    end_s: float
    seek_s: float  # a source keyframe at or before start_s
    keyframes: tuple[int, ...]  # frames, relative to the chunk's start, that must be keyframes
    preroll_frames: int = 0  # the segment before the chunk (0 for the first chunk)

    @property
    def frame_count(self) -> int:
        return self.end_frame - self.start_frame


def segment_boundaries(frame_count: int, fps: Fraction, segment_duration_s: float) -> list[int]:
    """Frame numbers where segments start, plus ``frame_count`` at the end."""
    if segment_duration_s <= 0:
        raise ValueError("segment duration must be positive")
    out = []
    k = 0
    while True:
        f = int(round(k * segment_duration_s * fps))
        if f >= frame_count:
            break
        out.append(f)
        k += 1
    # a last sliver shorter than a quarter segment joins the previous segment
    if len(out) > 1 and frame_count - out[-1] < 0.25 * segment_duration_s * fps:
        out.pop()
    return out + [frame_count]


def plan_chunks(frame_count: int, fps: Fraction, segment_duration_s: float, chunk_duration_s: float,
                keyframe_times_s: tuple[float, ...] = ()) -> list[Chunk]:
    bounds = segment_boundaries(frame_count, fps, segment_duration_s)
    n_segments = len(bounds) - 1
    per_chunk = max(1, int(round(chunk_duration_s / segment_duration_s)))
    key_frames = sorted(int(round(t * fps)) for t in keyframe_times_s)
    cut_idx = [0]
    while cut_idx[-1] + per_chunk < n_segments:
        ideal = cut_idx[-1] + per_chunk
        cut_idx.append(_prefer_keyframe(ideal, bounds, key_frames, cut_idx[-1]))
    cut_idx.append(n_segments)
    chunks = []
    for i, (a, b) in enumerate(zip(cut_idx, cut_idx[1:])):
        start, end = bounds[a], bounds[b]
        seek_frame = key_frames[bisect.bisect_right(key_frames, start) - 1] if key_frames and key_frames[0] <= start else 0
        chunks.append(Chunk(index=i, start_frame=start, end_frame=end, start_s=float(start / fps),
                            end_s=float(end / fps), seek_s=float(seek_frame / fps),
                            keyframes=tuple(f - start for f in bounds[a:b]),
                            preroll_frames=start - bounds[a - 1] if a > 0 else 0))
    return chunks


def _prefer_keyframe(ideal: int, bounds: list[int], key_frames: list[int], previous: int) -> int:
    """Among segment boundaries ``ideal - 1 .. ideal + 1``, one that is a source keyframe, if any."""
    keys = set(key_frames)
    for cand in (ideal, ideal - 1, ideal + 1):
        if previous < cand < len(bounds) - 1 and bounds[cand] in keys:
            return cand
    return ideal
