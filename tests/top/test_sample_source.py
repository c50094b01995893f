"""vodstack.sample: the one maker of sample sources (the demo's and the interop tests'), with real ffmpeg."""
from __future__ import annotations

import json
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from tests.tools import need_tool
from vodstack.errors import UsageError
from vodstack.sample import DEMO, SampleSpec, make_sample_source, srt_text


def probe(path: Path) -> list[dict]:
    out = subprocess.run([need_tool("ffprobe", "apt-get install ffmpeg"), "-v", "error", "-show_streams",
                          "-of", "json", str(path)], capture_output=True, text=True, check=True, timeout=60)
    return json.loads(out.stdout)["streams"]


def test_the_demo_source_has_english_surround_french_stereo_and_both_subtitles(tmp_path: Path) -> None:
    spec = replace(DEMO, duration_s=2, width=160, height=90)
    source, subs = make_sample_source(tmp_path, spec)
    video, eng, fra = probe(source)
    assert (video["codec_name"], video["width"], video["height"]) == ("h264", 160, 90)
    assert (eng["channels"], eng["tags"]["language"]) == (6, "eng")
    assert (fra["channels"], fra["tags"]["language"]) == (2, "fra")
    assert sorted(subs) == ["en", "fr"]
    assert "Served by an edge near you" in subs["en"].read_text(encoding="utf-8")
    assert "00:00:06,000 --> 00:00:10,000" in subs["en"].read_text(encoding="utf-8")
    assert not list(tmp_path.glob("*.tmp.*"))


def test_an_interop_like_spec_is_stereo_at_48_khz_and_a_found_source_is_kept(tmp_path: Path) -> None:
    spec = SampleSpec(name="clip", video_name="clip.mp4", duration_s=2, width=160, height=90,
                      sample_rate_hz=48000, pix_fmt="yuv420p", nice=True, subtitles={"fr": ((0, 1, "Bonjour"),)})
    source, subs = make_sample_source(tmp_path, spec)
    _, eng, fra = probe(source)
    assert [(a["channels"], a["sample_rate"]) for a in (eng, fra)] == [(2, "48000"), (2, "48000")]
    assert subs == {"fr": tmp_path / "clip-fr.srt"}
    made = source.stat().st_mtime_ns
    assert make_sample_source(tmp_path, spec)[0].stat().st_mtime_ns == made


def test_ffmpeg_failing_is_one_usage_error_line_and_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as e:
        make_sample_source(tmp_path, replace(DEMO, name="bad", video_name="bad.mp4", width=0, duration_s=1))
    assert str(e.value).startswith("could not make the bad source with ffmpeg: ") and "\n" not in str(e.value)
    assert not list(tmp_path.glob("*.mp4"))


def test_srt_counts_minutes_and_hours() -> None:
    assert srt_text([(3725, 3727, "late")]) == "1\n01:02:05,000 --> 01:02:07,000\nlate\n\n"


def test_no_bench_script_imports_a_test_helper() -> None:
    """The benches get their titles from the library (vodstack.sample), not from tests/."""
    import ast

    bench = Path(__file__).resolve().parents[2] / "bench"
    offenders = []
    for path in sorted(bench.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            offenders += [f"{path.relative_to(bench)}: {n}" for n in names if n == "tests" or n.startswith("tests.")]
    assert offenders == []
