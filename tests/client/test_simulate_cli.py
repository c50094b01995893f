"""``vodstack simulate`` as a user runs it: a subprocess, its table, its JSON, its errors."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from vodstack.sample import build_synthetic_title

REPO_ROOT = Path(__file__).resolve().parents[2]


def simulate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "vodstack", "simulate", *args], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture
def manifest(traces_dir: Path) -> str:
    return str(traces_dir / "pensieve_video" / "video_chunk_sizes.csv")


@pytest.fixture
def two_traces(traces_dir: Path) -> list[str]:
    return [str(traces_dir / "pensieve_fcc" / "trace_866_http---www.amazon.com"),
            str(traces_dir / "pensieve_hsdpa" / "bus.ljansbakken-oslo-report.2010-09-28_1407CEST.log")]


def test_prints_a_table_per_algorithm(manifest: str, two_traces: list[str]) -> None:
    r = simulate("--manifest", manifest, "--traces", *two_traces, "--abr", "all", "--optimal", "--workers", "1")
    assert r.returncode == 0, r.stderr
    for name in ("throughput", "bba", "bola", "dynamic", "mpc", "horizon", "optimal"):
        assert name in r.stdout
    assert "QoE_lin" in r.stdout and "2 traces" in r.stdout


def test_json_parses_and_per_trace(manifest: str, two_traces: list[str]) -> None:
    r = simulate("--manifest", manifest, "--traces", *two_traces, "--abr", "default,mpc", "--json",
                 "--per-trace", "--workers", "1")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["traces"] == 2 and out["setup"] == "pensieve"
    assert [a["abr"] for a in out["algorithms"]] == ["default", "mpc"]
    assert {"qoe_lin", "avg_bitrate_kbps", "rebuffer_s", "rebuffer_ratio", "switches", "startup_s"} <= set(out["algorithms"][0])
    assert len(out["per_trace"]) == 4


def test_sabre_setup_on_sabre_files(traces_dir: Path) -> None:
    r = simulate("--manifest", str(traces_dir / "sabre" / "bbb.json"), "--traces",
                 str(traces_dir / "sabre" / "network.json"), "--setup", "sabre", "--json", "--abr", "bola")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["algorithms"][0]["abr"] == "bola"


def test_a_dash_mpd_simulates_as_its_title_json(two_traces: list[str], tmp_path: Path) -> None:
    build_synthetic_title(tmp_path, "demo", duration_s=40.0)
    runs = {name: simulate("--manifest", str(tmp_path / "demo" / name), "--traces", *two_traces, "--json",
                           "--abr", "default,bola", "--workers", "1") for name in ("manifest.mpd", "title.json")}
    for r in runs.values():
        assert r.returncode == 0, r.stderr
    mpd, title = (json.loads(runs[n].stdout) for n in ("manifest.mpd", "title.json"))
    assert mpd["segments"] == title["segments"] == 10
    assert mpd["algorithms"] == title["algorithms"]
    (tmp_path / "demo" / "title.json").unlink()
    r = simulate("--manifest", str(tmp_path / "demo" / "manifest.mpd"), "--traces", *two_traces)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "no title.json beside it" in r.stderr, r.stderr


@pytest.mark.parametrize("case", ["missing manifest", "missing traces", "bad trace", "unknown abr"])
def test_bad_input_is_one_line_and_exit_2(case: str, manifest: str, two_traces: list[str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.log"
    bad.write_text("0.0\t1.0\nnot a number\n")
    args = {
        "missing manifest": ["--manifest", str(tmp_path / "nope.csv"), "--traces", *two_traces],
        "missing traces": ["--manifest", manifest, "--traces", str(tmp_path / "none")],
        "bad trace": ["--manifest", manifest, "--traces", str(bad)],
        "unknown abr": ["--manifest", manifest, "--traces", *two_traces, "--abr", "pensieve-rl"],
    }[case]
    r = simulate(*args)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vodstack: error:"), r.stderr
    assert "Traceback" not in r.stderr
    if case == "unknown abr":
        assert "valid:" in lines[0] and "default" in lines[0]
    if case == "bad trace":
        assert str(bad) in lines[0]


def test_cmsd_mb_models_an_edge_hint(manifest: str, two_traces: list[str]) -> None:
    args = ["--manifest", manifest, "--traces", two_traces[0], "--abr", "throughput", "--json", "--workers", "1"]
    free, capped = (json.loads(simulate(*args, *extra).stdout)["algorithms"][0]
                    for extra in ([], ["--cmsd-mb", "300"]))
    # every chunk after the first at the 300 kbps rung (the first decision comes before any answer)
    assert capped["avg_bitrate_kbps"] < 320 < free["avg_bitrate_kbps"]
    bad = simulate(*args, "--cmsd-mb", "fast@10")
    assert bad.returncode == 2 and "--cmsd-mb" in bad.stderr and "Traceback" not in bad.stderr
