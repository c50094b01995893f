"""Fixtures for the ingest tests: short lavfi clips made with the pipeline's own ffmpeg, and
ingests run once per session through the real ``vodstack ingest`` command (ffmpeg at nice 10).

    ffmpeg_exe       the imageio-ffmpeg binary the pipeline uses
    clip             4 s 480x270 25 fps testsrc2, two audio tracks (eng 440 Hz, fra 660 Hz)
    subs_files       an SRT (en) and a WebVTT (fr, forced) for the clip
    ingested_local   the clip ingested into a temp folder (segments layout, 2 s segments, 2 s chunks)
    run_ingest       run ``vodstack ingest ARGS`` as a subprocess; returns CompletedProcess
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import pytest

REPO = Path(__file__).resolve().parents[2]
SRT = """1
00:00:00,500 --> 00:00:01,500
Hello from the first segment

2
00:00:01,800 --> 00:00:02,600
Across the 2 s boundary

3
00:00:03,000 --> 00:00:03,900
Last words
"""
VTT = """WEBVTT

00:00:01.000 --> 00:00:01.400
[Forced] Bonjour
"""


def ffmpeg_path() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def make_clip(path: Path, *, seconds: float, size: str = "480x270", rate: int = 25, audio: tuple[str, ...] = ("eng", "fra"),
              channels: int = 2, video: bool = True) -> Path:
    args = ["nice", "-n", "10", ffmpeg_path(), "-hide_banner", "-loglevel", "error", "-y"]
    maps = []
    n = 0
    if video:
        args += ["-f", "lavfi", "-i", f"testsrc2=size={size}:rate={rate}:duration={seconds}"]
        maps += ["-map", f"{n}:v"]
        n += 1
    layout = "5.1" if channels == 6 else "stereo"
    for i, _lang in enumerate(audio):
        args += ["-f", "lavfi", "-i",
                 f"sine=frequency={440 + 220 * i}:duration={seconds}:sample_rate=48000,aformat=channel_layouts={layout}"]
        maps += ["-map", f"{n}:a"]
        n += 1
    args += maps
    if video:
        args += ["-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-pix_fmt", "yuv420p", "-g", "48"]
    args += ["-c:a", "aac", "-b:a", "192k"]
    for i, lang in enumerate(audio):
        args += [f"-metadata:s:a:{i}", f"language={lang}"]
    args += [str(path)]
    subprocess.run(args, check=True, timeout=120)
    return path


def run_vodstack(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("VODSTACK_FFMPEG", None)
    return subprocess.run([sys.executable, "-m", "vodstack", *args], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=str(REPO))


@pytest.fixture(scope="session")
def ffmpeg_exe() -> str:
    return ffmpeg_path()


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ingest-media")


@pytest.fixture(scope="session")
def clip(media_dir: Path) -> Path:
    return make_clip(media_dir / "clip.mp4", seconds=4)


@pytest.fixture(scope="session")
def subs_files(media_dir: Path) -> dict[str, Path]:
    (media_dir / "en.srt").write_text(SRT, encoding="utf-8")
    (media_dir / "fr-forced.vtt").write_text(VTT, encoding="utf-8")
    return {"en": media_dir / "en.srt", "fr": media_dir / "fr-forced.vtt"}


CLIP_FLAGS = ("--segment-duration", "2", "--chunk-duration", "2", "--nice", "10", "--jobs", "2", "--json")


@pytest.fixture(scope="session")
def run_ingest() -> Callable[..., subprocess.CompletedProcess[str]]:
    return lambda *args, **kw: run_vodstack("ingest", *args, **kw)


@pytest.fixture(scope="session")
def ingested_local(tmp_path_factory: pytest.TempPathFactory, clip: Path, subs_files: dict[str, Path]) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("ingest-out")
    proc = run_vodstack("ingest", str(clip), "--title", "clip", "--out", str(out), "--subs", f"en={subs_files['en']}",
                        "--subs", f"fr:forced={subs_files['fr']}", *CLIP_FLAGS)
    assert proc.returncode == 0, proc.stderr
    return {"out": out, "root": out / "clip", "result": json.loads(proc.stdout), "stderr": proc.stderr}
