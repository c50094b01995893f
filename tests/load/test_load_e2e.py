"""`vodstack load` against a real loopback `vodstack up` (2 regions x 2 edges, origins, steering) with
synthetic 20 s titles: counts and merged percentiles, an edge killed mid-run, an SLO missed, the
report files, Ctrl-C with a partial report, and bad input refused in one line before any load.

One stack serves the whole module (the kill test restarts its edge through the same schedule).
Every run compresses time 10x: a 20 s title plays in about 2 s of wall-clock time.
"""
from __future__ import annotations

import json
import logging
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Iterator

import pytest

from client.load.plan import PlanInputs, plan_sessions
from client.load.specs import MixEntry, parse_mix, parse_popularity
from client.load.summary import percentile
from client.traces import SHIPPED_TRACES_DIR
from vodstack.cli import main as vodstack_main

from load_helpers import ADMIN_KEY, REPO, UpStack, make_store, read_report, topology_text, vodstack

pytestmark = pytest.mark.slow

TITLES = {"alpha": 20.0, "beta": 20.0}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[UpStack, Path]]:
    root = tmp_path_factory.mktemp("load-stack")
    store = make_store(root / "storage", TITLES)
    make_store(store, {"hls-only": 10.0})  # a title published before manifest.mpd existed
    (store / "hls-only" / "manifest.mpd").unlink()
    topo = root / "topology.toml"
    topo.write_text(topology_text(root / "data", store))
    up = UpStack(topo, root / "up.log")
    try:
        yield up, topo
    finally:
        up.stop()


_SHARED_HSDPA = REPO.parent / "shared" / "traces" / "pensieve_hsdpa"
#: real traces: the development set when it is beside the repo, else the few shipped in the package
TRACES = _SHARED_HSDPA if _SHARED_HSDPA.is_dir() else SHIPPED_TRACES_DIR / "pensieve_hsdpa"


def load_args(up: UpStack, *extra: str, titles: bool = True) -> list[str]:
    catalog = ["--titles", ",".join(TITLES)] if titles else []
    return ["--log-level", "warning", "load", "--steering", up.steering, *catalog,
            "--speed", "10", "--networks", "4g:0.7,3g:0.3", "--no-live", *extra]


def test_fifty_sessions_counts_and_merged_percentiles(stack, tmp_path: Path):
    up, _ = stack
    out = tmp_path / "report"
    result = vodstack(*load_args(up, "--players", "50", "--ramp", "10", "--workers", "2", "--seed", "5",
                                 "--report", str(out), "--json", "--slo", "failed=0"))
    assert result.returncode == 0, result.stderr[-3000:]
    printed = json.loads(result.stdout)
    report = read_report(out)
    s = report["summary"]
    counts = (s["planned"], s["sessions"], s["finished"], s["failed"], s["cut"], s["not_started"])
    assert counts == (50, 50, 50, 0, 0, 0)
    sessions = report["sessions"]
    assert [x["index"] for x in sessions] == list(range(50))
    assert {x["worker"] for x in sessions} == {0, 1}  # merged from both workers
    # the percentiles are over the merged per-session values, not averaged per worker
    startups = [x["startup_s"] for x in sessions]
    assert s["startup_p50_s"] == round(percentile(startups, 50), 4)
    assert s["startup_p95_s"] == round(percentile(startups, 95), 4)
    assert printed["summary"] == s and printed["slos"][0]["missed"] is False
    # the sessions played are the ones planned, device, network, region and title alike
    plan = plan_sessions(PlanInputs(
        players=50, titles=tuple(TITLES), devices=parse_mix("iphone:0.5,tv-4k:0.2,laptop-chrome:0.3", what="d"),
        networks=parse_mix("4g:0.7,3g:0.3", what="n"),
        regions=tuple(MixEntry(r, w) for r, w in report["regions"].items()), popularity=parse_popularity("zipf:0.9"),
        ramp_s=10.0, workers=2), seed=5)
    assert [(p.device, p.network, p.region, p.title) for p in plan] == \
        [(x["device"], x["network"], x["region"], x["title"]) for x in sessions]
    assert all(x["played_s"] == pytest.approx(20.0, abs=0.01) and x["segments"] == 10 for x in sessions)
    # no --formats: each device asks for its own first format (the TV plays DASH)
    assert {(x["device"], x["format"]) for x in sessions} <= {("tv-4k", "dash"), ("iphone", "hls"),
                                                              ("laptop-chrome", "hls")}
    assert s["sessions_by_format"] == dict(sorted(Counter(x["format"] for x in sessions).items()))
    assert set(s["sessions_by_format"]) == {"dash", "hls"}
    assert sum(x["bytes"] for x in sessions) == s["bytes"] > 0
    # the timeline saw the sessions and the edges were scraped
    assert max(p["active"] for p in report["timeline"]) > 0 and report["timeline"][-1]["finished"] == 50
    assert {p["edge"] for p in report["edges"]["series"]} == set(up.edges)
    served = [p for p in report["edges"]["series"] if p.get("served_bps")]
    assert served, "no edge served anything according to its metrics"
    for name in ("report.json", "index.html", "timeline.png", "startup_cdf.png", "bitrate.png", "edges.png"):
        assert (out / name).stat().st_size > 0, name
    assert report["resources"]["rss_per_session_bytes"] > 0 and report["resources"]["cpu_per_session"] > 0


