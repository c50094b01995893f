"""Bad inputs: one clear line on stderr, a non-zero exit, and nothing published."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO, make_clip


def _assert_refused(proc: subprocess.CompletedProcess[str], out: Path, words: str) -> None:
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if not line.startswith("20")]  # log lines start with a date; no blank line either
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("vodstack: error: ") and words in lines[0], lines[0]
    assert "Traceback" not in proc.stderr
    assert not (out / "t" / "master.m3u8").exists() and not (out / "t" / "title.json").exists()


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory, clip: Path) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("bad")
    data = clip.read_bytes()
    (d / "empty.mp4").write_bytes(b"")
    (d / "text.mp4").write_text("this is not a video\n" * 50)
    (d / "no-moov.mp4").write_bytes(data[: len(data) // 2])  # moov at the end: cut off
    (d / "bad.srt").write_text("just some words\nno timing at all\n")
    (d / "binary.vtt").write_bytes(os.urandom(300) + b"\x00")
    make_clip(d / "audio-only.m4a", seconds=1, video=False, audio=("eng",))
    faststart = d / "faststart.mp4"
    subprocess.run([sys.executable, "-c", "import imageio_ffmpeg,subprocess,sys;subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(),"
                    "'-loglevel','error','-y','-i',sys.argv[1],'-c','copy','-movflags','+faststart',sys.argv[2]],check=True)",
                    str(clip), str(faststart)], check=True)
    fs = faststart.read_bytes()
    (d / "cut.mp4").write_bytes(fs[: len(fs) * 2 // 3])  # index intact, media data cut short
    return {p.stem: p for p in d.iterdir()}


@pytest.mark.parametrize("name, words", [
    ("missing", "source not found"),
    ("empty", "zero length"),
    ("text", "not a media file"),
    ("no-moov", "truncated"),
    ("cut", "truncated"),
    ("audio-only", "no video stream"),
])
def test_bad_source(name, words, bad_files, tmp_path, run_ingest):
    source = bad_files.get(name, tmp_path / "missing.mp4")
    proc = run_ingest(str(source), "--title", "t", "--out", str(tmp_path))
    _assert_refused(proc, tmp_path, words)


@pytest.mark.parametrize("spec, words", [
    ("en={missing}", "cannot read subtitle file"),
    ("en={bad.srt}", "not SRT or WebVTT"),
    ("en={binary.vtt}", "not SRT or WebVTT"),
    ("en:loud={bad.srt}", "unknown flag"),
    ("english.srt", "expected LANG=FILE"),
])
def test_bad_subtitles(spec, words, bad_files, clip, tmp_path, run_ingest):
    spec = spec.replace("{missing}", str(tmp_path / "nope.srt")).replace("{bad.srt}", str(bad_files["bad"])) \
        .replace("{binary.vtt}", str(bad_files["binary"]))
    proc = run_ingest(str(clip), "--title", "t", "--out", str(tmp_path), "--subs", spec)
    _assert_refused(proc, tmp_path, words)


def test_bad_title_and_ladder(clip, tmp_path, run_ingest):
    _assert_refused(run_ingest(str(clip), "--title", "../x", "--out", str(tmp_path)), tmp_path, "title id")
    _assert_refused(run_ingest(str(clip), "--title", "t", "--out", str(tmp_path), "--ladder", "nope"), tmp_path,
                    "unknown ladder")


def _ffmpeg_children_of(work: Path) -> list[int]:
    pids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                cmd = (d / "cmdline").read_bytes()
            except OSError:
                continue
            if str(work).encode() in cmd and b"ffmpeg" in cmd:
                pids.append(int(d.name))
    return pids


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_killed_mid_encode_publishes_nothing(sig, media_dir, tmp_path):
    source = media_dir / "longer.mp4"
    if not source.exists():
        make_clip(source, seconds=6, size="640x360", audio=("eng",))
    work = tmp_path / "work"
    work.mkdir()
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "vodstack", "ingest", str(source), "--title", "t", "--out", str(out),
                             "--jobs", "1", "--segment-duration", "2", "--chunk-duration", "2", "--nice", "10",
                             "--work-dir", str(work)], cwd=str(REPO), env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not list(work.glob("*/chunks/*/*.mp4")):
        assert proc.poll() is None, proc.stderr.read().decode()
        time.sleep(0.05)
    assert list(work.glob("*/chunks/*/*.mp4")), "the encode stage never started"
    proc.send_signal(sig)
    proc.wait(timeout=30)
    assert proc.returncode != 0
    time.sleep(0.5)
    assert not (out / "t" / "master.m3u8").exists() and not (out / "t" / "title.json").exists()
    assert not list(out.rglob("*.m4s")) if out.exists() else True
    assert _ffmpeg_children_of(work) == []  # no encoder left running behind the killed ingest
    if sig == signal.SIGTERM:
        assert not any(work.iterdir())  # an orderly stop also removes its work folder


LADDER_WITH_FLOORS = """
[codecs.h264]
encoder = "libx264"
preset = "medium"
params = "open-gop=0:scenecut=0"

[[video]]
id = "h264-234p"
codec = "h264"
width = 416
height = 234
bitrate_kbps = 145
vmaf_floor = {floor}

[[video]]
id = "h264-270p"
codec = "h264"
width = 480
height = 270
bitrate_kbps = 365
vmaf_floor = 20

[[audio.renditions]]
id = "aac-64k"
codec = "aac"
bitrate_kbps = 64
"""


def test_a_rendition_below_its_vmaf_floor_fails_the_ingest(clip, tmp_path, run_ingest):
    """VMAF against the source (the encode tasks' reference frames, two chunks): a 145 kbps 234p
    rendition of the clip cannot reach 99; the 270p one meets its floor of 20 and is not blamed."""
    ladder = tmp_path / "floors.toml"
    ladder.write_text(LADDER_WITH_FLOORS.format(floor=99), encoding="utf-8")
    proc = run_ingest(str(clip), "--title", "t", "--out", str(tmp_path), "--ladder", str(ladder),
                      "--segment-duration", "2", "--chunk-duration", "2", "--vmaf-subsample", "10", "--nice", "10", "--json")
    _assert_refused(proc, tmp_path, "h264-234p VMAF")
    assert "is below its floor 99" in proc.stderr and "h264-270p" not in proc.stderr
    # the same ladder with a floor the rendition meets: published
    ladder.write_text(LADDER_WITH_FLOORS.format(floor=15), encoding="utf-8")
    proc = run_ingest(str(clip), "--title", "t", "--out", str(tmp_path), "--ladder", str(ladder),
                      "--segment-duration", "2", "--chunk-duration", "2", "--vmaf-subsample", "10", "--nice", "10", "--json")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "t" / "master.m3u8").exists()
