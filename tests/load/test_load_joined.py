"""The joined report end to end: `vodstack load --report` and `vodstack play --report` against a real
loopback `vodstack up` whose edges append their access logs to DATA_DIR/logs/EDGE.access.log.

* Cold edges and a slow origin (``--chaos origin-slow:1500ms@0s``, 1 s segments: every fill takes longer
  than the media it brings): the sessions stall, and the joined section puts most stall seconds on
  ``fill`` (the edges' lines say miss/coalesced with most of their time spent upstream).
* Warm edges (prefilled), no chaos, a viewer link with long outages (a Sabre trace: 2 s at 4 Mb/s, 10 s
  at 20 kb/s): the sessions stall too, and none of it is put on ``fill``: it is the ``network``'s.
* `vodstack play --report --data-dir`: every request the session sent to an edge is matched to its line.

The assertions are on attribution by cause, never on exact stall counts or times.
"""
from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest

from load_helpers import ADMIN_KEY, UpStack, make_store, read_report, topology_text, vodstack

pytestmark = pytest.mark.slow

COLD, WARM = "cold", "warm"
P1203_KEYS = {"I11", "I13", "I23", "IGen"}  # the reference's examples/mode0.json


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[UpStack, Path]]:
    root = tmp_path_factory.mktemp("load-joined")
    store = make_store(root / "storage", {COLD: 8.0, WARM: 12.0}, segment_s=1.0)
    topo = root / "topology.toml"
    topo.write_text(topology_text(root / "data", store, regions={"us-east-1": []}))
    up = UpStack(topo, root / "up.log", log_level="info")  # info: the edges write their access logs
    try:
        yield up, topo
    finally:
        up.stop()


