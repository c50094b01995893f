"""`vodstack load --scheduler`: the load workers as tasks on a real Dask cluster (``distributed.LocalCluster``,
two single-threaded worker processes, TCP on loopback) against a real loopback `vodstack up` (2 regions x 2
edges, synthetic 20 s titles, time compressed 10x as in test_load_e2e.py).

- the same seed and plan as with two local worker processes: the same sessions (ids, devices, networks,
  regions, titles, workers), all finished, the same per-device counts; each task ran on its own Dask worker
- the time limit on the Dask path: sessions cut and reported, never lost; the tasks stopped and said done
- failures are one line or a reported worker problem, bounded: an unreachable scheduler, a cluster with no
  workers, more --workers than the cluster has threads, a Dask worker killed mid-run
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any, Iterator

import pytest

from load_helpers import REPO, UpStack, make_store, read_report, topology_text, vodstack

distributed = pytest.importorskip("distributed")
import distributed.diagnostics.plugin  # noqa: E402

pytestmark = pytest.mark.slow

TITLES = {"alpha": 20.0, "beta": 20.0}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UpStack]:
    root = tmp_path_factory.mktemp("load-dask-stack")
    topo = root / "topology.toml"
    topo.write_text(topology_text(root / "data", make_store(root / "storage", TITLES)))
    up = UpStack(topo, root / "up.log")
    try:
        yield up
    finally:
        up.stop()


class Placement(distributed.diagnostics.plugin.SchedulerPlugin):
    """A scheduler plugin: which Dask worker each task started processing on."""

    name = "vodstack-test-placement"

    def __init__(self, scheduler: Any) -> None:
        self.scheduler = scheduler
        self.where: dict[str, str] = {}

    def transition(self, key: Any, start: str, finish: str, *args: Any, **kwargs: Any) -> None:
        ts = self.scheduler.tasks.get(key)
        if finish == "processing" and ts is not None and ts.processing_on is not None:
            self.where[str(key)] = ts.processing_on.address


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as c:
        c.wait_for_workers(2, timeout=60)
        yield c


def load_args(up: UpStack, *extra: str) -> list[str]:
    return ["--log-level", "warning", "load", "--steering", up.steering, "--titles", ",".join(TITLES),
            "--speed", "10", "--networks", "4g:0.7,3g:0.3", "--no-live", *extra]


def _load_tasks(placement: Placement) -> dict[str, str]:
    return {k: v for k, v in placement.where.items() if k.startswith("vodstack-load-")}


def test_the_dask_path_plays_the_plan_of_local_workers(stack, cluster, tmp_path: Path):
    plan = ("--players", "30", "--ramp", "6", "--seed", "7", "--json")
    local = vodstack(*load_args(stack, *plan, "--workers", "2", "--report", str(tmp_path / "local")))
    assert local.returncode == 0, local.stderr[-3000:]
    placement = Placement(cluster.scheduler)
    cluster.scheduler.add_plugin(placement)
    try:
        # no --workers: one load worker per Dask worker (2)
        dask = vodstack(*load_args(stack, *plan, "--scheduler", cluster.scheduler_address,
                                   "--report", str(tmp_path / "dask")))
    finally:
        cluster.scheduler.remove_plugin(name=placement.name)
    assert dask.returncode == 0, dask.stderr[-3000:]
    a, b = read_report(tmp_path / "local"), read_report(tmp_path / "dask")
    assert b["config"]["scheduler"] == cluster.scheduler_address and b["config"]["workers"] == 2
    assert b["worker_problems"] == [] and json.loads(dask.stdout)["worker_problems"] == []
    # each load worker was one task, on its own Dask worker
    where = _load_tasks(placement)
    assert len(where) == 2 and set(where.values()) == set(cluster.scheduler.workers), where
    # the merged counts and the sessions themselves are the local run's. Bytes are not compared: the
    # ABR picks rungs from measured throughput, which differs between any two runs.
    keys = ("planned", "sessions", "finished", "failed", "cut", "not_started", "sessions_by_format")
    assert {k: b["summary"][k] for k in keys} == {k: a["summary"][k] for k in keys}
    assert b["summary"]["finished"] == 30
    rows = [(x["index"], x["session_id"], x["device"], x["network"], x["region"], x["title"], x["worker"],
             x["state"], x["segments"]) for x in a["sessions"]]
    assert [(x["index"], x["session_id"], x["device"], x["network"], x["region"], x["title"], x["worker"],
             x["state"], x["segments"]) for x in b["sessions"]] == rows
    assert all(x["played_s"] == pytest.approx(20.0, abs=0.01) for x in b["sessions"])
    assert Counter(x["device"] for x in b["sessions"]) == Counter(x["device"] for x in a["sessions"])
    assert {x["worker"] for x in b["sessions"]} == {0, 1}
    # the stats streamed while it ran: the timeline saw sessions playing, the generator's costs are there
    assert max(p["active"] for p in b["timeline"]) > 0 and b["timeline"][-1]["finished"] == 30
    assert set(b["resources"]["workers"]) == {"0", "1"} and b["resources"]["cpu_per_session"] > 0
    assert sum(x["bytes"] for x in b["sessions"]) == b["summary"]["bytes"] > 0


def test_the_time_limit_cuts_dask_sessions_and_loses_none(stack, cluster, tmp_path: Path):
    out = tmp_path / "r"
    r = vodstack(*load_args(stack, "--players", "20", "--ramp", "20", "--seed", "2", "--time-limit", "8",
                            "--scheduler", cluster.scheduler_address, "--loop", "asyncio", "--report", str(out)))
    assert r.returncode == 0, r.stderr[-3000:]
    report = read_report(out)
    s = report["summary"]
    assert report["stopped_by"] == "time-limit" and report["worker_problems"] == []
    # the sessions that had arrived were cut (a 20 s title cannot end by 8 s) and every one of them is in
    # the report; those not arrived yet never started
    assert s["cut"] > 0 and s["not_started"] > 0 and s["finished"] == 0
    assert s["sessions"] + s["not_started"] == 20 and s["cut"] == s["sessions"]
    indices = sorted(x["index"] for x in report["sessions"])
    assert indices == list(range(len(indices)))  # arrivals are in plan order: a prefix of the plan
    assert {x["worker"] for x in report["sessions"]} == {0, 1}
    assert any(x["played_s"] > 0 for x in report["sessions"])
    assert all(x["arrival_s"] <= 8.5 for x in report["sessions"])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_an_unreachable_scheduler_is_one_line(stack, tmp_path: Path):
    address = f"tcp://127.0.0.1:{_free_port()}"
    r = vodstack(*load_args(stack, "--players", "3", "--scheduler", address, "--report", str(tmp_path / "r")),
                 timeout=60)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 1 and len(lines) == 1, r.stderr
    assert lines[0].startswith(f"vodstack: error: cannot reach the Dask scheduler at {address}"), lines
    assert not (tmp_path / "r").exists()


def test_a_cluster_without_enough_workers_is_one_line(stack, cluster, tmp_path: Path):
    r = vodstack(*load_args(stack, "--players", "6", "--workers", "3", "--scheduler", cluster.scheduler_address),
                 timeout=60)
    assert r.returncode == 1 and r.stderr.strip().splitlines() == [
        f"vodstack: error: --workers 3: the Dask cluster at {cluster.scheduler_address} has 2 worker thread(s), "
        "and each load worker takes one"], r.stderr
    with distributed.LocalCluster(n_workers=0, processes=True, dashboard_address=None) as empty:
        r = vodstack(*load_args(stack, "--players", "3", "--scheduler", empty.scheduler_address), timeout=60)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 1 and len(lines) == 1, r.stderr
    assert f"the Dask cluster at {empty.scheduler_address} has no workers" in lines[0]


def _playing(client: Any, worker: int) -> bool:
    """Whether a stats message of load worker ``worker`` with active sessions went through the scheduler
    (the batches are events of the runner's topic: client/load/dask_workers.py)."""
    for events in client.get_events().values():
        for _, doc in events:
            if isinstance(doc, dict) and doc.get("vodstack_load") and doc.get("load_worker") == worker and any(
                    m.get("type") == "stats" and m.get("active", 0) > 0 for m in doc.get("messages", ())):
                return True
    return False


def test_a_dask_worker_killed_mid_run_is_a_reported_problem_not_a_hang(stack, tmp_path: Path):
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as c:
        c.wait_for_workers(2, timeout=60)
        placement = Placement(c.scheduler)
        c.scheduler.add_plugin(placement)
        pids = {w.worker_address: w.process.pid for w in c.workers.values()}
        out = tmp_path / "r"
        proc = subprocess.Popen([sys.executable, "-m", "vodstack", *load_args(
            stack, "--players", "20", "--ramp", "10", "--seed", "3", "--scheduler", c.scheduler_address,
            "--report", str(out))], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            with distributed.Client(c, set_as_default=False) as watcher:
                deadline = time.monotonic() + 60
                while not _playing(watcher, worker=0):  # into the run: load worker 0 has sessions playing
                    assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
                    time.sleep(0.05)
            victim = _load_tasks(placement)[min(_load_tasks(placement))]  # the Dask worker of load worker 0
            os.kill(pids[victim], signal.SIGKILL)
            stdout, stderr = proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert proc.returncode == 0, stderr[-3000:]
    report = read_report(out)
    problems = report["worker_problems"]
    assert len(problems) == 1 and problems[0].startswith(f"worker 0 (a Dask task on {victim})"), problems
    assert "left the cluster" in problems[0] and problems[0] in stderr
    # the other worker played all its sessions to their end
    ones = [x for x in report["sessions"] if x["worker"] == 1]
    assert len(ones) == 10 and all(x["state"] == "ok" for x in ones)
    assert report["summary"]["not_started"] == 20 - len(report["sessions"]) > 0
