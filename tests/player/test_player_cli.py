"""`vodstack play` as a user runs it: a real process against a real origin."""
from __future__ import annotations

import json
import subprocess
import sys

from player_helpers import REPO


def play(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "vodstack", "play", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO)


def test_play_prints_a_summary_and_writes_report_and_plot(origin_url, tmp_path):
    report, plot = tmp_path / "r.json", tmp_path / "r.png"
    p = play(f"{origin_url}/demo/master.m3u8", "--device", "iphone", "--network", "4g", "--speed", "8",
             "--duration", "16", "--audio-lang", "fr", "--subs-lang", "en", "--report", str(report),
             "--plot", str(plot))
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("ok: ") and "stalls 0" in p.stdout and "QoE_lin" in p.stdout
    assert "audio Français (2 ch), subtitles English" in p.stdout
    assert "buffer" in p.stderr  # the status line
    doc = json.loads(report.read_text())
    assert doc["ok"] and doc["device"] == "iphone" and len(doc["segments"]) == 4
    assert plot.read_bytes()[:4] == b"\x89PNG"


def test_play_json_output(origin_url):
    p = play(f"{origin_url}/demo/master.m3u8", "--device", "tv-4k", "--network", "cable", "--speed", "8",
             "--duration", "8", "--json", "--quiet", "--abr", "bba")
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert doc["abr"] == "bba" and doc["network"] == "cable" and doc["tracks"]["audio"]["channels"] == 6
    assert p.stderr.count("buffer") == 0


def test_play_over_a_trace_file(origin_url, tmp_path):
    trace = tmp_path / "t.log"
    trace.write_text("".join(f"{t}\t{2.0 if t % 10 < 5 else 0.5}\n" for t in range(0, 60)))
    p = play(f"{origin_url}/demo/master.m3u8", "--network", f"trace:{trace}", "--speed", "10", "--duration", "16",
             "--quiet")
    assert p.returncode == 0, p.stderr
    assert f"over trace:{trace}" in p.stdout


def test_a_failed_session_exits_1_with_one_line(origin_url):
    p = play(f"{origin_url}/missing/master.m3u8", "--quiet")
    assert p.returncode == 1
    assert p.stdout.startswith("FAILED")
    assert p.stderr.strip().splitlines()[-1].startswith("vodstack: error: playback failed: ")
    assert "Traceback" not in p.stderr


def test_bad_flags_exit_2_with_one_line():
    for args, text in [(["demo"], "give --steering"), (["http://x/m.m3u8", "--device", "fridge"], "unknown device"),
                       (["http://x/m.m3u8", "--network", "5g"], "unknown network"),
                       (["http://x/m.m3u8", "--abr", "magic"], "unknown ABR"),
                       (["http://x/m.m3u8", "--speed", "0"], "--speed")]:
        p = play(*args)
        assert p.returncode == 2, (args, p.stderr)
        assert text in p.stderr and "Traceback" not in p.stderr, (args, p.stderr)
