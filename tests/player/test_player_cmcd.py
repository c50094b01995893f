"""CMCD from `vodstack play` to a real `vodstack edge`, and CMSD back (client/cmcd.py, edge/cmcd.py).

The edge logs every request's CMCD session id with the object type, buffer and bitrate; the query and
header modes say the same; `--cmsd-mb` keeps the player under the edge's max suggested bitrate.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from client.abr.snapshot import Decision
from client.cmcd import CmcdObject, CmcdReporter, SessionView, cap_to_max_bitrate, object_type, with_cmcd_query
from edge.tokens import sign_token
from httpsem.cmcd import parse
from player_helpers import REPO, Server

SECRET = "cmcd-test-secret"


def play(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "vodstack", "play", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO)


@pytest.fixture
def edge(origin_url, tmp_path):
    """A `vodstack edge` process over the player tests' origin, its access log in a file, CMSD capped."""
    def start(*extra: str) -> tuple[Server, Path]:
        log = tmp_path / f"edge{len(started)}.access.log"
        server = Server(f"edge{len(started)}", [
            "edge", "--name", f"e{len(started)}", "--origin", origin_url, "--port", "0", "--cache-dir",
            str(tmp_path / f"cache{len(started)}"), "--token-key", f"k1={SECRET}", "--access-log", str(log), *extra],
            tmp_path)
        started.append(server)
        return server, log

    started: list[Server] = []
    yield start
    for s in started:
        s.stop()


def master_url(edge_url: str) -> str:
    token = sign_token("k1", SECRET, "demo", time.time() + 600)
    return f"{edge_url}/t/{token}/demo/master.m3u8"


def log_lines(path: Path, sid: str, *, at_least: int, timeout_s: float = 10.0) -> list[str]:
    """The access-log lines of session ``sid`` once there are ``at_least`` (the edge flushes every 0.5 s)."""
    deadline = time.monotonic() + timeout_s
    while True:
        lines = [ln for ln in path.read_text().splitlines() if f" sid={sid} " in ln] if path.exists() else []
        if len(lines) >= at_least or time.monotonic() > deadline:
            return lines
        time.sleep(0.1)


@pytest.mark.parametrize("mode", ["query", "header"])
def test_the_edge_logs_every_request_of_the_session_with_its_cmcd(edge, tmp_path, mode):
    server, log = edge()
    report = tmp_path / "r.json"
    p = play(master_url(server.url), "--device", "laptop-chrome", "--network", "4g", "--speed", "8",
             "--duration", "16", "--cmcd", mode, "--report", str(report), "--quiet")
    assert p.returncode == 0, p.stderr
    doc = json.loads(report.read_text())
    sid, requests = doc["session_id"], doc["requests"]
    assert sid and len(requests) >= 8
    lines = log_lines(log, sid, at_least=len(requests))
    assert len(lines) == len(requests)  # every media request carried the session's id, and only those
    kinds = {re.search(r" ot=(\S+) ", ln).group(1) for ln in lines}
    assert {"m", "i", "v", "a"} <= kinds
    video = [ln for ln in lines if " ot=v " in ln]
    assert len(video) == len(doc["segments"])
    rates = {int(re.search(r" br=(\d+) ", ln).group(1)) for ln in video}
    assert rates <= {round(s["bitrate_bps"] / 1000) for s in doc["segments"]}
    assert " su=1 " in video[0]  # the first segment is needed for start-up
    assert all(re.search(r" mtp=\d+ ", ln) for ln in video[1:])  # measured once a segment has landed
    assert all(" bl=" in ln and " bl=-" not in ln for ln in video)
    assert "CMCD" not in log.read_text()  # never in the logged path: the cache key is the object's
    assert [r["ot"] for r in requests].count("v") == len(doc["segments"])


def test_cmcd_off_sends_none(edge, tmp_path):
    server, log = edge()
    report = tmp_path / "r.json"
    p = play(master_url(server.url), "--speed", "8", "--duration", "8", "--cmcd", "off", "--report", str(report),
             "--quiet")
    assert p.returncode == 0, p.stderr
    n = len(json.loads(report.read_text())["requests"])
    lines = log_lines(log, "-", at_least=n)
    assert len(lines) == n


