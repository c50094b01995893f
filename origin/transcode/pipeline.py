"""The ingest pipeline: probe → split → encode → merge → validate → package → publish.

``ingest(config, events)`` runs one title end to end and returns an ``IngestResult``. Each stage
lives in its own module; this one only plans tasks, hands them to the executor, waits, and builds
the title model. All work happens in a private work folder; nothing reaches storage before every
rendition has passed validation, and ``publish`` makes the title visible last. Any exception on
the way (a task's failure, or KeyboardInterrupt: the CLI turns SIGTERM into one too) first
cancels every task (``executor.cancel()``: their ffmpeg killed, here or on Dask workers), then
the work folder goes. ``events`` (an ``IngestEvents``) hears stage starts and task completions,
for progress bars; it does no work.
"""
from __future__ import annotations

import asyncio
import concurrent.futures as cf
import logging
import os
import re
import resource
import shutil
import tempfile
import time
from dataclasses import dataclass, field, replace
from fractions import Fraction
from typing import Any, Callable, Iterable

from manifests import (AudioTrack, Cue, IFrameTrack, Segment, SubtitleTrack, Title, VideoRendition, measured_bandwidth,
                       render_title_playlists, segment_webvtt, target_duration)
from origin.storage import open_storage

from . import codecs as rfc6381
from .encode import AudioTask, VideoTask, run_audio_task, run_video_task
from .errors import IngestError, SourceError, ValidationError
from .executor import CANCEL_MARKER, TaskExecutor, default_jobs, open_executor
from .ffmpeg import capabilities, find_ffmpeg
from .ladder import AudioRung, CodecSettings, VideoRung, audio_roles_for, load_ladder, plan_audio, plan_video
from .merge import MergeTask, run_merge_task
from .package import PackagedTrack, PackageTask, run_package_task
from .probe import SourceInfo, probe_source
from .publish import PublishResult, Replaced, publish_title
from .sweep import keep_work_folder, sweep_temp_leftovers, sweep_work_folders, work_folder_prefix
from .split import Chunk, plan_chunks, segment_boundaries
from .subtitles import SubtitleSpec, language_name, language_tag, read_cues
from .validate import QualityTask, check_audio, check_video, pooled_vmaf, run_quality_task, stream_facts

log = logging.getLogger(__name__)
TITLE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
STAGES = ("probe", "encode", "merge", "validate", "package", "publish")


@dataclass(frozen=True, kw_only=True)
class IngestConfig:
    """Everything one ingest needs; the CLI fills it from flags."""

    source: str
    title: str
    out: str = "./vodstack-data"  #: storage URL (a bare path is a local folder)
    subs: tuple[SubtitleSpec, ...] = ()
    ladder: str = "default"  #: built-in name or TOML file
    codecs: tuple[str, ...] = ()  #: keep only these codec families (empty: all the ladder has)
    segment_duration_s: float = 4.0
    chunk_duration_s: float = 30.0  #: rounded to whole segments
    layout: str = "segments"  #: segments | byterange
    jobs: int = 0  #: parallel tasks (0: the machine's cores, or the Dask cluster's threads)
    executor: str = "local"  #: local | dask://HOST:PORT | dask://local
    ffmpeg: str | None = None
    rungs_per_task: int = 0  #: video rungs one chunk task encodes from one decode (0: all of a codec)
    preroll_below_kbps: int = 1000  #: rungs under this bitrate warm up on the segment before each chunk (0: none)
    threads_per_task: int = 0  #: encoder threads per task (0: cores / jobs, at least 1)
    vmaf_subsample: int = 50  #: VMAF on every n-th frame (50: one frame every 2 s at 25 fps)
    check_vmaf: bool = True
    niceness: int = 0  #: run ffmpeg at this nice level
    work_dir: str | None = None
    keep_work: bool = False

    def __post_init__(self) -> None:
        if not TITLE_ID.fullmatch(self.title):
            raise IngestError(f"title id {self.title!r}: use letters, digits, '.', '_' and '-' (at most 128)")
        if self.layout not in ("segments", "byterange"):
            raise IngestError(f"layout {self.layout!r}: use segments or byterange")
        if not 0.5 <= self.segment_duration_s <= 30:
            raise IngestError(f"segment duration {self.segment_duration_s} s: use 0.5 to 30 s")
        if self.chunk_duration_s < self.segment_duration_s:
            raise IngestError("chunk duration must be at least one segment")


