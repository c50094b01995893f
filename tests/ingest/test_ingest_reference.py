"""VMAF references: the sampled frames an encode task writes are the source's own frames, and
validation scores renditions against them (a rendition that is not the source scores low).

Runs real ffmpeg on the 4 s 480x270 clip (100 frames), at nice 10.
"""
from __future__ import annotations

import subprocess
from fractions import Fraction
from pathlib import Path

import pytest

from origin.transcode.encode import VideoTask, run_video_task
from origin.transcode.errors import EncodeError
from origin.transcode.ladder import load_ladder, plan_video
from origin.transcode.reference import count_frames
from origin.transcode.split import plan_chunks
from origin.transcode.validate import QualityTask, run_quality_task

FPS = Fraction(25)
EVERY = 10  # sampled frames: 0, 10, 20, ... of the title


def _frame_md5s(ffmpeg: str, path: Path, vf: str = "null") -> list[str]:
    """The MD5 of every decoded frame's pixels (yuv420p), in order."""
    out = subprocess.run(["nice", "-n", "10", ffmpeg, "-hide_banner", "-loglevel", "error", "-i", str(path),
                          "-map", "0:v:0", "-vf", f"{vf},format=yuv420p", "-fps_mode", "passthrough", "-f", "framemd5",
                          "-"], check=True, capture_output=True, text=True).stdout
    return [line.rsplit(",", 1)[1].strip() for line in out.splitlines() if line and not line.startswith("#")]


def _video_task(ffmpeg: str, clip: Path, tmp: Path, chunk_index: int) -> VideoTask:
    ladder = load_ladder().only(("h264",))
    rung = plan_video(ladder, 480, 270)[0]  # h264-234p, 145 kbps: pre-rolled after the first chunk
    chunk = plan_chunks(100, FPS, 2.0, 2.0)[chunk_index]
    return VideoTask(task_id=f"c{chunk_index}", ffmpeg=ffmpeg, source=str(clip), chunk=chunk, frame_rate=FPS,
                     rungs=(rung,), codecs=ladder.codecs, outputs=(str(tmp / "chunks" / f"{chunk_index}.mp4"),),
                     niceness=10, preroll=(rung.id,), reference=str(tmp / "refs" / f"{chunk_index}.mkv"),
                     reference_subsample=EVERY)


@pytest.mark.parametrize("chunk_index", [0, 1])  # chunk 1 decodes a pre-roll segment before its frames
def test_reference_frames_are_the_source_frames(chunk_index, clip, ffmpeg_exe, tmp_path):
    task = _video_task(ffmpeg_exe, clip, tmp_path, chunk_index)
    run_video_task(task)
    start, end = task.chunk.start_frame, task.chunk.end_frame
    source = _frame_md5s(ffmpeg_exe, clip)  # every frame of the source, decoded on its own
    assert len(source) == 100
    expected = [source[f] for f in range(start, end) if f % EVERY == 0]
    assert _frame_md5s(ffmpeg_exe, Path(task.reference)) == expected  # bit for bit, in order
    assert count_frames(task.reference) == task.reference_frames == len(expected) == 5


def _rendition(ffmpeg: str, clip: Path, out: Path, vf: str) -> Path:
    """The whole clip at 416x234 (after ``vf``), well encoded: 100 frames that decode cleanly, a
    keyframe at every 2 s segment (so validation's seek to chunk 1 starts at its keyframe)."""
    subprocess.run(["nice", "-n", "10", ffmpeg, "-hide_banner", "-loglevel", "error", "-y", "-i", str(clip),
                    "-map", "0:v:0", "-vf", f"{vf},scale=416:234:flags=bicubic", "-frames:v", "100", "-c:v", "libx264",
                    "-crf", "18", "-preset", "veryfast", "-g", "50", "-keyint_min", "50", "-sc_threshold", "0",
                    "-pix_fmt", "yuv420p", str(out)], check=True)
    return out


def test_vmaf_is_scored_against_the_source(clip, ffmpeg_exe, tmp_path):
    """Good and bad renditions of the clip, scored per chunk against the encode tasks' reference
    files and against the source decoded directly: the same scores; the bad ones score low. (Were
    the references taken from the rendition, or from another encode, the bad ones would pass.)"""
    tasks = [_video_task(ffmpeg_exe, clip, tmp_path, i) for i in (0, 1)]
    for t in tasks:
        run_video_task(t)
    renditions = {
        "good": _rendition(ffmpeg_exe, clip, tmp_path / "good.mp4", "null"),
        "flipped": _rendition(ffmpeg_exe, clip, tmp_path / "flipped.mp4", "vflip"),
        # a mis-cut: the right pictures, two frames late (the first frame repeated twice)
        "late": _rendition(ffmpeg_exe, clip, tmp_path / "late.mp4", "tpad=start=2:start_mode=clone"),
    }
    paths = tuple(str(p) for p in renditions.values())
    scores: dict[str, dict[str, list[float]]] = {"references": {}, "source": {}}
    for t in tasks:
        for mode in scores:
            q = QualityTask(task_id=f"{mode}{t.chunk.index}", ffmpeg=ffmpeg_exe, source=str(clip), frame_rate=FPS,
                            source_size=(480, 270), renditions=paths,
                            logs=tuple(str(tmp_path / "vmaf" / f"{mode}-{k}-{t.chunk.index}.json") for k in renditions),
                            subsample=EVERY, start_frame=t.chunk.start_frame, frame_count=t.chunk.frame_count,
                            references=t.reference if mode == "references" else None, niceness=10)
            res = run_quality_task(q)
            assert res.decode_errors == ""
            for name, path in zip(renditions, paths):
                assert len(res.frame_scores[path]) == q.sampled_frames == 5
                scores[mode].setdefault(name, []).extend(res.frame_scores[path])
    for name in renditions:
        assert scores["references"][name] == pytest.approx(scores["source"][name], abs=1e-9), name
    mean = {name: sum(v) / len(v) for name, v in scores["references"].items()}
    assert mean["good"] > 80 and min(scores["references"]["good"]) > 80, scores["references"]["good"]
    assert mean["flipped"] < mean["good"] - 40, mean
    assert mean["late"] < mean["good"] - 10, mean


def test_a_reference_file_with_missing_frames_fails_the_task(clip, ffmpeg_exe, tmp_path):
    task = _video_task(ffmpeg_exe, clip, tmp_path, 0)
    run_video_task(task)
    # the references of 4 s of the title offered for a 6 s stretch: refused, not scored against repeats
    q = QualityTask(task_id="q", ffmpeg=ffmpeg_exe, source=str(clip), frame_rate=FPS, source_size=(480, 270),
                    renditions=(task.outputs[0],), logs=(str(tmp_path / "q.json"),), subsample=EVERY,
                    start_frame=0, frame_count=60, references=task.reference, niceness=10)
    with pytest.raises(EncodeError, match="holds 5 reference frames, expected 6"):
        run_quality_task(q)
    with pytest.raises(EncodeError, match="cannot read"):
        run_quality_task(QualityTask(**{**q.__dict__, "references": str(tmp_path / "nope.mkv")}))
