"""Validate: every merged rendition against the source before anything is packaged.

Checks, each failing with its reason (``ValidationError`` lists all failures of a title):

- frame count and duration equal the source's, within one frame;
- timestamps: decode timestamps strictly increasing, presentation timestamps unique;
- a keyframe at every segment boundary (so the boundaries are the same in every rendition: they
  are the source's segment boundaries); audio: duration within a frame of the video's;
- decodes without error and VMAF (``vmaf_v0.6.1``, the rendition upscaled to the source size,
  every ``subsample``-th frame) at or above the rung's floor.

The last two share one ffmpeg command per chunk (a ``QualityTask``): the same stretch of every
rendition is decoded in full (so a decode error shows) and its sampled frames are compared with the
source's through ``libvmaf``. The source's sampled frames come from the reference file the chunk's
encode task wrote from its own decode of the source (``reference.py``: lossless, bit-identical to
decoding the source here), or, without one (``references=None``, as the bench uses it), from
decoding that stretch of the source once for all renditions. The chunks' tasks tile the title, so
every frame of every rendition is decoded once. Packet checks use PyAV demuxing only (no decode).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from fractions import Fraction

import av

from .ffmpeg import run_ffmpeg
from .errors import EncodeError
from .reference import count_frames, renumber_filter, sampled_count, select_filter


@dataclass(frozen=True, kw_only=True)
class StreamFacts:
    frame_count: int
    duration_s: float
    keyframes: tuple[int, ...]  # frame numbers (presentation order)
    dts_increasing: bool
    pts_unique: bool
    codec: str
    width: int
    height: int
    extradata: bytes


def stream_facts(path: str, kind: str = "video") -> StreamFacts:
    with av.open(path) as c:
        stream = c.streams.video[0] if kind == "video" else c.streams.audio[0]
        tb = stream.time_base
        if tb is None:
            raise EncodeError(f"{path}: the {kind} stream has no time base")
        pts: list[int] = []
        keys: list[int] = []
        last_dts = None
        dts_ok = True
        end = 0
        for p in c.demux(stream):
            if p.size == 0 or p.pts is None:
                continue
            if p.dts is not None:
                if last_dts is not None and p.dts <= last_dts:
                    dts_ok = False
                last_dts = p.dts
            pts.append(p.pts)
            if p.is_keyframe:
                keys.append(p.pts)
            end = max(end, p.pts + (p.duration or 0))
        ctx = stream.codec_context
        order = {v: i for i, v in enumerate(sorted(set(pts)))}
        start = min(pts) if pts else 0
        return StreamFacts(
            frame_count=len(pts), duration_s=float((end - start) * tb), keyframes=tuple(sorted(order[k] for k in keys)),
            dts_increasing=dts_ok, pts_unique=len(set(pts)) == len(pts), codec=ctx.name,
            width=getattr(ctx, "width", 0) or 0, height=getattr(ctx, "height", 0) or 0,
            extradata=bytes(ctx.extradata or b""))


def check_video(facts: StreamFacts, *, expected_frames: int, frame_rate: Fraction,
                boundaries: list[int], width: int, height: int) -> list[str]:
    """Every failed check, as a phrase (empty: all good)."""
    problems = []
    frame_s = 1 / float(frame_rate)
    if abs(facts.frame_count - expected_frames) > 1:
        problems.append(f"has {facts.frame_count} frames, the source {expected_frames}")
    expected_s = expected_frames * frame_s
    if abs(facts.duration_s - expected_s) > frame_s + 1e-6:
        problems.append(f"lasts {facts.duration_s:.3f} s, the source {expected_s:.3f} s")
    if not facts.dts_increasing:
        problems.append("decode timestamps are not strictly increasing")
    if not facts.pts_unique:
        problems.append("presentation timestamps repeat")
    missing = sorted(set(boundaries[:-1]) - set(facts.keyframes))
    if missing:
        problems.append(f"no keyframe at segment boundary frame(s) {missing[:5]}")
    if (facts.width, facts.height) != (width, height):
        problems.append(f"is {facts.width}x{facts.height}, expected {width}x{height}")
    return problems


def check_audio(facts: StreamFacts, *, video_duration_s: float, frame_rate: Fraction) -> list[str]:
    problems = []
    if abs(facts.duration_s - video_duration_s) > 1 / float(frame_rate) + 0.025:
        problems.append(f"lasts {facts.duration_s:.3f} s, the video {video_duration_s:.3f} s")
    if not facts.dts_increasing:
        problems.append("decode timestamps are not strictly increasing")
    return problems


@dataclass(frozen=True, kw_only=True)
class QualityTask:
    """Decode a stretch of every rendition in full and, on every ``subsample``-th frame of it, score
    each rendition's VMAF against the same frames of the source: read from ``references`` (the
    stretch's sampled source frames, written by the encode task) or, without it, decoded from
    ``source`` once for all renditions.

    The stretch is ``frame_count`` frames from ``start_frame`` (default: the whole file); the
    pipeline makes one task per chunk, so the source is decoded once in all and the tasks run in
    parallel. Frames are sampled on the title's frame numbers (``(start_frame + n) % subsample == 0``),
    so the samples do not depend on how the title was cut. ``vmaf=False``: decode only."""

    task_id: str
    ffmpeg: str
    source: str
    frame_rate: Fraction
    source_size: tuple[int, int]
    renditions: tuple[str, ...]  # merged files
    logs: tuple[str, ...]  # one VMAF JSON log per rendition
    subsample: int = 5
    references: str | None = None  # the stretch's sampled source frames (None: decode ``source``)
    start_frame: int = 0
    frame_count: int | None = None  # None: to the end
    vmaf: bool = True
    threads: int = 1
    niceness: int = 0

    @property
    def sampled_frames(self) -> int:
        """How many frames of the stretch VMAF scores (0 when none falls in it, or ``vmaf=False``)."""
        if not self.vmaf:
            return 0
        if self.frame_count is None:
            return 1  # unknown length: at least frame 0
        return sampled_count(self.start_frame, self.frame_count, self.subsample)


def _input(task: QualityTask, path: str, *, keyframe_at_start: bool = False) -> list[str]:
    args = ["-threads", str(task.threads)]
    fps = float(task.frame_rate)
    if task.start_frame > 0 and keyframe_at_start:
        # a rendition has a keyframe at every chunk start: seek to that frame's time rounded down to
        # the microsecond (never past it), so the demuxer starts at that keyframe; a quarter frame
        # early it started a whole segment earlier and decoded that segment for nothing
        us = task.start_frame * task.frame_rate.denominator * 1_000_000 // task.frame_rate.numerator
        args += ["-ss", f"{us // 1_000_000}.{us % 1_000_000:06d}"]
    elif task.start_frame > 0:
        # as the encoder seeks: a quarter frame early, the accurate seek keeps the stretch's first frame
        args += ["-ss", f"{max(0.0, task.start_frame / fps - 0.25 / fps):.6f}"]
    if task.frame_count is not None:
        args += ["-t", f"{(task.frame_count + 0.5) / fps:.6f}"]
    return args + ["-i", path]


def quality_command(task: QualityTask) -> list[str]:
    fps = f"{task.frame_rate.numerator}/{task.frame_rate.denominator}"
    w, h = task.source_size
    n = len(task.renditions)
    scored = task.sampled_frames > 0
    trim = f",trim=end_frame={task.frame_count}" if task.frame_count is not None else ""
    sel = select_filter(task.start_frame, task.subsample)
    renumber = renumber_filter(task.frame_rate)
    args = [task.ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error"]
    first = 0
    parts = []
    if scored:
        if task.references:  # already the sampled frames
            args += ["-threads", str(task.threads), "-i", task.references]
            ref = f"[0:v:0]{renumber}"
        else:
            args += _input(task, task.source)
            ref = f"[0:v:0]fps={fps},setpts=N/FRAME_RATE/TB{trim},{sel},{renumber}"
        parts.append(f"{ref},format=yuv420p,split={n}" + "".join(f"[ref{i}]" for i in range(n)))
        first = 1
    for r in task.renditions:
        args += _input(task, r, keyframe_at_start=True)
    for i, log in enumerate(task.logs):
        head = f"[{i + first}:v:0]setpts=N/FRAME_RATE/TB{trim}"
        if scored:
            parts.append(f"{head},{sel},{renumber},scale={w}:{h}:flags=bicubic,format=yuv420p[dis{i}]")
            log_path = log.replace("\\", "/").replace(":", "\\\\:").replace("'", "\\\\'")
            parts.append(f"[dis{i}][ref{i}]libvmaf=log_fmt=json:log_path={log_path}:n_threads={task.threads}[v{i}]")
        else:
            parts.append(f"{head}[v{i}]")  # decode only
    args += ["-filter_complex", ";".join(parts)]
    for i in range(n):
        args += ["-map", f"[v{i}]", "-f", "null", "-"]
    return args


@dataclass(frozen=True, kw_only=True)
class QualityResult:
    vmaf: dict[str, float]  # rendition file -> mean VMAF of the sampled frames (absent: none sampled)
    frame_scores: dict[str, tuple[float, ...]]  # rendition file -> VMAF of each sampled frame
    decode_errors: str  # whatever ffmpeg printed at level error (empty: clean)


def run_quality_task(task: QualityTask) -> QualityResult:
    """Run the task's command; EncodeError if its reference file is missing or has the wrong number
    of frames (the encode stage's fault, not a rendition's)."""
    for log in task.logs:
        os.makedirs(os.path.dirname(log), exist_ok=True)
    if task.references and task.sampled_frames > 0:
        have = count_frames(task.references)
        if have != task.sampled_frames:
            raise EncodeError(f"validate {task.task_id}: {task.references} holds {have} reference frames, "
                              f"expected {task.sampled_frames}")
    try:
        stderr = run_ffmpeg(quality_command(task), what=f"validate {task.task_id}", niceness=task.niceness)
    except EncodeError as e:
        return QualityResult(vmaf={}, frame_scores={}, decode_errors=str(e))
    scores: dict[str, tuple[float, ...]] = {}
    if task.sampled_frames > 0:
        for r, log in zip(task.renditions, task.logs):
            with open(log, encoding="utf-8") as f:
                scores[r] = tuple(float(fr["metrics"]["vmaf"]) for fr in json.load(f)["frames"])
    return QualityResult(vmaf={r: sum(v) / len(v) for r, v in scores.items() if v}, frame_scores=scores,
                         decode_errors=stderr.strip())


def pooled_vmaf(parts: list[tuple[float, ...]]) -> float | None:
    """The mean VMAF over every sampled frame of a rendition, from its per-stretch frame scores."""
    frames = [v for p in parts for v in p]
    return sum(frames) / len(frames) if frames else None
