"""Package: CMAF fragments from merged renditions (stream copy), measured from the real bytes.

ffmpeg's HLS muxer cuts each merged file into CMAF (``-hls_segment_type fmp4``): ``init.mp4`` +
``00001.m4s``... in the ``segments`` layout, or one ``media.mp4`` (init, then one
``sidx``+``moof``+``mdat`` per segment) in the ``byterange`` layout. Its own playlist is thrown
away: sizes, offsets and durations are read back from the files by ``mp4.read_fragmented``, and
the playlists are written from the title model by ``manifests``. Video is cut at every keyframe
(keyframes sit only at segment boundaries), audio at the segment duration.

Video segments are then rewritten in place (``chunks.split_key_samples``) so that each segment's
key frame is a CMAF chunk of its own (``moof``+``mdat``), followed by a chunk with the rest: the
I-frame track (HLS I-frame playlists, DASH trick-mode sets) is the byte range of those key
chunks, whole fragments inside the very segment objects the playlists name.

Timestamps are passed through as they are (``-avoid_negative_ts disabled``): the muxer then keeps
decode time 0 in the first ``tfdt`` and writes an edit list into ``init.mp4`` that starts the
presentation at the first frame's composition time (H.264 B-frames put it 2 frames after its
decode time; AAC's encoder delay puts the first real sample 1024 samples in). So packaged video
and audio both start at presentation time 0. (The muxer's default shifts the decode times to 0
and writes an empty edit instead: video would start one reorder delay, 80 ms at 25 fps, late.)
"""
from __future__ import annotations

import os
import posixpath
from dataclasses import dataclass
from fractions import Fraction

from manifests import InitSegment, Segment

from .chunks import split_key_samples, trex_defaults
from .ffmpeg import run_ffmpeg
from .mp4 import Fragment, read_fragmented

SEGMENT_NAME = "{n:05d}.m4s"


@dataclass(frozen=True, kw_only=True)
class PackageTask:
    task_id: str
    ffmpeg: str
    source: str  # merged rendition or encoded audio
    out_dir: str  # local folder for this track's files
    key_prefix: str  # e.g. video/h264-720p (relative to the title)
    layout: str  # segments | byterange
    segment_duration_s: float
    frame_rate: Fraction | None = None  # video only
    niceness: int = 0


@dataclass(frozen=True, kw_only=True)
class PackagedTrack:
    key_prefix: str
    init: InitSegment
    segments: tuple[Segment, ...]
    iframes: tuple[Segment, ...]  # byte range of each segment's key chunk (video)
    decode_times_s: tuple[float, ...]
    files: dict[str, str]  # object path (relative to the title) -> local file


def package_command(task: PackageTask) -> list[str]:
    hls_time = task.segment_duration_s
    if task.frame_rate is not None:
        # cut at every keyframe: half a frame less than a segment, so rounding never skips one
        hls_time = max(0.001, task.segment_duration_s - 0.5 / float(task.frame_rate))
    args = [task.ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-y", "-i", task.source,
            "-map", "0", "-c", "copy", "-map_metadata", "-1", "-avoid_negative_ts", "disabled", "-f", "hls", "-hls_time", f"{hls_time:.6f}",
            "-hls_playlist_type", "vod", "-hls_segment_type", "fmp4", "-start_number", "1"]
    if task.layout == "byterange":
        args += ["-hls_flags", "single_file+independent_segments",
                 "-hls_segment_filename", os.path.join(task.out_dir, "media.mp4")]
    else:
        args += ["-hls_flags", "independent_segments", "-hls_fmp4_init_filename", "init.mp4",
                 "-hls_segment_filename", os.path.join(task.out_dir, "%05d.m4s")]
    return args + [os.path.join(task.out_dir, "ffmpeg.m3u8")]


def run_package_task(task: PackageTask) -> PackagedTrack:
    os.makedirs(task.out_dir, exist_ok=True)
    run_ffmpeg(package_command(task), what=f"package {task.task_id}", niceness=task.niceness)
    os.unlink(os.path.join(task.out_dir, "ffmpeg.m3u8"))
    if task.frame_rate is not None:
        split_video_files(task.out_dir, task.layout)
    return measure_packaged(task.out_dir, task.key_prefix, task.layout)


