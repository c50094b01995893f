"""``vodstack play URL`` and ``vodstack load --url/--catalog`` on streams none of us wrote (ffmpeg's HLS
muxer: MPEG-TS, fMP4 with byte ranges and an audio group, AES-128; its DASH muxer), served by a plain
static server; and the catalogue file's forms."""
from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from foreign_streams import StaticServer, make_foreign_streams
from vodstack.commands.load import _catalog
from vodstack.errors import UsageError

REPO = Path(__file__).resolve().parents[2]


def vodstack(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "vodstack", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def foreign(tmp_path_factory):
    root = tmp_path_factory.mktemp("foreign")
    streams = make_foreign_streams(root)
    with StaticServer(root) as server:
        yield server.url, streams, root


@pytest.mark.parametrize("kind", ["ts", "fmp4", "aes", "groups", "dash"])
def test_play_plays_a_foreign_stream_to_its_end(foreign, kind, tmp_path):
    url, streams, _ = foreign
    report = tmp_path / "r.json"
    r = vodstack("play", f"{url}/{streams[kind]}", "--network", "none", "--speed", "20", "--quiet",
                 "--report", str(report))
    assert r.returncode == 0, r.stderr[-2000:]
    doc = json.loads(report.read_text())
    assert doc["ok"] and doc["error"] is None
    assert doc["played_s"] == pytest.approx(6.0, abs=0.05)
    assert len(doc["segments"]) == 3
    paths = [req["url"].split("?")[0].removeprefix(url) for req in doc["requests"]]
    if kind == "aes":  # a media playlist as the target: one rung; its key fetched once, beside the first segment
        assert [p for p in paths if p.endswith("/enc.key")] == ["/enc.key"]
        assert doc["bytes"]["keys"] == 16
    if kind == "fmp4":  # one file per rendition, asked for by byte range; audio from its own group
        ranged = [req for req in doc["requests"] if req["url"].split("?")[0].endswith(".m4s")]
        assert ranged and all(req["range"] for req in ranged)
        assert any(p.endswith("/f_2.m4s") for p in paths)
    if kind == "groups":  # each audio segment from the group of a video variant asked for the same segment
        group_of = {"2": "0", "3": "1"}
        names = [p.rsplit("/", 1)[1] for p in paths]
        audio = [n for n in names if n.startswith(("g_2_0", "g_3_0"))]
        assert len(audio) >= 3
        for n in audio:
            assert f"g_{group_of[n[2]]}_{n[4:]}" in names, (n, names)


def test_load_plays_a_weighted_catalogue_of_foreign_streams(foreign, tmp_path):
    url, streams, _ = foreign
    catalog = tmp_path / "catalog.txt"
    catalog.write_text("# ffmpeg's streams\n" + "\n".join(
        f"{url}/{streams[k]} {w}" for k, w in (("ts", 4), ("fmp4", 2), ("aes", 1), ("groups", 1), ("dash", 1)))
        + "\n")
    report = tmp_path / "report"
    r = vodstack("load", "--catalog", str(catalog), "--players", "60", "--ramp", "6", "--speed", "10",
                 "--networks", "none", "--workers", "2", "--no-live", "--json", "--report", str(report))
    assert r.returncode == 0, r.stderr[-2000:]
    summary = json.loads(r.stdout)["summary"]
    assert summary["sessions"] == 60 and summary["finished"] == 60 and summary["failed"] == 0
    doc = json.loads((report / "report.json").read_text())
    by_title: dict[str, int] = {}
    for s in doc["sessions"]:
        by_title[s["title"]] = by_title.get(s["title"], 0) + 1
    assert set(by_title) == {f"{url}/{v}" for v in streams.values()}
    assert by_title[f"{url}/{streams['ts']}"] > by_title[f"{url}/{streams['aes']}"]  # weight 4 against 1
    assert {s["format"] for s in doc["sessions"]} == {"hls", "dash"}
    assert doc["config"]["steering_url"] is None and doc["config"]["title_weights"] == [4.0, 2.0, 1.0, 1.0, 1.0]


def test_load_url_refuses_what_it_cannot_play(foreign):
    url, streams, _ = foreign
    cases = [(["--url", f"{url}/missing.m3u8"], "HTTP 404"),
             (["--url", f"{url}/enc.key"], "neither an HLS playlist"),
             (["--url", "http://192.0.2.1/x.m3u8"], "not on loopback"),
             (["--url", f"{url}/{streams['ts']}", "--steering", "http://127.0.0.1:1"], "without --steering"),
             (["--titles", "demo"], "give --steering"),
             (["--url", f"{url}/{streams['ts']}", "--regions", "eu-west-1"], "needs a steering service")]
    for args, why in cases:
        r = vodstack("load", *args, "--players", "2", "--no-live", timeout=60)
        assert r.returncode != 0 and why in r.stderr, (args, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr


@pytest.mark.parametrize("text, names, weights", [
    ("a\nb # second\n\n# c\n", ("a", "b"), None),
    ("http://h/x.m3u8#frag 2\nhttp://h/y.mpd 0.5\n", ("http://h/x.m3u8#frag", "http://h/y.mpd"), (2.0, 0.5)),
    ('["a", "b"]', ("a", "b"), None),
    ('[["a", 3], ["b", 1]]', ("a", "b"), (3.0, 1.0)),
])
def test_catalogue_forms(tmp_path, text, names, weights):
    path = tmp_path / "c.txt"
    path.write_text(text)
    assert _catalog(str(path)) == (names, weights)


@pytest.mark.parametrize("text, why", [
    ("a 1\nb\n", "on every line or on none"), ("a x\n", "not a number"), ("a 0\n", "must be > 0"),
    ("a 1 2\n", "expected 'NAME \\[WEIGHT\\]'"), ("a\na\n", "listed twice"), ("# nothing\n", "no titles"),
])
def test_catalogue_errors(tmp_path, text, why):
    path = tmp_path / "c.txt"
    path.write_text(text)
    with pytest.raises(UsageError, match=why):
        _catalog(str(path))


def test_load_verify_fraction_decodes_a_share_of_sessions_and_counts_a_corrupted_segment(foreign, tmp_path):
    url, streams, root = foreign
    bad = root / "bad"
    if not bad.exists():  # the TS stream with segment 1 of both rungs overwritten mid-file
        bad.mkdir()
        for f in root.glob("ts_*"):
            shutil.copy(f, bad / f.name)
        shutil.copy(root / "master.m3u8", bad / "master.m3u8")
        noise = random.Random(3).randbytes(4096)
        for v in (0, 1):
            seg = bad / f"ts_{v}_001.ts"
            data = bytearray(seg.read_bytes())
            data[len(data) // 2:len(data) // 2 + len(noise)] = noise
            seg.write_bytes(bytes(data))
    report = tmp_path / "report"
    r = vodstack("load", "--url", f"{url}/{streams['fmp4']},{url}/bad/master.m3u8", "--popularity", "uniform",
                 "--players", "24", "--ramp", "2", "--speed", "10", "--networks", "none", "--workers", "2",
                 "--verify-fraction", "0.5", "--seed", "5", "--no-live", "--slo", "media_errors=0",
                 "--report", str(report))
    assert r.returncode == 3, r.stderr[-2000:]  # the SLO media_errors=0 is missed, named on stderr
    assert "media_errors" in r.stderr
    doc = json.loads((report / "report.json").read_text())
    sessions = doc["sessions"]
    assert all(s["state"] == "ok" for s in sessions)  # a media error is reported, not a failed playback
    verifying = [s for s in sessions if s.get("verify")]
    assert 0 < len(verifying) < len(sessions)
    assert doc["summary"]["verify"]["sessions"] == len(verifying)
    for s in verifying:
        assert s["verify"]["segments_checked"] >= 3
        broken = s["title"].endswith("/bad/master.m3u8")
        assert (s["verify"]["errors"] > 0) == broken, s["verify"]
        if broken:
            assert all(e["url"].startswith(f"{url}/bad/ts_") and e["url"].endswith("_001.ts")
                       for e in s["verify"]["media_errors"])
    assert doc["summary"]["verify"]["sessions_with_errors"] == sum(
        1 for s in verifying if s["title"].endswith("/bad/master.m3u8"))
    # the plan's verify draw has its own RNG: the same seed without verification plays the same sessions
    r2 = vodstack("load", "--url", f"{url}/{streams['fmp4']},{url}/bad/master.m3u8", "--popularity", "uniform",
                  "--players", "24", "--ramp", "2", "--speed", "10", "--networks", "none", "--workers", "2",
                  "--seed", "5", "--no-live", "--report", str(tmp_path / "plain"))
    assert r2.returncode == 0, r2.stderr[-2000:]
    plain = json.loads((tmp_path / "plain" / "report.json").read_text())["sessions"]
    assert [(s["title"], s["device"]) for s in plain] == [(s["title"], s["device"]) for s in sessions]
    assert not any(s.get("verify") for s in plain)
