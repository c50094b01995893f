"""A scripted viewer over HTTP: a real `vodstack origin` serving the synthetic 60 s title (4 s
segments), played as HLS and as DASH with a start position, a seek back, a seek forward, a pause
and an early quit (`client.script`, `client.playback`). Then the same through ``vodstack play``.

What must hold, on either format: the first segment fetched is the start position's; after the
seek back the session fetches the target's segment (with its audio) and nothing it had flushed
counts as shown; the seek's wait is a seek wait, not a stall; the pause and the quit are in the
report; the watched time is the script's, not the title's.
"""
from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import pytest

from client.context import SessionConfig
from client.devices import get_device
from client.network import parse_network
from client.script import parse_script
from client.session import PlayerSession
from player_helpers import REPO

SCRIPT = dict(start="40", seeks=["8@6", "+6@12"], pauses=["3@9"], watch_s=20.0)


async def _play(http, url: str, speed: float = 20.0):
    cfg = SessionConfig(abr="throughput", script=parse_script(**SCRIPT), max_buffer_s=12.0)
    session = PlayerSession(http, master_url=url, device=get_device("laptop-chrome"), network=parse_network("none"),
                            speed=speed, config=cfg)
    return await asyncio.wait_for(session.run(), 120)


@pytest.mark.parametrize("manifest", ["master.m3u8", "manifest.mpd"])
async def test_a_scripted_viewer_starts_seeks_pauses_and_quits(http, origin_url, manifest):
    report = await _play(http, f"{origin_url}/demo/{manifest}")
    assert report.ok, report.error
    b = report.behaviour
    assert b is not None and b["start_s"] == 40.0 and b["name"] == "scripted"
    # started where asked: segment 10 (40 s / 4 s) first, nothing before it until the seek back
    assert report.segments[0].index == 10
    back = next(k for k, s in enumerate(report.segments) if s.index < 10)
    assert report.segments[back].index == 2  # 8 s / 4 s
    assert all(s.index >= 10 for s in report.segments[:back])
    # the seeks: back (flushed: a wait, not a stall), then +6 s inside what was buffered (no wait)
    first, second = b["seeks"]
    assert first["from_s"] == pytest.approx(46.0, abs=1e-6) and first["to_s"] == 8.0 and first["flushed"]
    assert first["resumed"] and first["wait_s"] > 0
    assert second["flushed"] is False and second["wait_s"] == 0.0
    assert second["to_s"] == pytest.approx(second["from_s"] + 6.0)
    assert report.stall_count == 0
    [pause] = b["pauses"]
    assert pause["duration_s"] == 3.0 and pause["at_s"] > first["at_s"]
    # quit after 20 s of watching, long before the end of the title
    assert b["quit_early"] and b["watched_s"] == pytest.approx(20.0, abs=1e-6)
    assert report.played_s == pytest.approx(20.0, abs=1e-6) and report.content_s == pytest.approx(60.0)
    assert report.session_s >= 20.0 + 3.0  # watching plus the pause (plus the waits)
    # nothing after the quit position was fetched beyond the buffer goal
    last_position = second["to_s"] + (20.0 - 12.0)
    assert max(s.start_s for s in report.segments[back:]) <= last_position + 12.0 + 4.0
    # audio followed the seek back: the audio bytes cover both stretches, more than one stretch's worth
    assert report.bytes["audio"] > 0
    shown = report.shown
    assert len(shown) < len(report.segments) or all(not s.discarded for s in report.segments)


def test_vodstack_play_takes_the_script_flags(origin_url):
    p = subprocess.run([sys.executable, "-m", "vodstack", "play", f"{origin_url}/demo/master.m3u8", "--network", "none",
                        "--speed", "20", "--start", "50%", "--seek=-10@4", "--pause", "2@6", "--watch", "8",
                        "--json", "--quiet"], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    b = doc["behaviour"]
    assert b["start_s"] == 30.0 and b["quit_early"] and b["watched_s"] == pytest.approx(8.0, abs=1e-6)
    assert [(s["from_s"], s["to_s"]) for s in b["seeks"]] == [(pytest.approx(34.0), pytest.approx(24.0))]
    assert b["script"] == {"name": "scripted", "start": "50%", "watch_s": 8.0, "seeks": ["-10@4"], "pauses": ["2@6"]}
    assert doc["segments"][0]["index"] == 7 and any(s["index"] == 6 for s in doc["segments"])
    text = subprocess.run([sys.executable, "-m", "vodstack", "play", f"{origin_url}/demo/master.m3u8", "--network",
                           "none", "--speed", "20", "--start", "10", "--watch", "4", "--quiet"],
                          capture_output=True, text=True, cwd=REPO, timeout=120)
    assert text.returncode == 0, text.stderr
    assert "viewer: started at 10.0 s, 0 seeks" in text.stdout and "quit early after 4.0 s" in text.stdout


@pytest.mark.parametrize("flags, message", [
    (["--seek", "10"], "seek '10': write it as VALUE@WATCHED_SECONDS, e.g. +30@60"),
    (["--start", "+3"], "position '+3': a start is seconds or a percentage, not a jump"),
    (["--pause", "0@3"], "a pause of 0 s at 3 s: both must be >= 0, the duration > 0"),
])
def test_bad_script_flags_are_one_line(flags, message):
    p = subprocess.run([sys.executable, "-m", "vodstack", "play", "http://127.0.0.1:9/x/master.m3u8", *flags],
                       capture_output=True, text=True, cwd=REPO, timeout=60)
    assert p.returncode == 2 and p.stderr.strip().splitlines() == [f"vodstack: error: {message}"], p.stderr
