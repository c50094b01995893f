"""streamlink and yt-dlp (from PyPI, the ``interop`` extra) list the variants of a title and
download one through an edge with a valid token; what they wrote is decoded by Debian's ffprobe,
and the French audio is told from the English one by its tone (fr 660 Hz, en 440 Hz).
"""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from interop_helpers import REPO, SOURCE_S, TITLE, TITLE_BYTERANGE, missing, need_tool, play

LAYOUTS = [pytest.param(TITLE, "segments", id="segments"), pytest.param(TITLE_BYTERANGE, "byterange", id="byterange")]
TONE_HZ = {"en": 440, "fr": 660}


def need_module(module: str, package: str) -> None:
    if importlib.util.find_spec(module) is None:
        missing(f"{package} is not installed (pip install {package}, or the 'interop' extra)")


def run_python_tool(module: str, *args: str, cwd: Path, timeout_s: float = 180) -> subprocess.CompletedProcess[str]:
    """``python -m MODULE ARGS`` with this interpreter (the tools live in the test environment)."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"}
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True,
                          timeout=timeout_s, cwd=str(cwd), env=env)


def probe_download(path: Path) -> dict:
    exe = need_tool("ffprobe", "apt-get install ffmpeg")
    done = subprocess.run([exe, "-v", "error", "-count_frames", "-of", "json", "-show_entries",
                           "stream=codec_type,codec_name,width,height,nb_read_frames:format=duration", str(path)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and not done.stderr.strip(), done.stderr[-1500:]
    return json.loads(done.stdout)


def dominant_tone_hz(path: Path) -> float:
    """The loudest frequency of the first audio stream (mono, 8 kHz, 4 s from second 2)."""
    import numpy as np

    exe = need_tool("ffmpeg", "apt-get install ffmpeg")
    done = subprocess.run([exe, "-v", "error", "-ss", "2", "-t", "4", "-i", str(path), "-map", "0:a:0", "-ac", "1",
                           "-ar", "8000", "-f", "s16le", "-"], capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr[-800:]
    samples = np.frombuffer(done.stdout, dtype="<i2").astype(float)
    assert len(samples) > 8000, "no audio decoded"
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / 8000)[int(spectrum.argmax())])


def check_download(path: Path, *, width: int, height: int, lang: str) -> None:
    info = probe_download(path)
    video = [s for s in info["streams"] if s["codec_type"] == "video"]
    audio = [s for s in info["streams"] if s["codec_type"] == "audio"]
    assert [(s["codec_name"], s["width"], s["height"]) for s in video] == [("h264", width, height)]
    assert int(video[0]["nb_read_frames"]) == SOURCE_S * 25
    assert [s["codec_name"] for s in audio] == ["aac"]
    assert abs(float(info["format"]["duration"]) - SOURCE_S) < 0.5
    assert abs(dominant_tone_hz(path) - TONE_HZ[lang]) < 5, f"expected the {lang} track's {TONE_HZ[lang]} Hz tone"


@pytest.mark.parametrize(("title", "layout"), LAYOUTS)
def test_streamlink_lists_variants_and_downloads_one(stack, title, layout, tmp_path: Path):
    need_module("streamlink_cli", "streamlink")
    need_tool("ffmpeg", "apt-get install ffmpeg")  # streamlink muxes the separate audio rendition with it
    url = "hls://" + play(stack, title, session=f"streamlink-{layout}")["edge_multivariant_url"]
    listed = run_python_tool("streamlink", "--json", url, cwd=tmp_path)
    assert listed.returncode == 0, listed.stdout[-1500:] + listed.stderr[-1500:]
    streams = json.loads(listed.stdout)["streams"]
    assert {"234p", "270p", "270p_alt", "best", "worst"} <= set(streams), sorted(streams)
    out = tmp_path / "streamlink.ts"
    got = run_python_tool("streamlink", "--loglevel", "warning", "--hls-audio-select", "fr", "-o", str(out), url,
                          "234p", cwd=tmp_path)
    assert got.returncode == 0 and out.is_file(), got.stdout[-1500:] + got.stderr[-1500:]
    check_download(out, width=416, height=234, lang="fr")


@pytest.mark.parametrize(("title", "layout"), LAYOUTS)
def test_ytdlp_lists_variants_and_downloads_one(stack, title, layout, tmp_path: Path):
    need_module("yt_dlp", "yt-dlp")
    need_tool("ffmpeg", "apt-get install ffmpeg")  # yt-dlp merges video and audio with it
    url = play(stack, title, session=f"ytdlp-{layout}")["edge_multivariant_url"]
    listed = run_python_tool("yt_dlp", "--no-cache-dir", "-J", url, cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr[-1500:]
    formats = json.loads(listed.stdout)["formats"]
    video = sorted((f["width"], f["height"]) for f in formats if f.get("vcodec") not in (None, "none"))
    audio = sorted(f["language"] for f in formats if f.get("vcodec") == "none")
    assert video == [(416, 234), (480, 270), (480, 270)], formats
    assert audio == ["en", "en", "fr", "fr"], formats
    got = run_python_tool("yt_dlp", "--no-cache-dir", "--no-progress", "-f", "bv*[height=234]+ba[language=fr]",
                          "-o", "ytdlp.%(ext)s", url, cwd=tmp_path)
    assert got.returncode == 0, got.stderr[-1500:]
    out = tmp_path / "ytdlp.mp4"
    assert out.is_file(), sorted(p.name for p in tmp_path.iterdir())
    check_download(out, width=416, height=234, lang="fr")


def test_tone_check_tells_english_from_french(tmp_path: Path):
    """The tone check itself: the two source tracks are told apart (else the checks above prove nothing)."""
    import imageio_ffmpeg

    for lang, hz in TONE_HZ.items():
        path = tmp_path / f"{lang}.m4a"
        subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i",
                        f"sine=frequency={hz}:duration=8:sample_rate=48000", "-c:a", "aac", str(path)],
                       check=True, timeout=60, cwd=str(REPO))
        assert abs(dominant_tone_hz(path) - hz) < 5
