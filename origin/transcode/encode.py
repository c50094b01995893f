"""Encode: the ffmpeg commands for chunk tasks and audio tasks, and the task functions executors run.

Command building (``video_command``, ``audio_command``) is pure and separate from running
(``run_video_task``, ``run_audio_task``: top-level functions of picklable dataclasses, so a Dask
worker can run them as well as a local thread).

Every video task encodes one chunk (a run of whole segments) into one or more rungs. Inside a
chunk, a keyframe is forced at every segment boundary (IDR, closed GOP, no scene-cut keyframes, GOP
length = the segment), so all renditions switch at the same frames. Timestamps are rebuilt from the
frame count (``setpts=N/FRAME_RATE/TB``) so a chunk holds exactly its frames and merging needs no
re-encode. A task's rungs share one decode of the chunk through a ``split`` filter (the pipeline
puts all rungs of a codec in one task by default: ``rungs_per_task``).

Rate-control warm-up: x264's ABR starts each encode cautiously, so the first segment of every
chunk came out ~25% smaller than in one long encode; at 145 kbps that cost the 234p rung a whole
VMAF point on a 60 s title cut in three chunks. Rungs named in ``VideoTask.preroll`` (the pipeline
picks the low-bitrate ones, cheap to encode) start one segment early (``Chunk.preroll_frames``,
with a forced IDR at the real start) and the extra segment is dropped by a stream-copy remux
that seeks to that IDR, so the chunk file holds exactly the chunk's frames, as for other rungs.

VMAF references: a task given ``reference`` also writes the chunk's sampled source frames (every
``reference_subsample``-th frame of the title, lossless; see ``reference.py``) from the same
decode, one more branch of its ``split``; validation reads them instead of decoding the source again.
The pipeline gives one task per chunk a reference file.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, replace
from fractions import Fraction

from .ffmpeg import run_ffmpeg
from .ladder import AudioRung, CodecSettings, VideoRung
from .reference import reference_output_args, sampled_count, select_filter
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
    preroll: tuple[str, ...] = ()  # ids of the rungs that warm up on the segment before the chunk
    reference: str | None = None  # where to write the chunk's sampled source frames (None: nowhere)
    reference_subsample: int = 50  # every n-th frame of the title

    def preroll_frames(self, rung: VideoRung) -> int:
        return self.chunk.preroll_frames if rung.id in self.preroll else 0

    @property
    def reference_frames(self) -> int:
        """How many sampled source frames the task writes to ``reference`` (0: no file)."""
        if not self.reference:
            return 0
        return sampled_count(self.chunk.start_frame, self.chunk.frame_count, self.reference_subsample)


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


def _padded(chunk: Chunk, preroll: int) -> Chunk:
    """The chunk started ``preroll`` frames early, a keyframe at its real start too."""
    if not preroll:
        return chunk
    return replace(chunk, start_frame=chunk.start_frame - preroll,
                   keyframes=(0,) + tuple(k + preroll for k in chunk.keyframes))


def preroll_path(output: str) -> str:
    """Where a pre-rolled rung's encode goes before its warm-up segment is cut off."""
    root, ext = os.path.splitext(output)
    return f"{root}.preroll{ext}"


def video_command(task: VideoTask) -> list[str]:
    """One ffmpeg command: seek to the chunk, decode once, scale to each rung, encode each (and
    write the chunk's sampled frames, unscaled and lossless, when the task has a ``reference``)."""
    chunk, fps = task.chunk, task.frame_rate
    lead = max(task.preroll_frames(r) for r in task.rungs)  # decoded before the chunk's first frame
    first = chunk.start_frame - lead
    args = [task.ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-y", "-threads", str(task.threads)]
    if first > 0:
        # a quarter frame early: the accurate seek keeps the first frame and drops the one before
        args += ["-ss", f"{max(0.0, float(first / fps) - 0.25 / float(fps)):.6f}"]
    args += ["-i", task.source]
    head = f"[0:v:0]fps={fps.numerator}/{fps.denominator},setpts=N/FRAME_RATE/TB"
    chains = []
    for r in task.rungs:
        skip = lead - task.preroll_frames(r)
        cut = f"trim=start_frame={skip},setpts=N/FRAME_RATE/TB," if skip else ""
        chains.append(f"{cut}scale={r.width}:{r.height}:flags=bicubic,setsar=1")
    if task.reference_frames:
        span = f"start_frame={lead}:end_frame={lead + chunk.frame_count}" if lead else f"end_frame={chunk.frame_count}"
        chains.append(f"trim={span},{select_filter(chunk.start_frame, task.reference_subsample)},format=yuv420p")
    n = len(chains)
    if n == 1:
        graph = f"{head},{chains[0]}[o0]"
    else:
        parts = [f"{head},split={n}" + "".join(f"[s{i}]" for i in range(n))]
        parts += [f"[s{i}]{c}[o{i}]" for i, c in enumerate(chains)]
        graph = ";".join(parts)
    args += ["-filter_complex", graph]
    for i, (rung, out) in enumerate(zip(task.rungs, task.outputs)):
        pre = task.preroll_frames(rung)
        padded = _padded(chunk, pre)
        args += ["-map", f"[o{i}]", "-frames:v", str(padded.frame_count), "-an", "-sn", "-dn", "-map_metadata", "-1"]
        args += video_encoder_args(rung, task.codecs[rung.codec], padded, task.threads)
        args += ["-video_track_timescale", str(_timescale(fps)), "-movflags", "+faststart",
                 preroll_path(out) if pre else out]
    if task.reference and task.reference_frames:
        args += ["-map", f"[o{n - 1}]", *reference_output_args(task.reference_frames, task.reference)]
    return args


def drop_preroll_command(task: VideoTask, rung: VideoRung, output: str) -> list[str]:
    """Stream copy of a pre-rolled encode from the IDR at the chunk's real start (the warm-up
    segment before it is dropped; its closed GOP means nothing after refers to it)."""
    start_s = task.preroll_frames(rung) / task.frame_rate
    return [task.ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-y", "-ss", f"{float(start_s):.6f}",
            "-i", preroll_path(output), "-map", "0:v:0", "-c", "copy", "-map_metadata", "-1",
            "-video_track_timescale", str(_timescale(task.frame_rate)), "-movflags", "+faststart", output]


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
    for out in task.outputs + ((task.reference,) if task.reference and task.reference_frames else ()):
        os.makedirs(os.path.dirname(out), exist_ok=True)
    run_ffmpeg(video_command(task), what=f"encode {task.task_id}", niceness=task.niceness)
    for rung, out in zip(task.rungs, task.outputs):
        if task.preroll_frames(rung):
            run_ffmpeg(drop_preroll_command(task, rung, out), what=f"encode {task.task_id} {rung.id} cut",
                       niceness=task.niceness)
            os.unlink(preroll_path(out))
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