def test_a_format_mix_plays_hls_and_dash_from_the_same_stack(stack, tmp_path: Path):
    up, _ = stack
    out = tmp_path / "report"
    result = vodstack(*load_args(up, "--players", "24", "--ramp", "4", "--workers", "2", "--seed", "3",
                                 "--devices", "laptop-chrome:0.75,iphone:0.25", "--formats", "hls:0.5,dash:0.5",
                                 "--report", str(out), "--slo", "failed=0"))
    assert result.returncode == 0, result.stderr[-3000:]
    report = read_report(out)
    sessions, s = report["sessions"], report["summary"]
    assert s["finished"] == 24 and s["failed"] == 0
    assert report["config"]["formats"] == {"hls": 0.5, "dash": 0.5}
    # what each session asked for is what it played; an iPhone plays no DASH, so it asked for HLS
    assert all(x["format"] == x["asked_format"] for x in sessions)
    assert {x["format"] for x in sessions if x["device"] == "iphone"} == {"hls"}
    assert {x["format"] for x in sessions if x["device"] == "laptop-chrome"} == {"hls", "dash"}
    assert all(x["played_s"] == pytest.approx(20.0, abs=0.01) and x["segments"] == 10 for x in sessions)
    assert s["sessions_by_format"] == dict(sorted(Counter(x["format"] for x in sessions).items()))
    assert "manifests: dash " in result.stdout and "Sessions by manifest format" in (out / "index.html").read_text()


def test_an_edge_killed_mid_run_means_failovers_not_failures(stack, tmp_path: Path):
    up, topo = stack
    out = tmp_path / "report"
    # control endpoint from {data_dir}/run/up.json and admin key from the topology file
    result = vodstack(*load_args(up, "--players", "30", "--ramp", "8", "--workers", "1", "--regions", "us-east-1",
                                 "--topology", str(topo), "--report", str(out), "--slo", "failed=0",
                                 "--chaos", "kill:edge-us-east-1a@7s,restart:edge-us-east-1a@16s"))
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    report = read_report(out)
    s = report["summary"]
    assert s["failed"] == 0 and s["finished"] == 30
    assert s["failovers"] > 0
    moved = [f for x in report["sessions"] for f in x["failovers"]]
    assert all(f["from"] == "edge-us-east-1a" for f in moved), moved
    assert all(f["at_s"] >= 7.0 for f in moved)
    kill, restart = report["chaos"]
    assert (kill["action"], kill["target"], kill["ok"]) == ("kill", "edge-us-east-1a", True)
    assert 7.0 <= kill["applied_at_s"] < 9.0 and restart["ok"] and restart["detail"] == "running"
    # on the edges' timeline the killed edge went down and came back
    states = [p["up"] for p in report["edges"]["series"] if p["edge"] == "edge-us-east-1a"]
    assert False in states and states[-1] is True
    assert "kill:edge-us-east-1a" in (out / "index.html").read_text()