def _rewrite(path: str, data: bytes) -> None:
    tmp = path + ".split"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def split_video_files(out_dir: str, layout: str) -> None:
    """Every segment's key frame in a chunk of its own (``chunks``), the files rewritten in place."""
    if layout == "byterange":
        path = os.path.join(out_dir, "media.mp4")
        with open(path, "rb") as f:
            data = f.read()
        _rewrite(path, split_key_samples(data, trex_duration=trex_defaults(data))[0])
        return
    with open(os.path.join(out_dir, "init.mp4"), "rb") as f:
        trex = trex_defaults(f.read())
    n = 1
    while os.path.exists(path := os.path.join(out_dir, SEGMENT_NAME.format(n=n))):
        with open(path, "rb") as f:
            data = f.read()
        _rewrite(path, split_key_samples(data, first_sequence=n, trex_duration=trex)[0])
        n += 1


def _segments_of(fragments: tuple[Fragment, ...]) -> list[list[Fragment]]:
    """Fragments grouped into segments: a key chunk (one sync sample) and the chunk that continues
    it (no sync sample first, starting where the key chunk ends) are one segment."""
    groups: list[list[Fragment]] = []
    for fr in fragments:
        last = groups[-1][-1] if groups else None
        if (last is not None and len(groups[-1]) == 1 and last.sample_count == 1 and last.first_sample_is_sync
                and not fr.first_sample_is_sync and fr.offset_bytes == fr.moof_offset_bytes
                and fr.decode_time == last.decode_time + last.duration_ticks):
            groups[-1].append(fr)
        else:
            groups.append([fr])
    return groups


def measure_packaged(out_dir: str, key_prefix: str, layout: str) -> PackagedTrack:
    """Segments, init and I-frame ranges (each segment's key chunk: from its ``moof`` to the end of
    its first sample) of a packaged track, from its files."""
    if layout == "byterange":
        local = os.path.join(out_dir, "media.mp4")
        key = posixpath.join(key_prefix, "media.mp4")
        with open(local, "rb") as f:
            data = f.read()
        parsed = read_fragmented(data)
        scale = parsed.timescale
        groups = _segments_of(parsed.fragments)
        segs = tuple(Segment(path=key, duration_s=sum(fr.duration_ticks for fr in g) / scale,
                             size_bytes=g[-1].offset_bytes + g[-1].size_bytes - g[0].offset_bytes,
                             offset_bytes=g[0].offset_bytes) for g in groups)
        iframes = tuple(Segment(path=key, duration_s=s.duration_s,
                                size_bytes=g[0].first_sample_end_bytes - g[0].moof_offset_bytes,
                                offset_bytes=g[0].moof_offset_bytes) for g, s in zip(groups, segs))
        return PackagedTrack(key_prefix=key_prefix, init=InitSegment(path=key, size_bytes=parsed.init_size_bytes,
                                                                     offset_bytes=0),
                             segments=segs, iframes=iframes,
                             decode_times_s=tuple(g[0].decode_time / scale for g in groups),
                             files={key: local})
    init_local = os.path.join(out_dir, "init.mp4")
    with open(init_local, "rb") as f:
        init = f.read()
    files = {posixpath.join(key_prefix, "init.mp4"): init_local}
    media_segments: list[Segment] = []
    iframe_ranges: list[Segment] = []
    starts: list[float] = []
    n = 1
    while os.path.exists(os.path.join(out_dir, SEGMENT_NAME.format(n=n))):
        name = SEGMENT_NAME.format(n=n)
        local = os.path.join(out_dir, name)
        key = posixpath.join(key_prefix, name)
        with open(local, "rb") as f:
            data = f.read()
        parsed = read_fragmented(init + data)
        scale = parsed.timescale
        frags = parsed.fragments
        duration = sum(fr.duration_ticks for fr in frags) / scale
        media_segments.append(Segment(path=key, duration_s=duration, size_bytes=len(data)))
        first = frags[0]
        iframe_ranges.append(Segment(path=key, duration_s=duration,
                                     size_bytes=first.first_sample_end_bytes - first.moof_offset_bytes,
                                     offset_bytes=first.moof_offset_bytes - len(init)))
        starts.append(first.decode_time / scale)
        files[key] = local
        n += 1
    return PackagedTrack(key_prefix=key_prefix, init=InitSegment(path=posixpath.join(key_prefix, "init.mp4"),
                                                                 size_bytes=len(init)),
                         segments=tuple(media_segments), iframes=tuple(iframe_ranges), decode_times_s=tuple(starts),
                         files=files)
