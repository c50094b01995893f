"""Probe: what the source holds (streams, duration, frame rate, resolution, channels), or why it
cannot be ingested.

Reads with PyAV (libav* in-process, demuxing only: no decode beyond the first video frame), so
the whole packet index is cheap: it gives the exact frame count and the source's keyframe times,
which the split stage uses. Rejected with ``SourceError``: a missing or unreadable file, a
zero-length file, a file that is not media, a truncated file (no index, or packets ending well
before the declared duration, or a demux error mid-file), a file without a video stream.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction

import av

from .errors import SourceError

#: a file whose packets stop this much before its declared duration is called truncated
TRUNCATION_TOLERANCE_S = 0.5


@dataclass(frozen=True, kw_only=True)
class VideoInfo:
    index: int
    codec: str
    width: int
    height: int
    frame_rate: Fraction
    frame_count: int
    duration_s: float
    pix_fmt: str | None
    keyframe_times_s: tuple[float, ...]
    hdr: bool = False


@dataclass(frozen=True, kw_only=True)
class AudioInfo:
    index: int  # position among the source's audio streams (ffmpeg's 0:a:N)
    codec: str
    channels: int
    sample_rate_hz: int
    language: str  # ISO 639 from the container, "und" if none
    title: str | None = None


@dataclass(frozen=True, kw_only=True)
class SourceInfo:
    path: str
    size_bytes: int
    format_name: str
    duration_s: float
    video: VideoInfo
    audio: tuple[AudioInfo, ...] = ()


def probe_source(path: str) -> SourceInfo:
    """Probe ``path`` or raise SourceError saying what is wrong with it."""
    try:
        size = os.stat(path).st_size
    except FileNotFoundError:
        raise SourceError(f"source not found: {path}") from None
    except OSError as e:
        raise SourceError(f"cannot read source {path}: {e.strerror}") from None
    if os.path.isdir(path):
        raise SourceError(f"source is a directory, not a media file: {path}")
    if size == 0:
        raise SourceError(f"source is empty (zero length): {path}")
    try:
        container = av.open(path, metadata_errors="ignore")
    except av.error.InvalidDataError:
        raise SourceError(_not_media_or_truncated(path)) from None
    except av.error.FFmpegError as e:
        raise SourceError(f"cannot open source {path}: {e}") from None
    with container:
        if not container.streams.video:
            raise SourceError(f"source has no video stream: {path}")
        vstream = container.streams.video[0]
        declared_s = container.duration / 1_000_000 if container.duration else None
        video = _scan_video(container, vstream, path, declared_s)
        audio = tuple(_audio_info(i, s) for i, s in enumerate(container.streams.audio))
        return SourceInfo(path=path, size_bytes=size, format_name=container.format.name,
                          duration_s=video.duration_s, video=video, audio=audio)


def _not_media_or_truncated(path: str) -> str:
    with open(path, "rb") as f:
        head = f.read(12)
    if head[4:8] in (b"ftyp", b"moov", b"mdat", b"wide", b"free"):
        return f"source is truncated (an MP4/MOV without its index, the moov box): {path}"
    return f"source is not a media file ffmpeg can read: {path}"


def _scan_video(container: av.container.InputContainer, stream: av.video.stream.VideoStream, path: str,
                declared_s: float | None) -> VideoInfo:
    ctx = stream.codec_context
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    if not rate or rate <= 0:
        raise SourceError(f"source video has no usable frame rate: {path}")
    tb = stream.time_base
    if tb is None:
        raise SourceError(f"source video has no time base: {path}")
    keyframes: list[float] = []
    count = 0
    last_end = 0.0
    first_pts: float | None = None
    try:
        for packet in container.demux(stream):
            if packet.size == 0 or packet.pts is None:
                continue
            t = float(packet.pts * tb)
            first_pts = t if first_pts is None else min(first_pts, t)
            count += 1
            if packet.is_keyframe:
                keyframes.append(t)
            last_end = max(last_end, t + float((packet.duration or 0) * tb))
    except av.error.FFmpegError as e:
        raise SourceError(f"source is truncated or corrupt (demux failed after {count} frames: {e}): {path}") from None
    if count == 0:
        raise SourceError(f"source video stream has no frames: {path}")
    start = first_pts or 0.0
    span = last_end - start
    if declared_s is not None and span < declared_s - max(TRUNCATION_TOLERANCE_S, 0.02 * declared_s):
        raise SourceError(f"source is truncated: its video stops at {span:.2f} s of a declared "
                          f"{declared_s:.2f} s: {path}")
    _check_first_frame_decodes(path, stream.index)
    trc = str(getattr(ctx, "color_trc", "") or "")
    hdr = trc in ("16", "18")  # SMPTE ST 2084 (PQ), ARIB STD-B67 (HLG)
    return VideoInfo(index=stream.index, codec=ctx.name, width=ctx.width, height=ctx.height,
                     frame_rate=Fraction(rate), frame_count=count, duration_s=count / float(rate),
                     pix_fmt=ctx.pix_fmt, keyframe_times_s=tuple(sorted(k - start for k in keyframes)), hdr=hdr)


def _check_first_frame_decodes(path: str, index: int) -> None:
    try:
        with av.open(path) as c:
            for _frame in c.decode(c.streams[index]):
                return
    except av.error.FFmpegError as e:
        raise SourceError(f"source video cannot be decoded: {e}: {path}") from None
    raise SourceError(f"source video has no decodable frame: {path}")


def _audio_info(i: int, stream: av.audio.stream.AudioStream) -> AudioInfo:
    ctx = stream.codec_context
    lang = (stream.metadata.get("language") or "und").strip() or "und"
    return AudioInfo(index=i, codec=ctx.name, channels=ctx.channels, sample_rate_hz=ctx.sample_rate,
                     language=lang, title=stream.metadata.get("title"))