def test_a_missed_slo_exits_non_zero_naming_it(stack, tmp_path: Path):
    up, _ = stack
    # and: titles from a catalogue file, networks from a folder of real traces (when shared/ is there)
    catalog = tmp_path / "catalog.txt"
    catalog.write_text("# most popular first\nbeta\nalpha  # the other one\n")
    networks = [f"trace:{TRACES}:1"] if TRACES.is_dir() else ["3g"]
    result = vodstack(*load_args(up, "--players", "6", "--workers", "1", "--ramp", "2", "--catalog", str(catalog),
                                 "--networks", *networks, "--report", str(tmp_path / "r"),
                                 "--slo", "startup_p95=1ms,failed=0,rebuffer_ratio=0.5", titles=False))
    assert result.returncode == 3, result.stderr[-3000:]
    sessions = read_report(tmp_path / "r")["sessions"]
    assert {x["title"] for x in sessions} <= {"alpha", "beta"} and len(sessions) == 6
    if TRACES.is_dir():
        assert all(x["network"].startswith("trace:") and x["network"].endswith(".log")
                   and x["network_mix"] == f"trace:{TRACES}" for x in sessions)
    missed = [line for line in result.stderr.splitlines() if line.startswith("SLO missed")]
    assert len(missed) == 1 and missed[0].startswith("SLO missed: startup_p95 = ") and missed[0].endswith("> 0.001 s")
    assert "startup_p95 <= 0.001" in result.stdout and "MISSED" in result.stdout


def test_ctrl_c_stops_cleanly_with_a_partial_report(stack, tmp_path: Path):
    up, _ = stack
    out = tmp_path / "report"
    proc = subprocess.Popen([sys.executable, "-m", "vodstack", *load_args(
        up, "--players", "20", "--ramp", "60", "--workers", "1", "--speed", "4", "--report", str(out))],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(6.0)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr[-3000:]
    report = read_report(out)
    s = report["summary"]
    assert report["interrupted"] and report["stopped_by"] == "interrupt"
    assert s["cut"] > 0 and s["not_started"] > 0 and s["sessions"] + s["not_started"] == 20
    assert (out / "index.html").exists()


@pytest.fixture
def keep_logging() -> Iterator[None]:
    """The CLI's main() sets up the root logger; give pytest's handlers back afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.parametrize("extra, needle", [
    (["--devices", "iphone:abc"], "devices: bad weight"),
    (["--networks", "5g:1"], "networks: unknown '5g'"),
    (["--chaos", "explode:edge-x@3s"], "chaos: unknown action 'explode'"),
    (["--slo", "speed=3"], "slo: unknown 'speed'"),
    (["--popularity", "pareto:1"], "popularity: unknown"),
    (["--titles", "alpha,nosuch"], "unknown title 'nosuch'"),
    (["--regions", "mars:1"], "regions: unknown 'mars'"),
    (["--networks", "trace:/nonexistent/traces:1"], "no such file or folder"),
    (["--chaos", "origin-slow:500ms@4s", "--control", "http://127.0.0.1:9"], "control endpoint http://127.0.0.1:9"),
    (["--chaos", "kill:edge-nope@1s", "--admin-key", ADMIN_KEY, "--control", "CONTROL"], "no server named 'edge-nope'"),
    (["--chaos", "evacuate:us-east-1@1s"], "needs the steering admin key"),
    (["--players", "0"], "--players must be >= 1"),
    (["--formats", "smooth:1"], "formats: unknown 'smooth'"),
    (["--titles", "alpha,hls-only", "--formats", "dash"], "no DASH manifest for title 'hls-only'"),
])
def test_bad_input_is_one_line_before_any_load(stack, tmp_path: Path, capsys, keep_logging, extra, needle):
    up, _ = stack
    extra = [up.control if x == "CONTROL" else x for x in extra]
    args = load_args(up, "--players", "5", "--workers", "1", "--report", str(tmp_path / "r"), *extra)
    if "--titles" in extra:
        i = args.index("--titles")
        del args[i:i + 2]
    code = vodstack_main(args)
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0 and len(err) == 1, err
    assert err[0].startswith("vodstack: error: ") and needle in err[0], err
    assert not (tmp_path / "r").exists()  # nothing ran


def test_an_unreachable_steering_service_is_one_line(tmp_path: Path):
    result = vodstack("load", "--steering", "http://127.0.0.1:9", "--titles", "a", "--players", "3",
                      "--report", str(tmp_path / "r"), timeout=60)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        result.stderr.strip()] and "steering service unreachable at http://127.0.0.1:9" in result.stderr
    assert not (tmp_path / "r").exists()
    remote = vodstack("load", "--steering", "http://192.0.2.1:80", "--titles", "a", "--players", "3", timeout=60)
    assert remote.returncode == 1 and "not on loopback" in remote.stderr and len(remote.stderr.splitlines()) == 1
