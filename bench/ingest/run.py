"""Bench: ``vodstack ingest`` (chunked, parallel) vs one ffmpeg command encoding the same rungs in one pass.

Same machine, same run, same source (a 1080p lavfi clip, made first and not timed), same encoder
settings: the single command is built by the pipeline's own ``encode.video_command`` for one chunk
spanning the whole source (keyframes forced at the same segment boundaries), all H.264 rungs fed
from one decode through ``split``, encoder threads left to ffmpeg; it also encodes the same two AAC
renditions. VMAF of both outputs is measured afterwards, outside the timings, the same way for
both (the pipeline's validate code: ``vmaf_v0.6.1``, every ``--vmaf-subsample``-th frame, default
10, denser than the pipeline's own check); the pipeline's own VMAF (its sparser sampling) is shown
too. Besides wall times it prints the CPU seconds of each side (children's user + system), which
other jobs on a shared machine disturb much less than wall times, and the load average.

    python bench/ingest/run.py [--seconds 60] [--rounds 1] [--rungs-per-task N] [--chunk-duration S] [--jobs 0] [--keep DIR]

``--rounds 2`` times each side twice in the order pipeline, single, single, pipeline and reports the
ratio of the summed times, so that a machine speeding up or slowing down mid-bench (a shared one
does) weighs on both sides alike.

``--rungs-per-task``, ``--chunk-duration``, ``--pipeline-vmaf-subsample`` and ``--preroll-below-kbps``
are passed to ``vodstack ingest`` when given (else its defaults apply).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from origin.transcode.encode import VideoTask, video_command  # noqa: E402
from origin.transcode.ffmpeg import find_ffmpeg  # noqa: E402
from origin.transcode.ladder import load_ladder, plan_video  # noqa: E402
from origin.transcode.split import Chunk, segment_boundaries  # noqa: E402
from origin.transcode.validate import QualityTask, run_quality_task  # noqa: E402

SEGMENT_S = 4.0
FPS = Fraction(25)


def make_source(path: Path, seconds: int, ffmpeg: str) -> None:
    subprocess.run([ffmpeg, "-hide_banner", "-loglevel", "error", "-y",
                    "-f", "lavfi", "-i", f"testsrc2=size=1920x1080:rate={FPS}:duration={seconds}",
                    "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}:sample_rate=48000",
                    "-c:v", "libx264", "-preset", "veryfast", "-crf", "18", "-pix_fmt", "yuv420p",
                    "-c:a", "aac", "-b:a", "192k", str(path)], check=True)


def single_command(ffmpeg: str, source: Path, frames: int, out_dir: Path) -> tuple[list[str], dict[str, Path]]:
    ladder = load_ladder("default").only(("h264",))
    rungs = tuple(plan_video(ladder, 1920, 1080))
    bounds = segment_boundaries(frames, FPS, SEGMENT_S)
    chunk = Chunk(index=0, start_frame=0, end_frame=frames, start_s=0.0, end_s=frames / float(FPS), seek_s=0.0,
                  keyframes=tuple(bounds[:-1]))
    outs = {r.id: out_dir / f"{r.id}.mp4" for r in rungs}
    task = VideoTask(task_id="single", ffmpeg=ffmpeg, source=str(source), chunk=chunk, frame_rate=FPS, rungs=rungs,
                     codecs=ladder.codecs, outputs=tuple(str(p) for p in outs.values()), threads=0)
    cmd = video_command(task)
    for kbps in (64, 128):  # the pipeline's two AAC renditions
        cmd += ["-map", "0:a:0", "-vn", "-c:a", "aac", "-b:a", f"{kbps}k", "-ac", "2", "-ar", "48000",
                str(out_dir / f"aac-{kbps}k.mp4")]
    return cmd, outs


def vmaf(ffmpeg: str, source: Path, files: dict[str, Path], logs: Path, subsample: int,
         frames: int) -> dict[str, float]:
    logs.mkdir(parents=True, exist_ok=True)
    task = QualityTask(task_id="bench", ffmpeg=ffmpeg, source=str(source), frame_rate=FPS, source_size=(1920, 1080),
                       renditions=tuple(str(p) for p in files.values()),
                       logs=tuple(str(logs / f"{k}.json") for k in files), subsample=subsample, frame_count=frames,
                       threads=os.cpu_count() or 1)
    res = run_quality_task(task)
    assert not res.decode_errors, res.decode_errors
    return {k: round(res.vmaf[str(p)], 2) for k, p in files.items()}


def timed(cmd: list[str], **kw) -> tuple[subprocess.CompletedProcess, float, float]:
    """Run ``cmd``; its wall seconds and its (and its children's) CPU seconds."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    proc = subprocess.run(cmd, **kw)
    wall = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return proc, wall, (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--rungs-per-task", type=int, default=None, help="passed to vodstack ingest (0: all rungs per chunk)")
    ap.add_argument("--chunk-duration", type=float, default=None, help="passed to vodstack ingest")
    ap.add_argument("--pipeline-vmaf-subsample", type=int, default=None, help="passed to vodstack ingest")
    ap.add_argument("--preroll-below-kbps", type=int, default=None, help="passed to vodstack ingest")
    ap.add_argument("--jobs", type=int, default=0)
    ap.add_argument("--vmaf-subsample", type=int, default=10, help="the bench's own VMAF of both sides (not timed)")
    ap.add_argument("--keep", default=None, help="keep the files in this folder")
    ap.add_argument("--rounds", type=int, default=1,
                    help="timed runs of each side, in alternating order (2: pipeline, single, single, pipeline); "
                         "the ratio is of the summed times")
    args = ap.parse_args()
    if args.rounds < 1:
        ap.error("--rounds must be at least 1")
    ffmpeg = find_ffmpeg()
    work = Path(args.keep or tempfile.mkdtemp(prefix="vodstack-bench-ingest-"))
    work.mkdir(parents=True, exist_ok=True)
    source = work / "source-1080p.mp4"
    if not source.exists():
        print(f"making a {args.seconds} s 1080p source ...", file=sys.stderr)
        make_source(source, args.seconds, ffmpeg)
    frames = int(args.seconds * FPS)

    # 1. the pipeline, as a user runs it (validation with VMAF included in its wall time)
    cmd = [sys.executable, "-m", "vodstack", "ingest", str(source), "--title", "bench", "--out", str(work / "out"),
           "--codecs", "h264", "--segment-duration", str(SEGMENT_S), "--jobs", str(args.jobs), "--keep-work", "--json"]
    for flag, value in (("--rungs-per-task", args.rungs_per_task), ("--chunk-duration", args.chunk_duration),
                        ("--vmaf-subsample", args.pipeline_vmaf_subsample),
                        ("--preroll-below-kbps", args.preroll_below_kbps)):
        if value is not None:
            cmd += [flag, str(value)]
    # 2. one ffmpeg command, same rungs, same settings, one pass
    single_dir = work / "single"
    single_dir.mkdir(exist_ok=True)
    scmd, outs = single_command(ffmpeg, source, frames, single_dir)

    runs: dict[str, list[tuple[float, float]]] = {"pipeline": [], "single": []}  # (wall, CPU) per round
    loads = [load()]
    result: dict = {}
    keep, last_pipeline = work, 0.0
    for round_no in range(args.rounds):
        # rounds alternate the order (pipeline, single, single, pipeline, ...): a machine that speeds
        # up or slows down during the bench weighs on both sides alike
        for side in (("pipeline", "single") if round_no % 2 == 0 else ("single", "pipeline")):
            if side == "pipeline":
                keep = Path(tempfile.mkdtemp(prefix="pipeline-work-", dir=work))
                # a storage folder per round: a re-run into the same one would publish nothing (same version)
                proc, wall, cpu = timed(cmd + ["--work-dir", str(keep), "--out", str(keep / "out")],
                                        capture_output=True, text=True,
                                        cwd=str(REPO), env={**os.environ, "PYTHONPATH": str(REPO)})
                if proc.returncode != 0:
                    print(proc.stderr, file=sys.stderr)
                    return 1
                result, last_pipeline = json.loads(proc.stdout), wall
            else:
                _, wall, cpu = timed(scmd, check=True)
            runs[side].append((wall, cpu))
            loads.append(load())
    pipeline_s, pipeline_cpu_s = (sum(r[k] for r in runs["pipeline"]) for k in (0, 1))
    single_s, single_cpu_s = (sum(r[k] for r in runs["single"]) for k in (0, 1))

    # 3. VMAF of both (not timed), the same way for both
    merged = {v["id"]: next(keep.glob(f"*/merged/{v['id']}.mp4")) for v in result["video"]}
    vmaf_single = vmaf(ffmpeg, source, outs, single_dir, args.vmaf_subsample, frames)
    vmaf_pipeline = vmaf(ffmpeg, source, merged, work / "vmaf-pipeline", args.vmaf_subsample, frames)
    own_vmaf = {v["id"]: v["vmaf"] for v in result["video"]}
    sizes = {k: (merged[k].stat().st_size, outs[k].stat().st_size) for k in outs}

    encode_s = result["timings_s"]["encode"]
    last_single = runs["single"][-1][0]
    print(f"source: {args.seconds} s 1920x1080 25 fps lavfi testsrc2 (H.264 crf 18), {os.cpu_count()} cores")
    print(f"load average (1, 5, 15 min) before and after each timed run: {' | '.join(loads)}")
    for n in range(args.rounds):
        (pw, pc), (sw, sc) = runs["pipeline"][n], runs["single"][n]
        print(f"round {n + 1}: pipeline {pw:.1f} s wall, {pc:.1f} s CPU; single {sw:.1f} s wall, {sc:.1f} s CPU; "
              f"ratio {pw / sw:.2f}x wall, {pc / sc:.2f}x CPU")
    print(f"pipeline (vodstack ingest, {result['tasks']} tasks on {result['executor']}), last run: "
          f"{last_pipeline:.1f} s wall\n   wall per stage [{', '.join(f'{k} {v:.1f}' for k, v in result['timings_s'].items())}]"
          f"\n   ffmpeg CPU per stage [{', '.join(f'{k} {v:.1f}' for k, v in result.get('cpu_s', {}).items())}]")
    print(f"single ffmpeg command (split filter, same settings), last run: {last_single:.1f} s wall")
    rounds = f" over {args.rounds} rounds (sums)" if args.rounds > 1 else ""
    print(f"ratio pipeline / single{rounds}: {pipeline_s / single_s:.2f}x wall, {pipeline_cpu_s / single_cpu_s:.2f}x CPU   "
          f"(last pipeline's encode stage / last single: {encode_s / last_single:.2f}x wall)")
    print(f"VMAF: both sides every {args.vmaf_subsample}th frame (not timed); 'own' = the pipeline's own check")
    print(f"{'rung':<12}{'VMAF pipeline':>15}{'VMAF single':>13}{'diff':>8}{'own':>8}{'MB pipeline':>13}{'MB single':>11}")
    for k in outs:
        d = vmaf_pipeline[k] - vmaf_single[k]
        own = "-" if own_vmaf[k] is None else f"{own_vmaf[k]:.2f}"
        print(f"{k:<12}{vmaf_pipeline[k]:>15.2f}{vmaf_single[k]:>13.2f}{d:>8.2f}{own:>8}"
              f"{sizes[k][0] / 1e6:>13.2f}{sizes[k][1] / 1e6:>11.2f}")
    print("pipeline command:", shlex.join(cmd + ["--work-dir", str(keep)]))
    print("single command:", shlex.join(scmd))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
