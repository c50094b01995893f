"""`vodstack load --behaviour FILE` end to end: viewers who resume, seek, pause and quit, on HLS and
DASH, against a real loopback `vodstack up` (one region, two edges, a synthetic 40 s title in 2 s
segments, time compressed 10x) whose edges write access logs, so the report joins them.

What must hold: every session plays the script its profile drew (the script is in its row, so it
can be replayed with ``vodstack play --start/--seek/--pause/--watch``); a quitter quits within its
watch range; a resumer starts where its script said; each seek the script placed before the viewer
stopped watching happened, and none after; the report's per-profile counts are the sums of the
sessions'; the joined report has the edge hit ratio of each behaviour beside play-from-0.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

import pytest

from client.script import ViewerScript
from load_helpers import UpStack, make_store, read_report, topology_text, vodstack

pytestmark = pytest.mark.slow

TITLE_S = 40.0
BEHAVIOURS = """
[profile.play-from-0]
weight = 1
[profile.quitter]
weight = 1
watch = "uniform"
watch_range_s = [4, 8]
[profile.seeker]
weight = 1
start = "resume"
resume_range = [0.2, 0.6]
seeks_per_min = 6
seek_random = 0.5
seek_forward = 0.5
seek_jump_s = [4, 12]
watch = "uniform"
watch_range_s = [20, 30]
[profile.pauser]
weight = 1
pauses_per_min = 6
pause_s = [1, 2]
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[UpStack, Path]]:
    root = tmp_path_factory.mktemp("load-behaviour")
    store = make_store(root / "storage", {"long": TITLE_S})
    topo = root / "topology.toml"
    topo.write_text(topology_text(root / "data", store, regions={"us-east-1": []}))
    up = UpStack(topo, root / "up.log", log_level="info")  # info: the edges write their access logs
    try:
        yield up, topo
    finally:
        up.stop()


def test_behaviour_mixes_play_the_seeks_pauses_and_quits_they_draw(stack, tmp_path: Path):
    up, topo = stack
    profiles = tmp_path / "viewers.toml"
    profiles.write_text(BEHAVIOURS)
    out = tmp_path / "report"
    r = vodstack("--log-level", "warning", "load", "--steering", up.steering, "--titles", "long", "--players", "32",
                 "--ramp", "8", "--speed", "10", "--networks", "4g", "--formats", "hls:1,dash:1", "--workers", "2",
                 "--seed", "5", "--behaviour", str(profiles), "--no-live", "--topology", str(topo),
                 "--report", str(out), timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    report = read_report(out)
    sessions = report["sessions"]
    assert report["summary"]["finished"] == 32 and report["config"]["behaviour"] == str(profiles)
    by = {name: [s for s in sessions if s["behaviour"] == name] for name in ("play-from-0", "quitter", "seeker",
                                                                           "pauser")}
    assert all(by.values()), {k: len(v) for k, v in by.items()}
    for s in by["play-from-0"]:
        assert "script" not in s and "viewer" not in s and s["played_s"] == pytest.approx(TITLE_S, abs=1e-3)
    for s in by["quitter"]:
        v = s["viewer"]
        assert v["quit_early"] and 4.0 <= v["watched_s"] <= 8.0 and v["watched_s"] == pytest.approx(
            s["script"]["watch_s"], abs=1e-3)
        assert s["played_s"] == pytest.approx(v["watched_s"], abs=1e-3)
    seeks_seen = 0
    for s in by["seeker"]:
        script, v = ViewerScript.from_dict(s["script"]), s["viewer"]
        assert v["start_s"] == pytest.approx(script.start.resolve(TITLE_S), abs=1e-3)
        assert 0.2 * TITLE_S <= v["start_s"] <= 0.6 * TITLE_S
        # causality: exactly the seeks placed before the viewer stopped watching were made
        assert v["seeks"] == sum(1 for x in script.seeks if x.at_s < v["watched_s"] - 1e-6), (script, v)
        seeks_seen += v["seeks"]
    assert seeks_seen > 0
    assert {s["format"] for s in by["seeker"] if s["viewer"]["seeks"]} == {"hls", "dash"}
    for s in by["pauser"]:
        script, v = ViewerScript.from_dict(s["script"]), s["viewer"]
        assert v["pauses"] == sum(1 for x in script.pauses if x.at_s < TITLE_S - 1e-6)
        assert not v["quit_early"] and v["watched_s"] == pytest.approx(TITLE_S, abs=1e-3)
        assert s["session_s"] >= TITLE_S + sum(x.duration_s for x in script.pauses if x.at_s < TITLE_S) - 1e-3
    # the report's counts are the sessions' sums
    totals = report["summary"]["behaviours"]
    assert set(totals) == set(by)
    for name, group in by.items():
        t = totals[name]
        viewers = [s["viewer"] for s in group if "viewer" in s]
        assert t["sessions"] == len(group)
        assert t["seeks"] == sum(v["seeks"] for v in viewers) and t["pauses"] == sum(v["pauses"] for v in viewers)
        assert t["quit_early"] == sum(v["quit_early"] for v in viewers)
    assert totals["quitter"]["quit_early"] == len(by["quitter"]) and totals["play-from-0"]["seeks"] == 0
    assert totals["seeker"]["resumed"] == len(by["seeker"])
    # the edge hit ratio by behaviour, beside the play-from-0 baseline
    hit = report["joined"]["hit_ratio"]["by_behaviour"]
    assert set(hit) == set(by) and all(row["requests"] > 0 for row in hit.values())
    text = r.stdout
    assert "behaviour seeker:" in text and "behaviour quitter:" in text
    html = (out / "index.html").read_text()
    assert "Viewer behaviour" in html and "Edge hit ratio by viewer behaviour" in html


def test_a_bad_behaviour_file_is_one_line(stack, tmp_path: Path):
    up, _ = stack
    bad = tmp_path / "bad.toml"
    bad.write_text("[profile.x]\nseeks_per_min = -2\n")
    r = vodstack("load", "--steering", up.steering, "--titles", "long", "--players", "2", "--behaviour", str(bad),
                 "--no-live")
    assert r.returncode == 2 and r.stderr.strip().splitlines() == [
        "vodstack: error: bad.toml: profile 'x': seeks_per_min must be >= 0"], r.stderr
    r = vodstack("load", "--steering", up.steering, "--titles", "long", "--players", "2", "--behaviour",
                 str(tmp_path / "missing.toml"), "--no-live")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "missing.toml" in r.stderr


def test_the_shipped_behaviours_run(stack, tmp_path: Path):
    up, _ = stack
    r = vodstack("--log-level", "warning", "load", "--steering", up.steering, "--titles", "long", "--players", "12",
                 "--ramp", "2", "--speed", "20", "--networks", "none", "--behaviour", "default", "--workers", "1",
                 "--seed", "1", "--json", "--no-live", timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    doc = json.loads(r.stdout)
    assert doc["summary"]["finished"] == 12 and doc["summary"]["failed"] == 0
    assert sum(b["sessions"] for b in doc["summary"]["behaviours"].values()) == 12