def post(url: str, body: dict | None = None) -> dict:
    req = urllib.request.Request(url, method="POST", data=json.dumps(body or {}).encode(),
                                 headers={"X-Admin-Key": ADMIN_KEY, "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


def prefill(up: UpStack, title: str, timeout_s: float = 60.0) -> None:
    """Fill ``title`` into every edge (``/_/prefill``) and wait, bounded, until each job is done."""
    for url in up.edges.values():
        job = post(f"{url}/_/prefill", {"titles": [title]})
        deadline = time.monotonic() + timeout_s
        while True:
            req = urllib.request.Request(f"{url}/_/prefill/{job['id']}", headers={"X-Admin-Key": ADMIN_KEY})
            with urllib.request.urlopen(req, timeout=10) as resp:
                state = json.loads(resp.read())
            if state["state"] in ("done", "failed") or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert (state["state"], state["objects_failed"]) == ("done", 0), state


def load(up: UpStack, topo: Path, out: Path, *extra: str) -> dict:
    result = vodstack("--log-level", "warning", "load", "--steering", up.steering, "--players", "4", "--ramp", "1",
                      "--workers", "1", "--no-live", "--topology", str(topo), "--report", str(out), *extra)
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    report = read_report(out)
    assert report["summary"]["finished"] == 4, report["summary"]
    assert "joined" in report, result.stdout
    return report


def test_stalls_on_slow_cold_fills_are_put_on_fill(stack, tmp_path: Path):
    up, topo = stack
    out = tmp_path / "report"
    try:
        report = load(up, topo, out, "--titles", COLD, "--speed", "1", "--networks", "4g",
                      "--chaos", "origin-slow:1500ms@0s", "--p1203", str(tmp_path / "p1203.jsonl"))
    finally:
        post(f"{up.control}/_/control/origin-delay?ms=0")
    joined = report["joined"]
    assert sorted(f["edge"] for f in joined["files"]) == sorted(up.edges)
    assert joined["note"] is None
    req = joined["requests"]
    assert req["client"] > 4 * 8 and req["matched"] == req["client"], req  # every request to an edge joined
    stalls = joined["stalls"]
    assert stalls["count"] > 0 and stalls["seconds"] > 1.0, stalls
    by_cause = stalls["by_cause"]
    assert by_cause["fill"]["share"] > 0.5, by_cause          # most stall seconds waited on fills
    assert by_cause["fill"]["seconds"] == max(v["seconds"] for v in by_cause.values())
    fills = [a for s in joined["sessions"] for a in s["stalls"] if a["cause"] == "fill"]
    assert all(a["waited_on"][0]["deciding"] and a["waited_on"][0]["edge"]["tier"] == "fill" for a in fills)
    hit = joined["hit_ratio"]
    assert set(hit["by_network"]) == {"4g"} and sum(r["fill_requests"] for r in hit["by_device"].values()) > 0
    html = (out / "index.html").read_text()
    assert "Where the stalls came from" in html and "stall_causes.png" in html and "Edge hit ratio by device" in html
    assert (out / "stall_causes.png").stat().st_size > 0
    inputs = [json.loads(line) for line in (tmp_path / "p1203.jsonl").read_text().splitlines()]
    assert len(inputs) == 4 and all(set(doc) == P1203_KEYS for doc in inputs)
    assert {doc["I13"]["streamId"] for doc in inputs} == {s["session_id"] for s in report["sessions"]}
    assert all(doc["I23"]["stalling"][0][0] == 0 and len(doc["I23"]["stalling"]) > 1 for doc in inputs)
    assert all("p1203" not in s for s in report["sessions"])  # in its own file, not in report.json


def test_warm_caches_without_chaos_put_no_stall_on_fill(stack, tmp_path: Path):
    up, topo = stack
    prefill(up, WARM)
    trace = tmp_path / "outages.json"
    trace.write_text(json.dumps([{"duration_ms": 2000, "bandwidth_kbps": 4000, "latency_ms": 20},
                                 {"duration_ms": 10000, "bandwidth_kbps": 20, "latency_ms": 20}]))
    report = load(up, topo, tmp_path / "report", "--titles", WARM, "--speed", "2", "--networks", f"trace:{trace}:1")
    joined = report["joined"]
    assert joined["requests"]["matched"] == joined["requests"]["client"]
    stalls = joined["stalls"]
    assert stalls["count"] > 0, report["summary"]
    assert stalls["by_cause"]["fill"] == {"count": 0, "seconds": 0.0, "share": 0.0}, stalls
    assert stalls["by_cause"]["network"]["share"] == 1.0, joined["sessions"]
    for r in joined["hit_ratio"]["by_device"].values():
        assert r["fill_requests"] == 0 and r["request_hit_ratio"] == 1.0, r


def test_play_report_joins_every_request_to_an_edge_line(stack, tmp_path: Path):
    up, topo = stack
    out = tmp_path / "play.json"
    data_dir = Path(topo.read_text().split('data_dir = "', 1)[1].split('"', 1)[0])
    result = vodstack("--log-level", "warning", "play", WARM, "--steering", up.steering, "--region", "us-east-1",
                      "--speed", "4", "--network", "wifi", "--quiet", "--report", str(out), "--data-dir", str(data_dir),
                      "--p1203", str(tmp_path / "p1203.jsonl"))
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    doc = json.loads(out.read_text())
    joined = doc["joined"]
    req = joined["requests"]
    to_edges = [r for r in doc["requests"] if "/t/" in r["url"]]
    assert req["client"] == len(to_edges) > 12 and req["matched"] == req["client"], req
    assert req["not_to_edges"] == len(doc["requests"]) - len(to_edges)  # the steering service's master
    assert joined["note"] is None and "joined:" in result.stdout
    (session,) = joined["sessions"]
    assert session["session_id"] == doc["session_id"]
    rows = session["segments"]
    assert len(rows) >= len(doc["segments"]) and all(r["edge"] is not None for r in rows)
    assert {r["index"] for r in rows if "index" in r} == {s["index"] for s in doc["segments"]}
    (p1203,) = [json.loads(x) for x in (tmp_path / "p1203.jsonl").read_text().splitlines()]
    assert set(p1203) == P1203_KEYS and len(p1203["I13"]["segments"]) == len(doc["segments"])
