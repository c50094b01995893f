"""Encode: the ffmpeg commands for chunk tasks and audio tasks, and the task functions executors run.

Command building (``video_command``, ``audio_command``) is pure and separate from running
(``run_video_task``, ``run_audio_task``: top-level functions of picklable dataclasses, so a Dask
worker can run them as well as a local thread).

Every video task encodes one chunk (a run of whole segments) into one or more rungs. Inside a
chunk, a keyframe is forced at every segment boundary (IDR, closed GOP, no scene-cut keyframes, GOP
length = the segment), so all renditions switch at the same frames. Timestamps are rebuilt from the
frame count (``setpts=N/FRAME_RATE/TB``) so a chunk holds exactly its frames and merging needs no
re-encode. ``rungs_per_task`` > 1 (or "all") lets one decode of the chunk feed several encoders
through a ``split`` filter: fewer, bigger tasks, less decoding; 1 gives the most parallelism.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from fractions import Fraction

from .ffmpeg import run_ffmpeg
from .ladder import AudioRung, CodecSettings, VideoRung
from .split import Chunk


@dataclass(frozen=True, kw_only=True)
class VideoTask:
    task_id: str
    ffmpeg: str
    source: str
    chunk: Chunk
    frame_rate: Fraction
    rungs: tuple[VideoRung, ...]
    codecs: dict[str, CodecSettings]
    outputs: tuple[str, ...]  # one file per rung
    threads: int = 1
    niceness: int = 0


@dataclass(frozen=True, kw_only=True)
class AudioTask:
    task_id: str
    ffmpeg: str
    source: str
    stream_index: int  # among the source's audio streams
    rung: AudioRung
    duration_s: float
    output: str
    niceness: int = 0


@dataclass(frozen=True, kw_only=True)
class TaskResult:
    task_id: str
    outputs: tuple[str, ...]
    elapsed_s: float
    worker: str


def _gop(chunk: Chunk) -> int:
    gaps = [b - a for a, b in zip(chunk.keyframes, chunk.keyframes[1:] + (chunk.frame_count,))]
    return max(gaps)


def force_keyframes_expr(chunk: Chunk) -> str:
    """``-force_key_frames`` expression naming every segment boundary of the chunk."""
    gop = _gop(chunk)
    if all(k == i * gop for i, k in enumerate(chunk.keyframes)):
        return f"expr:eq(mod(n,{gop}),0)"
    return "expr:" + "+".join(f"eq(n,{k})" for k in chunk.keyframes)


def video_encoder_args(rung: VideoRung, codec: CodecSettings, chunk: Chunk, threads: int) -> list[str]:
    gop = _gop(chunk)
    args = ["-c:v", codec.encoder]
    if codec.preset:
        args += ["-preset", codec.preset]
    if codec.profile:
        args += ["-profile:v", codec.profile]
    if codec.tag:
        args += ["-tag:v", codec.tag]
    args += ["-b:v", f"{rung.bitrate_kbps}k", "-g", str(gop), "-keyint_min", str(gop),
             "-force_key_frames", force_keyframes_expr(chunk), "-pix_fmt", "yuv420p"]
    if codec.encoder == "libx264":
        args += ["-maxrate", f"{rung.maxrate_kbps}k", "-bufsize", f"{rung.bufsize_kbps}k", "-sc_threshold", "0",
                 "-forced-idr", "1", "-threads", str(threads)]
        if codec.params:
            args += ["-x264-params", codec.params]
    elif codec.encoder == "libx265":
        args += ["-maxrate", f"{rung.maxrate_kbps}k", "-bufsize", f"{rung.bufsize_kbps}k", "-forced-idr", "1"]
        params = f"pools={threads}:frame-threads={min(threads, 2)}"
        args += ["-x265-params", ":".join(p for p in (codec.params, params) if p)]
    elif codec.encoder == "libsvtav1":
        params = f"lp={threads}"
        args += ["-svtav1-params", ":".join(p for p in (codec.params, params) if p)]
    else:
        args += ["-threads", str(threads)]
        if codec.params:
            args += ["-x264-params", codec.params]
    return args


def video_command(task: VideoTask) -> list[str]:
    """One ffmpeg command: seek to the chunk, decode once, scale to each rung, encode each."""
    chunk, fps = task.chunk, task.frame_rate
    args = [task.ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-y", "-threads", str(task.threads)]
    if chunk.start_frame > 0:
        # a quarter frame early: the accurate seek keeps the chunk's first frame and drops the one before
        args += ["-ss", f"{max(0.0, float(chunk.start_frame / fps) - 0.25 / float(fps)):.6f}"]
    args += ["-i", task.source]
    n = len(task.rungs)
    head = f"[0:v:0]fps={fps.numerator}/{fps.denominator},setpts=N/FRAME_RATE/TB"
    if n == 1:
        r = task.rungs[0]
        graph = f"{head},scale={r.width}:{r.height}:flags=bicubic,setsar=1[o0]"
    else:
        parts = [f"{head},split={n}" + "".join(f"[s{i}]" for i in range(n))]
        for i, r in enumerate(task.rungs):
            parts.append(f"[s{i}]scale={r.width}:{r.height}:flags=bicubic,setsar=1[o{i}]")
        graph = ";".join(parts)
    args += ["-filter_complex", graph]
    for i, (rung, out) in enumerate(zip(task.rungs, task.outputs)):
        args += ["-map", f"[o{i}]", "-frames:v", str(chunk.frame_count), "-an", "-sn", "-dn", "-map_metadata", "-1"]
        args += video_encoder_args(rung, task.codecs[rung.codec], chunk, task.threads)
        args += ["-video_track_timescale", str(_timescale(fps)), "-movflags", "+faststart", out]
    return args


def _timescale(fps: Fraction) -> int:
    """A track timescale in which every frame lasts a whole number of ticks."""
    base = fps.numerator
    while base < 10000:
        base *= 2
    return base


def audio_command(task: AudioTask) -> list[str]:
    r = task.rung
    return [task.ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-y", "-i", task.source,
            "-map", f"0:a:{task.stream_index}", "-vn", "-sn", "-dn", "-map_metadata", "-1",
            "-c:a", r.codec, "-b:a", f"{r.bitrate_kbps}k", "-ac", str(r.channels), "-ar", "48000",
            "-t", f"{task.duration_s:.6f}", "-movflags", "+faststart", task.output]


def run_video_task(task: VideoTask) -> TaskResult:
    started = time.monotonic()
    for out in task.outputs:
        os.makedirs(os.path.dirname(out), exist_ok=True)
    run_ffmpeg(video_command(task), what=f"encode {task.task_id}", niceness=task.niceness)
    return TaskResult(task_id=task.task_id, outputs=task.outputs, elapsed_s=time.monotonic() - started,
                      worker=_worker_name())


def run_audio_task(task: AudioTask) -> TaskResult:
    started = time.monotonic()
    os.makedirs(os.path.dirname(task.output), exist_ok=True)
    run_ffmpeg(audio_command(task), what=f"encode {task.task_id}", niceness=task.niceness)
    return TaskResult(task_id=task.task_id, outputs=(task.output,), elapsed_s=time.monotonic() - started,
                      worker=_worker_name())


def _worker_name() -> str:
    import socket
    import threading

    return f"{socket.gethostname()}:{os.getpid()}:{threading.current_thread().name}"
