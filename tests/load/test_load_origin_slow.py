"""`vodstack load --chaos origin-slow:400ms@2s` against a real loopback `vodstack up` whose edges are
cold for the title: the delay goes through the supervisor's control endpoint to the origin, the
origin reports it and holds back its answers, the edges' fills from it get slower, and the event is
on the run's timeline as applied. Then the control endpoint clears it again.

A stack of its own (one region, two edges), so that nothing has filled the edges before.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import pytest

from load_helpers import ADMIN_KEY, REPO, UpStack, make_store, read_report, topology_text

pytestmark = pytest.mark.slow

TITLE = "gamma"
ORIGIN = "origin-us-east-1"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[UpStack, Path]]:
    root = tmp_path_factory.mktemp("load-origin-slow")
    store = make_store(root / "storage", {TITLE: 20.0})
    topo = root / "topology.toml"
    topo.write_text(topology_text(root / "data", store, regions={"us-east-1": []}))
    up = UpStack(topo, root / "up.log")
    try:
        yield up, topo
    finally:
        up.stop()


def http_json(url: str, method: str = "GET", key: str | None = ADMIN_KEY) -> tuple[int, Any]:
    req = urllib.request.Request(url, method=method, headers={"X-Admin-Key": key} if key else {})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def first_byte_s(url: str) -> float:
    start = time.perf_counter()
    with urllib.request.urlopen(url, timeout=10) as resp:
        resp.read(1)
    return time.perf_counter() - start


def slow_fills(edges: dict[str, str], origin: str) -> int:
    """Fills from ``origin`` that took over 0.25 s, summed over the edges (their /_/metrics)."""
    total = 0.0
    for url in edges.values():
        text = urllib.request.urlopen(f"{url}/_/metrics", timeout=10).read().decode()
        for labels, value in re.findall(r"^vodstack_edge_fill_seconds_(?:count|bucket)\{(.*?)\} (\S+)$", text, re.M):
            if origin not in labels:
                continue
            if 'le="' not in labels:
                total += float(value)
            elif 'le="0.25"' in labels:
                total -= float(value)
    return int(total)


def test_origin_slow_goes_through_the_control_endpoint_to_the_origin(stack, tmp_path: Path):
    up, topo = stack
    status, doc = http_json(f"{up.control}/_/control/status")
    origin = next(s["url"] for s in doc["servers"] if s["name"] == ORIGIN)
    assert http_json(f"{origin}/_/health", key=None)[1]["delay_ms"] == 0
    assert first_byte_s(f"{origin}/{TITLE}/master.m3u8") < 0.25

    out = tmp_path / "report"
    load = subprocess.Popen(
        [sys.executable, "-m", "vodstack", "--log-level", "warning", "load", "--steering", up.steering,
         "--titles", TITLE, "--players", "6", "--ramp", "8", "--workers", "1", "--speed", "4", "--networks", "4g",
         "--no-live", "--topology", str(topo), "--report", str(out), "--chaos", "origin-slow:400ms@2s"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen: list[int] = []  # the origin's own report of its delay, while the load runs
    try:
        while load.poll() is None:
            seen.append(http_json(f"{origin}/_/health", key=None)[1]["delay_ms"])
            time.sleep(0.1)
        stdout, stderr = load.communicate(timeout=60)
    finally:
        if load.poll() is None:
            load.kill()
    assert load.returncode == 0, stdout + stderr[-3000:]
    assert seen[0] == 0 and seen[-1] == 400 and 400 in seen, seen

    report = read_report(out)
    (event,) = report["chaos"]
    assert (event["action"], event["ok"], event["status"]) == ("origin-slow", True, 200), event
    assert event["detail"] == f"origin delay 400 ms on {ORIGIN}"
    assert 2.0 <= event["applied_at_s"] < 4.0
    assert "origin-slow" in (out / "index.html").read_text()
    assert report["summary"]["finished"] == 6
    # the viewers' edges felt it: fills from the origin took longer than 0.25 s after the event
    assert slow_fills(up.edges, origin) > 0
    assert first_byte_s(f"{origin}/{TITLE}/master.m3u8") >= 0.4

    # the control endpoint clears it (one origin by name), and refuses what it cannot do
    status, doc = http_json(f"{up.control}/_/control/origin-delay?ms=0&name={ORIGIN}", "POST")
    assert (status, doc) == (200, {"delay_ms": 0, "origins": [{"name": ORIGIN, "ok": True, "delay_ms": 0}]})
    assert http_json(f"{origin}/_/health", key=None)[1]["delay_ms"] == 0
    assert first_byte_s(f"{origin}/{TITLE}/master.m3u8") < 0.25
    assert http_json(f"{up.control}/_/control/origin-delay?ms=5", "POST", key=None)[0] == 403
    assert http_json(f"{up.control}/_/control/origin-delay?ms=-1", "POST")[0] == 400
    assert http_json(f"{up.control}/_/control/origin-delay?ms=5&name=edge-us-east-1a", "POST")[0] == 404
    # the origin itself takes the delay only from whoever holds the key
    assert http_json(f"{origin}/_/delay?ms=5", "POST", key="wrong")[0] == 403