def test_cmsd_max_bitrate_is_honoured_only_when_asked(edge, tmp_path):
    server, _ = edge("--cmsd-max-bitrate", "1200")
    runs = {}
    for honour in (False, True):
        report = tmp_path / f"r{honour}.json"
        args = ["--device", "tv-4k", "--network", "fiber", "--speed", "8", "--duration", "24", "--report", str(report),
                "--quiet", "--abr", "throughput"]
        p = play(master_url(server.url), *args, *(["--cmsd-mb"] if honour else []))
        assert p.returncode == 0, p.stderr
        runs[honour] = json.loads(report.read_text())
    ladder = [r["nominal_bps"] for r in runs[True]["tracks"]["ladder"]]
    free, capped = runs[False]["segments"], runs[True]["segments"]
    assert all(s["mb_bps"] == 1_200_000 for s in free + capped)  # the edge said so on every answer
    assert max(s["bitrate_bps"] for s in free) > 1_200_000  # fibre: without the hint it goes higher
    assert all(s["bitrate_bps"] <= 1_200_000 for s in capped[1:])  # the first decision came before any answer
    assert any("CMSD mb 1200 kbps" in s["reason"] for s in capped)
    assert min(ladder) <= 1_200_000 < max(ladder)


# ---------------------------------------------------------------------------------- the pure parts
def test_reporter_flags_starvation_once_and_startup_until_playing():
    view = SessionView(buffer_s=0.0, urgent=True, stalls=0, throughput_kbps=None, top_kbps=6000)
    r = CmcdReporter(mode="query", sid="s", cid="demo", view=lambda: view)
    r.sf = "h"
    first = r.data(CmcdObject(ot="v", br_kbps=800, d_ms=4000, nor="00002.m4s"), "http://e/v/00001.m4s")
    assert first.su and not first.bs and first.sf == "h" and first.tb_kbps == 6000
    view = SessionView(buffer_s=7.25, urgent=False, stalls=1, throughput_kbps=5123, top_kbps=6000)
    second, third = (r.data(None, "http://e/v/index.m3u8") for _ in range(2))
    assert second.bs and not third.bs and not second.su and second.ot == "m"
    assert parse(r.apply("http://e/a.m4s", {}, CmcdObject(ot="a"))[len("http://e/a.m4s?CMCD="):].replace("%2C", ",")
                 .replace("%3D", "=").replace("%22", '"')) == {
        "bl": 7300, "cid": "demo", "mtp": 5100, "ot": "a", "sf": "h", "sid": "s", "st": "v"}  # tb: video only
    playlist = r.data(None, "http://e/v/index.m3u8")
    assert playlist.bl_ms is None and playlist.tb_kbps is None  # bl only with a, v or av objects (CTA-5004)
    headers: dict[str, str] = {}
    header_mode = CmcdReporter(mode="header", sid="s", cid=None, view=lambda: view)
    assert header_mode.apply("http://e/a.m4s", headers, CmcdObject(ot="v", br_kbps=800)) == "http://e/a.m4s"
    assert set(headers) == {"CMCD-Request", "CMCD-Session", "CMCD-Status", "CMCD-Object"}


@pytest.mark.parametrize("url, ot", [("http://e/t/x/demo/master.m3u8", "m"), ("http://e/demo/manifest.mpd?a=1", "m"),
                                     ("http://e/v/init.mp4", "i"), ("http://e/s/00001.vtt", "c"),
                                     ("http://e/demo/title.json", "o"), ("http://e/v/00001.m4s", None)])
def test_object_type_from_urls(url, ot):
    assert object_type(url) == ot


def test_query_argument_is_appended_as_encodeURIComponent_would():
    assert with_cmcd_query("http://e/a.m4s", 'ot=v,sid="a b"') == "http://e/a.m4s?CMCD=ot%3Dv%2Csid%3D%22a%20b%22"
    assert with_cmcd_query("http://e/a.m4s?x=1", "su") == "http://e/a.m4s?x=1&CMCD=su"
    assert with_cmcd_query("http://e/a.m4s", "") == "http://e/a.m4s"


@pytest.mark.parametrize("index, mb, expected", [(3, None, 3), (3, 5_000_000, 3), (3, 1_500_000, 1), (3, 100, 0),
                                                 (0, 100, 0)])
def test_cap_to_max_bitrate(index, mb, expected):
    ladder = [400_000, 1_200_000, 2_500_000, 5_000_000]
    got = cap_to_max_bitrate(Decision(index, "abr"), ladder, mb)
    assert got.index == expected
    assert ("CMSD mb" in got.reason) == (expected != index)
