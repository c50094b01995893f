"""VMAF reference frames: which frames of a title VMAF samples, and the lossless file that carries
them from the encode stage to the validate stage.

The samples are the title's frames whose number is a multiple of ``subsample`` (so they do not
depend on how the title is cut into chunks). Each chunk's encode task decodes that stretch of the
source anyway; it also writes the stretch's samples, taken from the same decoded frames (after the
same ``fps`` filter) that feed its encoders, as FFV1 in Matroska: lossless and intra-only, so the
validate task reads bit-identical source frames for a few hundredths of a second of CPU each
instead of decoding the source a second time (measured on 1080p: 3.9 s of CPU per 30 s stretch to
decode the source, 0.2 s to read its 15 samples, about 0.3 s to write them). The file goes through
the work folder, like the chunk files that the merge tasks read, and lives as long as it. Size:
FFV1 keeps about a third of the raw frame on natural content (Big Buck Bunny 720p: 0.41 MB a frame
of 1.38 MB), so a 2 h 1080p title sampled every 50th frame keeps ~3-4 GB of references there.

Both sides of the comparison renumber the samples 0, 1, 2, ... in one time base
(``renumber_filter``), so ``libvmaf`` pairs them one to one whatever time base each file has.
"""
from __future__ import annotations

from fractions import Fraction

import av

from .errors import EncodeError

#: the encoder options of a reference file (lossless, every frame a keyframe)
REFERENCE_CODEC = ("-c:v", "ffv1", "-threads", "1")


def sampled_count(start_frame: int, frame_count: int, subsample: int) -> int:
    """How many frames of the stretch ``start_frame .. start_frame + frame_count`` are samples."""
    if subsample <= 0 or frame_count <= 0:
        return 0
    first = -start_frame % subsample
    return 0 if first >= frame_count else 1 + (frame_count - 1 - first) // subsample


def select_filter(start_frame: int, subsample: int) -> str:
    """The ``select`` filter keeping the samples of a stretch whose first frame is ``start_frame``
    (``n`` counts the stretch's frames from 0)."""
    return f"select='not(mod(n+{start_frame % subsample}\\,{subsample}))'"


def renumber_filter(frame_rate: Fraction) -> str:
    """Timestamps 0, 1, 2, ... in a time base of one frame, the same on both sides of ``libvmaf``."""
    return f"settb={frame_rate.denominator}/{frame_rate.numerator},setpts=N"


def reference_output_args(frames: int, path: str) -> list[str]:
    """ffmpeg output options writing ``frames`` sampled frames to ``path`` (a ``.mkv``)."""
    return ["-frames:v", str(frames), "-an", "-sn", "-dn", "-map_metadata", "-1", *REFERENCE_CODEC,
            "-fps_mode", "passthrough", path]


def count_frames(path: str) -> int:
    """The number of video frames in a reference file (demux only); EncodeError if it cannot be read."""
    try:
        with av.open(path) as c:
            return sum(1 for p in c.demux(c.streams.video[0]) if p.size)
    except (OSError, av.FFmpegError, IndexError) as e:
        raise EncodeError(f"reference frames {path}: cannot read ({e})") from None