class IngestEvents:
    """Progress hooks (no-ops here); the CLI's progress display overrides them."""

    def stage(self, name: str, total: int) -> None: ...

    def advance(self, name: str, done: int, total: int) -> None: ...

    def info(self, message: str) -> None: ...


@dataclass(frozen=True, kw_only=True)
class IngestResult:
    title: Title
    storage_url: str
    objects: int
    timings_s: dict[str, float]
    executor: str
    tasks: int
    #: CPU seconds of the ffmpeg processes each stage ran on this machine (local executor; a Dask
    #: cluster's workers are not counted)
    cpu_s: dict[str, float] = field(default_factory=dict)
    version: str = ""  #: the published version (``{title}/v/{version}/``)
    written: int = 0  #: objects written (an identical re-run writes none)
    replaced: Replaced | None = None  #: the version the title named before, if another one
    unchanged: bool = False  #: the title already named this very version


@dataclass(kw_only=True)
class _Plan:
    source: SourceInfo
    fps: Fraction
    chunks: list[Chunk]
    boundaries: list[int]
    rungs: list[VideoRung]
    audio: list[tuple[int, AudioRung]]  # (source audio index, rung)
    cues: dict[str, list[Cue]]
    roles: dict[str, tuple[str, ...]] = field(default_factory=dict)


