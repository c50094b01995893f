"""Merge: join a rendition's chunk files into one file, stream copy (no re-encode).

ffmpeg's concat demuxer reads the chunks in order and re-times them back to back; the chunks
were cut on segment boundaries and each starts with an IDR frame, so the joined stream is the
same as one long encode with forced keyframes at those frames. The merged file is an
intermediate (validated, then cut into CMAF), so no ``faststart`` rewrite.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from .ffmpeg import run_ffmpeg


@dataclass(frozen=True, kw_only=True)
class MergeTask:
    task_id: str
    ffmpeg: str
    chunks: tuple[str, ...]
    output: str
    niceness: int = 0


def concat_list(paths: tuple[str, ...]) -> str:
    """The concat demuxer's list file text (paths quoted the way it wants)."""
    lines = ["ffconcat version 1.0"]
    for p in paths:
        lines.append("file '" + os.path.abspath(p).replace("'", "'\\''") + "'")
    return "\n".join(lines) + "\n"


def merge_command(task: MergeTask, list_path: str) -> list[str]:
    return [task.ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-y", "-f", "concat", "-safe", "0",
            "-i", list_path, "-map", "0", "-c", "copy", "-map_metadata", "-1", task.output]


def run_merge_task(task: MergeTask) -> str:
    os.makedirs(os.path.dirname(task.output), exist_ok=True)
    list_path = task.output + ".ffconcat"
    with open(list_path, "w", encoding="utf-8") as f:
        f.write(concat_list(task.chunks))
    run_ffmpeg(merge_command(task, list_path), what=f"merge {task.task_id}", niceness=task.niceness)
    os.unlink(list_path)
    return task.output
