"""`vodstack demo` as a new user runs it: a real ingest, a real 3-region stack, real sessions."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow


def test_demo_end_to_end(tmp_path):
    data = tmp_path / "data"
    done = subprocess.run([sys.executable, "-m", "vodstack", "--log-level", "warning", "demo",
                           "--data-dir", str(data), "--json"],
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    out = json.loads(done.stdout)
    assert out["ok"] is True and out["problems"] == []
    rows = {r["device"]: r for r in out["sessions"]}
    assert set(rows) == {"iphone", "tv-4k", "laptop-chrome", "android-phone"}
    assert all(r["ok"] for r in rows.values())
    # the Android phone played the DASH MPD through steering, the others HLS
    assert {d: r["format"] for d, r in rows.items()} == {"iphone": "hls", "tv-4k": "hls", "laptop-chrome": "hls",
                                                        "android-phone": "dash"}
    assert rows["android-phone"]["audio"].startswith("fr") and rows["android-phone"]["stalls"] == 0
    # the TV's edge was killed mid-session: it failed over, without a stall (>= 4 s was buffered)
    assert rows["tv-4k"]["failovers"] >= 1 and rows["tv-4k"]["stalls"] == 0
    assert len(rows["tv-4k"]["edges"]) >= 2
    # the laptop's region was evacuated: it ends on an edge of another region
    assert not rows["laptop-chrome"]["edges"][-1].startswith("edge-us-west-2")
    # devices decide: the TV plays a newer codec and 5.1; the iPhone on 3G stays lower on average
    assert rows["tv-4k"]["top_codec"].startswith(("hvc1", "hev1", "av01"))
    assert rows["tv-4k"]["audio"] == "en 6ch"
    assert rows["tv-4k"]["subtitles"] == "fr" and rows["iphone"]["subtitles"] == "off"
    assert rows["laptop-chrome"]["audio"].startswith("fr")
    assert rows["iphone"]["avg_bitrate_kbps"] < rows["tv-4k"]["avg_bitrate_kbps"]
    reports = data / "demo-reports"
    # the edges' side (their access-log files, written at --log-level warning too, joined by CMCD sid)
    assert all(r["edge_hit_ratio"] is not None for r in rows.values())
    joined = json.loads((reports / "joined.json").read_text())
    assert joined["requests"]["sessions"] == 4 and joined["requests"]["client"] > 40
    # every media request has its edge line but the last ones of the edge the demo SIGKILLs (its unwritten
    # batch, at most 0.5 s of lines, dies with it)
    assert joined["requests"]["matched"] >= 0.9 * joined["requests"]["client"]
    for name in ("iphone-3g-us-east-1", "tv-4k-fiber-eu-west-1"):
        report = json.loads((reports / f"{name}.json").read_text())
        assert report["ok"] is True and report["segments"]
        assert (reports / f"{name}.png").stat().st_size > 10_000

    # a second run finds the title and does not ingest again
    again = subprocess.run([sys.executable, "-m", "vodstack", "--log-level", "warning", "demo",
                            "--data-dir", str(data), "--json"], capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "title: found" in again.stderr
