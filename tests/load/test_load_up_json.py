"""`vodstack load --chaos kill:...` right after `vodstack up`, with neither --topology nor --admin-key:
the running stack (control endpoint and admin key) is found from ``vodstack-data/run/up.json`` and
the topology `vodstack up` wrote next to it, as docs/load.md says; without an up.json the command
says so in one line before anything runs.

The stack is the smallest of the load tests (one region, two edges, its origin, steering) with one
synthetic 20 s title; the load runs from a folder whose ``vodstack-data`` is the stack's data dir.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest

from load_helpers import ADMIN_KEY, REPO, UpStack, make_store, read_report, topology_text

pytestmark = pytest.mark.slow

VICTIM = "edge-us-east-1a"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[UpStack, Path]]:
    root = tmp_path_factory.mktemp("load-up-json")
    store = make_store(root / "storage", {"alpha": 20.0})
    topo = root / "topology.toml"
    topo.write_text(topology_text(root / "vodstack-data", store, regions={"us-east-1": []}))
    up = UpStack(topo, root / "up.log")
    try:
        yield up, root
    finally:
        up.stop()


def vodstack_in(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m vodstack ...`` of this checkout, run from ``cwd`` (where its default ``vodstack-data`` is)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    return subprocess.run([sys.executable, "-m", "vodstack", "--log-level", "warning", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=180, env=env)


def servers(up: UpStack) -> dict[str, str]:
    req = urllib.request.Request(f"{up.control}/_/control/status", headers={"X-Admin-Key": ADMIN_KEY})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return {s["name"]: s["state"] for s in json.loads(resp.read())["servers"]}


def test_chaos_kill_finds_the_running_stack_from_up_json(stack):
    up, root = stack
    assert (root / "vodstack-data" / "run" / "up.json").is_file()
    assert servers(up)[VICTIM] == "running"
    out = root / "report"
    result = vodstack_in(root, "load", "--steering", up.steering, "--titles", "alpha", "--players", "4",
                         "--ramp", "2", "--workers", "1", "--speed", "10", "--networks", "4g", "--no-live",
                         "--chaos", f"kill:{VICTIM}@3s", "--report", str(out))
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    (kill,) = read_report(out)["chaos"]
    assert (kill["action"], kill["target"], kill["ok"], kill["status"]) == ("kill", VICTIM, True, 200), kill
    assert servers(up)[VICTIM] != "running"  # the chaos step took effect on the stack itself


def test_without_up_json_or_topology_the_error_is_one_line(tmp_path: Path):
    result = vodstack_in(tmp_path, "load", "--steering", "http://127.0.0.1:9", "--titles", "alpha",
                         "--players", "2", "--chaos", f"kill:{VICTIM}@3s", "--report", str(tmp_path / "r"))
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert lines[0].startswith(f"vodstack: error: chaos kill:{VICTIM}@3s needs the running stack")
    assert "vodstack-data/run/up.json" in lines[0] and "--topology FILE" in lines[0]
    assert not (tmp_path / "r").exists()