def ingest(config: IngestConfig, events: IngestEvents | None = None) -> IngestResult:
    events = events or IngestEvents()
    timings: dict[str, float] = {}
    ffmpeg = find_ffmpeg(config.ffmpeg)
    ladder = load_ladder(config.ladder)
    if config.codecs:
        ladder = ladder.only(config.codecs)
    caps = capabilities(ffmpeg)
    missing = sorted({ladder.codecs[r.codec].encoder for r in ladder.video} - caps)
    if missing:
        raise IngestError(f"{ffmpeg} lacks encoder(s) {', '.join(missing)}; choose another with --ffmpeg")
    if config.check_vmaf and "libvmaf" not in caps:
        raise IngestError(f"{ffmpeg} has no libvmaf filter; choose another ffmpeg or turn VMAF checks off")
    storage = open_storage(config.out)

    t0 = time.monotonic()
    events.stage("probe", 1)
    source = probe_source(config.source)
    cues = {spec.track_id: read_cues(spec) for spec in config.subs}
    _check_unique_subs(config.subs)
    fps = source.video.frame_rate
    rungs = plan_video(ladder, source.video.width, source.video.height)
    if not rungs:
        raise SourceError(f"no ladder rung fits a {source.video.width}x{source.video.height} source")
    plan = _Plan(source=source, fps=fps, rungs=rungs, cues=cues,
                 chunks=plan_chunks(source.video.frame_count, fps, config.segment_duration_s,
                                    config.chunk_duration_s, source.video.keyframe_times_s),
                 boundaries=segment_boundaries(source.video.frame_count, fps, config.segment_duration_s),
                 audio=[(a.index, r) for a in source.audio for r in plan_audio(ladder, a.channels)])
    top_h264 = max((r for r in rungs if r.codec == "h264"), key=lambda r: r.bitrate_kbps, default=None)
    plan.roles = {r.id: audio_roles_for(ladder, r, top=r is top_h264) for r in rungs}
    events.advance("probe", 1, 1)
    timings["probe"] = time.monotonic() - t0
    log.info("probed", extra={"kv": {"title": config.title, "size": f"{source.video.width}x{source.video.height}",
                                     "fps": float(fps), "frames": source.video.frame_count,
                                     "audio": len(source.audio), "chunks": len(plan.chunks),
                                     "rungs": len(rungs)}})

    sweep_work_folders(config.work_dir)  # leftovers of ingests killed before they could clean up
    work = tempfile.mkdtemp(prefix=work_folder_prefix(config.title), dir=config.work_dir)
    executor: TaskExecutor | None = None
    n_tasks = 0
    cpu: dict[str, float] = {}
    try:
        # its tasks stop (ffmpeg killed) once the marker exists in the work folder: see executor.py
        executor = open_executor(config.executor, config.jobs or None,
                                 cancel_marker=os.path.join(work, CANCEL_MARKER))
        threads = config.threads_per_task or max(1, default_jobs() // max(1, executor.workers))
        t0, c0 = time.monotonic(), _children_cpu_s()
        video_tasks, audio_tasks = _encode_tasks(config, plan, ladder.codecs, ffmpeg, work, threads)
        n_tasks += len(video_tasks) + len(audio_tasks)
        # the short audio tasks first: the video tasks' encoder threads then fill the cores to the end
        _run_all(executor, events, "encode",
                 [(run_audio_task, t) for t in audio_tasks] + [(run_video_task, t) for t in video_tasks])
        timings["encode"] = time.monotonic() - t0
        cpu["encode"] = _children_cpu_s() - c0

        t0, c0 = time.monotonic(), _children_cpu_s()
        merge_tasks = [MergeTask(task_id=r.id, ffmpeg=ffmpeg, niceness=config.niceness,
                                 chunks=tuple(_chunk_path(work, r, c) for c in plan.chunks),
                                 output=os.path.join(work, "merged", f"{r.id}.mp4")) for r in rungs]
        n_tasks += len(merge_tasks)
        _run_all(executor, events, "merge", [(run_merge_task, t) for t in merge_tasks])
        timings["merge"] = time.monotonic() - t0
        cpu["merge"] = _children_cpu_s() - c0

        t0, c0 = time.monotonic(), _children_cpu_s()
        vmaf, facts = _validate(config, plan, executor, events, ffmpeg, work, threads)
        timings["validate"] = time.monotonic() - t0
        cpu["validate"] = _children_cpu_s() - c0

        t0, c0 = time.monotonic(), _children_cpu_s()
        packaged = _package(config, plan, executor, events, ffmpeg, work)
        timings["package"] = time.monotonic() - t0
        cpu["package"] = _children_cpu_s() - c0
        n_tasks += len(packaged)

        title, files = _build_title(config, plan, packaged, vmaf, facts, work)
        playlists = render_title_playlists(title)
        t0 = time.monotonic()
        events.stage("publish", 1)
        published = asyncio.run(_publish(storage, config.title, title, files, playlists, events))
        timings["publish"] = time.monotonic() - t0
        return IngestResult(title=published.title, storage_url=storage.url, objects=published.objects,
                            timings_s=timings, executor=executor.description, tasks=n_tasks,
                            cpu_s=cpu, version=published.version, written=published.written,
                            replaced=published.replaced, unchanged=published.unchanged)
    except BaseException as e:
        # a signal (KeyboardInterrupt) or a failure: every task stops and its ffmpeg is killed
        # (here or on the Dask workers) before the work folder goes
        if executor is not None:
            log.info("cancelling tasks", extra={"kv": {"title": config.title, "reason": type(e).__name__}})
            executor.cancel()
        raise
    finally:
        try:
            if executor is not None:
                executor.close()
        finally:  # even when a signal lands while the executor closes
            if config.keep_work:
                keep_work_folder(work)
                log.info("work folder kept", extra={"kv": {"path": work}})
            else:
                shutil.rmtree(work, ignore_errors=True)


async def _publish(storage: Any, title_id: str, title: Title, files: dict[str, str], playlists: dict[str, str],
                   events: IngestEvents) -> PublishResult:
    try:
        removed = await sweep_temp_leftovers(storage, titles=[title_id])  # not a walk of every title
        if removed:
            log.info("removed temporary files of interrupted writes", extra={"kv": {"count": len(removed)}})
        return await publish_title(storage, title_id, title=title, files=files, playlists=playlists,
                                   progress=lambda d, t: events.advance("publish", d, t))
    finally:
        await storage.close()


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _check_unique_subs(specs: Iterable[SubtitleSpec]) -> None:
    seen: set[str] = set()
    for s in specs:
        if s.track_id in seen:
            raise IngestError(f"--subs: two subtitle files for {s.track_id}")
        seen.add(s.track_id)


def _chunk_path(work: str, rung: VideoRung, chunk: Chunk) -> str:
    return os.path.join(work, "chunks", rung.id, f"{chunk.index:05d}.mp4")


def _reference_path(config: IngestConfig, work: str, chunk: Chunk) -> str | None:
    """The chunk's sampled source frames (VMAF references), written by one of its encode tasks."""
    return os.path.join(work, "refs", f"{chunk.index:05d}.mkv") if config.check_vmaf else None


def _encode_tasks(config: IngestConfig, plan: _Plan, codecs: dict[str, CodecSettings], ffmpeg: str, work: str,
                  threads: int) -> tuple[list[VideoTask], list[AudioTask]]:
    groups: list[tuple[VideoRung, ...]] = []
    for family in dict.fromkeys(r.codec for r in plan.rungs):
        fam = [r for r in plan.rungs if r.codec == family]
        size = len(fam) if config.rungs_per_task <= 0 else config.rungs_per_task
        groups += [tuple(fam[i:i + size]) for i in range(0, len(fam), size)]
    video = []
    # biggest work first: chunks in order, heavy rungs first inside each chunk
    for chunk in plan.chunks:
        for n, group in enumerate(sorted(groups, key=lambda g: -sum(r.width * r.height for r in g))):
            video.append(VideoTask(
                task_id=f"chunk{chunk.index:03d}-{'+'.join(r.id for r in group)}", ffmpeg=ffmpeg,
                source=os.path.abspath(config.source), chunk=chunk, frame_rate=plan.fps, rungs=group, codecs=codecs,
                outputs=tuple(_chunk_path(work, r, chunk) for r in group), threads=threads,
                niceness=config.niceness,
                preroll=tuple(r.id for r in group if r.bitrate_kbps < config.preroll_below_kbps),
                # the chunk's first task (its heaviest) also writes the VMAF references
                reference=_reference_path(config, work, chunk) if n == 0 else None,
                reference_subsample=config.vmaf_subsample))
    duration = plan.source.video.frame_count / float(plan.fps)
    audio = [AudioTask(task_id=f"audio{idx}-{r.id}", ffmpeg=ffmpeg, source=os.path.abspath(config.source),
                       stream_index=idx, rung=r, duration_s=duration,
                       output=os.path.join(work, "audio", f"{idx}-{r.id}.mp4"), niceness=config.niceness)
             for idx, r in plan.audio]
    return video, audio


def _run_all(executor: TaskExecutor, events: IngestEvents, stage: str,
             jobs: list[tuple[Callable[[Any], Any], Any]]) -> list[Any]:
    """Submit every task; wait; the first failure cancels the rest and is raised."""
    events.stage(stage, len(jobs))
    futures = {executor.submit(fn, arg): i for i, (fn, arg) in enumerate(jobs)}
    results: list[Any] = [None] * len(jobs)
    done = 0
    try:
        for f in cf.as_completed(futures):
            results[futures[f]] = f.result()
            done += 1
            events.advance(stage, done, len(jobs))
    except BaseException:
        for f in futures:
            f.cancel()
        raise
    return results


def _validate(config: IngestConfig, plan: _Plan, executor: TaskExecutor, events: IngestEvents, ffmpeg: str,
              work: str, threads: int) -> tuple[dict[str, float | None], dict[str, Any]]:
    frames = plan.source.video.frame_count
    problems: list[str] = []
    facts = {}
    for r in plan.rungs:
        f = stream_facts(os.path.join(work, "merged", f"{r.id}.mp4"))
        facts[r.id] = f
        problems += [f"{r.id} {p}" for p in check_video(f, expected_frames=frames, frame_rate=plan.fps,
                                                        boundaries=plan.boundaries, width=r.width, height=r.height)]
    video_s = frames / float(plan.fps)
    for idx, a in plan.audio:
        path = os.path.join(work, "audio", f"{idx}-{a.id}.mp4")
        problems += [f"audio {idx}-{a.id} {p}" for p in check_audio(stream_facts(path, "audio"),
                                                                      video_duration_s=video_s, frame_rate=plan.fps)]
    vmaf: dict[str, float | None] = {r.id: None for r in plan.rungs}
    tasks = _quality_tasks(config, plan, executor.workers, ffmpeg, work, threads)
    results = _run_all(executor, events, "validate", [(run_quality_task, t) for t in tasks])
    scores: dict[str, list[tuple[float, ...]]] = {r.id: [] for r in plan.rungs}
    broken: set[str] = set()
    for task, res in zip(tasks, results):
        for path in task.renditions:
            rid = os.path.basename(path)[:-4]
            if res.decode_errors:
                if rid not in broken:
                    problems.append(f"{rid} does not decode cleanly: {res.decode_errors[:300]}")
                broken.add(rid)
            elif path in res.frame_scores:
                got = len(res.frame_scores[path])
                if got != task.sampled_frames:  # libvmaf paired the wrong frames, or too few
                    problems.append(f"{rid} VMAF scored {got} frames in {task.task_id}, expected {task.sampled_frames}")
                scores[rid].append(res.frame_scores[path])
    if config.check_vmaf:
        for r in plan.rungs:
            score = pooled_vmaf(scores[r.id])
            rung_vmaf = vmaf[r.id] = None if score is None or r.id in broken else round(score, 2)
            if rung_vmaf is not None and rung_vmaf < r.vmaf_floor:
                problems.append(f"{r.id} VMAF {rung_vmaf:.1f} is below its floor {r.vmaf_floor:.0f}")
    if problems:
        raise ValidationError("validation failed: " + "; ".join(problems))
    return vmaf, facts


def _quality_tasks(config: IngestConfig, plan: _Plan, workers: int, ffmpeg: str, work: str,
                   threads: int) -> list[QualityTask]:
    """One task per chunk: the same stretch of every rendition decoded in full and scored on the
    sampled frames against the chunk's reference file (the source's sampled frames, written by the
    chunk's encode task). Fewer chunks than workers: the rungs are split into groups balanced by
    pixels (each group reads the reference file again, a few hundredths of a second a frame)."""
    n_groups = max(1, min(len(plan.rungs), -(-workers // len(plan.chunks))))
    groups: list[list[VideoRung]] = [[] for _ in range(n_groups)]
    for r in sorted(plan.rungs, key=lambda r: -r.width * r.height):
        min(groups, key=lambda g: sum(x.width * x.height for x in g)).append(r)
    tasks = []
    for chunk in plan.chunks:
        for i, g in enumerate(x for x in groups if x):
            tasks.append(QualityTask(
                task_id=f"chunk{chunk.index:03d}-vmaf{i}", ffmpeg=ffmpeg, source=os.path.abspath(config.source),
                frame_rate=plan.fps, source_size=(plan.source.video.width, plan.source.video.height),
                renditions=tuple(os.path.join(work, "merged", f"{r.id}.mp4") for r in g),
                logs=tuple(os.path.join(work, "vmaf", f"{r.id}-{chunk.index:03d}.json") for r in g),
                subsample=config.vmaf_subsample, start_frame=chunk.start_frame, frame_count=chunk.frame_count,
                references=_reference_path(config, work, chunk), vmaf=config.check_vmaf, threads=threads,
                niceness=config.niceness))
    # biggest first, so the last tasks to start are short
    return sorted(tasks, key=lambda t: -(t.frame_count or 0) * len(t.renditions))  # every task here has a count


def _package(config: IngestConfig, plan: _Plan, executor: TaskExecutor, events: IngestEvents, ffmpeg: str,
             work: str) -> dict[str, PackagedTrack]:
    tasks = [PackageTask(task_id=r.id, ffmpeg=ffmpeg, source=os.path.join(work, "merged", f"{r.id}.mp4"),
                         out_dir=os.path.join(work, "pkg", "video", r.id), key_prefix=f"video/{r.id}",
                         layout=config.layout, segment_duration_s=config.segment_duration_s, frame_rate=plan.fps,
                         niceness=config.niceness) for r in plan.rungs]
    for idx, a in plan.audio:
        tid = _audio_id(plan, idx, a)
        tasks.append(PackageTask(task_id=tid, ffmpeg=ffmpeg, source=os.path.join(work, "audio", f"{idx}-{a.id}.mp4"),
                                 out_dir=os.path.join(work, "pkg", "audio", tid), key_prefix=f"audio/{tid}",
                                 layout=config.layout, segment_duration_s=config.segment_duration_s,
                                 niceness=config.niceness))
    results = _run_all(executor, events, "package", [(run_package_task, t) for t in tasks])
    out = {t.task_id: r for t, r in zip(tasks, results)}
    # the same segment boundaries in every video rendition, equal to the planned ones
    expected = tuple(round(b / float(plan.fps), 3) for b in plan.boundaries[:-1])
    for r in plan.rungs:
        got = tuple(round(t, 3) for t in out[r.id].decode_times_s)
        if got != expected:
            raise ValidationError(f"{r.id}: segments start at {got[:6]}..., expected {expected[:6]}...")
    return out


def _audio_id(plan: _Plan, idx: int, rung: AudioRung) -> str:
    lang = language_tag(plan.source.audio[idx].language)
    same = [a for a in plan.source.audio if language_tag(a.language) == lang]
    return f"{rung.id}-{lang}" + (f"-{idx}" if len(same) > 1 else "")


def _build_title(config: IngestConfig, plan: _Plan, packaged: dict[str, PackagedTrack],
                 vmaf: dict[str, float | None], facts: dict[str, Any], work: str) -> tuple[Title, dict[str, str]]:
    files: dict[str, str] = {}
    audio = []
    groups_by_role: dict[str, list[str]] = {}
    for idx, a in plan.audio:
        tid = _audio_id(plan, idx, a)
        p = packaged[tid]
        files.update(p.files)
        peak, avg = measured_bandwidth(p.segments)
        src = plan.source.audio[idx]
        group = f"aud-{a.id}"
        groups_by_role.setdefault(a.role, [])
        if group not in groups_by_role[a.role]:
            groups_by_role[a.role].append(group)
        lang = language_tag(src.language)
        audio.append(AudioTrack(
            id=tid, codec=a.codec_string, language=lang, name=src.title or language_name(lang),
            channels=a.channels, bitrate_kbps=a.bitrate_kbps, group=group, default=idx == 0, bandwidth_bps=peak,
            average_bandwidth_bps=avg, playlist=f"audio/{tid}/index.m3u8", init=p.init, segments=p.segments,
            sample_rate_hz=48000))
    video, iframes = [], []
    for r in plan.rungs:
        p = packaged[r.id]
        files.update(p.files)
        peak, avg = measured_bandwidth(p.segments)
        f = facts[r.id]
        codec_tag = "hvc1" if r.codec == "hevc" else ""
        groups = tuple(g for role in plan.roles[r.id] for g in groups_by_role.get(role, ()))
        video.append(VideoRendition(
            id=r.id, codec=rfc6381.video_codec_string(f.codec, f.extradata, codec_tag), codec_family=r.codec,
            width=r.width, height=r.height, frame_rate=round(float(plan.fps), 3), hdr=False, bandwidth_bps=peak,
            average_bandwidth_bps=avg, nominal_bitrate_kbps=r.bitrate_kbps, vmaf=vmaf.get(r.id),
            devices=r.devices, playlist=f"video/{r.id}/index.m3u8", init=p.init, segments=p.segments,
            audio_groups=groups))
        ipeak, iavg = measured_bandwidth(p.iframes)
        iframes.append(IFrameTrack(rendition=r.id, playlist=f"iframes/{r.id}.m3u8", bandwidth_bps=ipeak,
                                   average_bandwidth_bps=iavg, segments=p.iframes))
    subtitles = []
    bounds_s = [b / float(plan.fps) for b in plan.boundaries]
    for spec in config.subs:
        docs = segment_webvtt(plan.cues[spec.track_id], bounds_s)
        segs = []
        folder = os.path.join(work, "pkg", "subs", spec.track_id)
        os.makedirs(folder, exist_ok=True)
        for n, (doc, start_s, end_s) in enumerate(zip(docs, bounds_s, bounds_s[1:]), 1):
            key = f"subs/{spec.track_id}/{n:05d}.vtt"
            local = os.path.join(folder, f"{n:05d}.vtt")
            data = doc.encode("utf-8")
            with open(local, "wb") as fh:
                fh.write(data)
            files[key] = local
            segs.append(Segment(path=key, duration_s=round(end_s - start_s, 6), size_bytes=len(data)))
        subtitles.append(SubtitleTrack(id=spec.track_id, language=language_tag(spec.language),
                                       name=spec.display_name, forced=spec.forced, sdh=spec.sdh,
                                       default=spec.default, playlist=f"subs/{spec.track_id}/index.m3u8",
                                       segments=tuple(segs)))
    duration = plan.source.video.frame_count / float(plan.fps)
    title = Title(title=config.title, duration_s=round(duration, 6), segment_duration_s=config.segment_duration_s,
                  layout=config.layout, video=tuple(video), audio=tuple(audio), subtitles=tuple(subtitles),
                  iframes=tuple(iframes))
    title = replace(title, target_duration_s=target_duration(s.duration_s for v in video for s in v.segments))
    return title, files
