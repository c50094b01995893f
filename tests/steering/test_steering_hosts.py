"""A topology across hosts: each region in a network namespace of its own (its own address on a veth
pair into one bridge, made and removed here), the steering service in the root namespace, each share
started by its own ``vodstack up --only ...`` pointed at the others. A viewer plays through steering
from the root namespace, both edges of its region are killed mid-session, and it plays on from
another region's namespace: nothing assumes loopback. Needs root and ``ip`` (skipped without them,
never under CI)."""
from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest

from tests.procs import REPO
from vodstack.sample import build_synthetic_title

pytestmark = pytest.mark.slow
REGIONS = ("us-east-1", "us-west-2", "eu-west-1")
NET = "10.213.77"


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)


@pytest.fixture
def namespaces() -> Iterator[dict[str, str]]:
    """region -> namespace name, each with address {NET}.1{i}; the bridge (the root's side) is {NET}.1."""
    if os.geteuid() != 0 or not shutil.which("ip"):
        if os.environ.get("CI"):
            pytest.fail("the multi-host test needs root and iproute2 under CI")
        pytest.skip("needs root and iproute2 (ip netns)")
    tag = secrets.token_hex(2)
    bridge = f"vsbr{tag}"
    made: list[str] = []
    try:
        try:
            _ip("link", "add", bridge, "type", "bridge")
        except subprocess.CalledProcessError as e:
            if os.environ.get("CI"):
                raise
            pytest.skip(f"cannot make a bridge here: {e.stderr.strip()}")
        _ip("addr", "add", f"{NET}.1/24", "dev", bridge)
        _ip("link", "set", bridge, "up")
        out = {}
        for i, region in enumerate(REGIONS):
            ns, host_end, ns_end = f"vs{tag}{i}", f"vs{tag}h{i}", f"vs{tag}n{i}"
            _ip("netns", "add", ns)
            made.append(ns)
            _ip("-n", ns, "link", "set", "lo", "up")
            _ip("link", "add", host_end, "type", "veth", "peer", "name", ns_end)
            _ip("link", "set", ns_end, "netns", ns)
            _ip("link", "set", host_end, "master", bridge, "up")
            _ip("-n", ns, "addr", "add", f"{NET}.1{i}/24", "dev", ns_end)
            _ip("-n", ns, "link", "set", ns_end, "up")
            out[region] = ns
        yield out
    finally:
        for ns in made:
            _ip("netns", "del", ns, check=False)
        _ip("link", "del", bridge, check=False)


def topology(tmp: Path, storage: Path) -> str:
    text = (f'[stack]\ndata_dir = "{tmp}/data"\nstorage = "{storage}"\ncontrol_port = 0\n'
            'heartbeat_interval_s = 0.5\nready_timeout_s = 60\n'
            '[keys]\nactive = "k1"\n[keys.secrets]\nk1 = "s1"\n'
            f'[steering]\nhost = "{NET}.1"\nport = 18400\nadmin_key = "adm"\nheartbeat_timeout_s = 2.0\n'
            'steering_ttl_s = 1\n')
    for i, region in enumerate(REGIONS):
        host = f"{NET}.1{i}"
        pref = [r for r in REGIONS if r != region]
        text += (f'[regions.{region}]\npreference = ["{pref[0]}", "{pref[1]}"]\n'
                 f'origin = {{ name = "origin-{region}", host = "{host}", port = 18300 }}\n')
        for c, port in (("a", 18311), ("b", 18312)):
            other = "b" if c == "a" else "a"
            text += (f'[[regions.{region}.edges]]\nname = "edge-{region}{c}"\nhost = "{host}"\nport = {port}\n'
                     f'ram_mb = 16\ndisk_mb = 64\npeers = ["edge-{region}{other}"]\n')
    return text  # every server on port 183xx of its own host: the same ports in every namespace


class Share:
    """One ``vodstack up --only ...`` (in a namespace, or the root's)."""

    def __init__(self, topo: Path, only: str, data_dir: Path, ns: str | None, log: Path) -> None:
        self.ns = ns
        prefix = ["ip", "netns", "exec", ns] if ns else []
        self.argv_base = [*prefix, sys.executable, "-m", "vodstack", "--log-level", "warning", "up", str(topo),
                          "--data-dir", str(data_dir)]
        self.log = log
        self.proc = subprocess.Popen([*self.argv_base, "--only", only], cwd=REPO, text=True,
                                     env=dict(os.environ, PYTHONPATH=str(REPO)),
                                     stdout=open(log, "w"), stderr=subprocess.STDOUT)

    def wait_ready(self, timeout_s: float = 120) -> None:
        deadline = time.monotonic() + timeout_s
        while "every server is ready" not in self.log.read_text():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"share did not start:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.2)

    def kill(self, name: str) -> str:
        out = subprocess.run([*self.argv_base, "--kill", name], cwd=REPO, capture_output=True, text=True,
                             env=dict(os.environ, PYTHONPATH=str(REPO)), timeout=60)
        assert out.returncode == 0, out.stderr
        return out.stdout

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


async def test_three_regions_in_three_namespaces_play_and_fail_over(namespaces, tmp_path: Path):
    storage = tmp_path / "storage"
    build_synthetic_title(storage, "long", duration_s=60.0, segment_s=2.0)  # longer than the player's buffer
    topo = tmp_path / "topology.toml"
    topo.write_text(topology(tmp_path, storage))
    shares: dict[str, Share] = {}
    try:
        shares["steering"] = Share(topo, "steering", tmp_path / "d-steering", None, tmp_path / "steering.log")
        shares["steering"].wait_ready()
        for region, ns in namespaces.items():
            shares[region] = Share(topo, region, tmp_path / f"d-{region}", ns, tmp_path / f"{region}.log")
        for region in REGIONS:
            shares[region].wait_ready()  # its edges are in rotation at the steering service across the bridge

        steering = f"http://{NET}.1:18400"
        with urllib.request.urlopen(f"{steering}/play/long?device=laptop-chrome&region=eu-west-1&session=s1",
                                    timeout=10) as r:
            doc = json.loads(r.read())
        urls = {p["url"] for p in doc["pathways"]}
        assert urls and all(u.startswith(f"http://{NET}.1") for u in urls), urls  # no loopback anywhere
        assert {u.rsplit(":", 1)[0] for u in urls} == {f"http://{NET}.1{i}" for i in range(3)}

        eu_edges = [f"http://{NET}.1{REGIONS.index('eu-west-1')}:{port}" for port in (18311, 18312)]

        def served() -> int:  # requests eu-west-1's edges answered, across the bridge
            total = 0
            for url in eu_edges:
                with urllib.request.urlopen(f"{url}/_/health", timeout=5) as r:
                    total += int(json.loads(r.read())["requests"])
            return total

        before = served()
        play = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "vodstack", "--log-level", "warning", "play", "long", "--steering", steering,
            "--region", "eu-west-1", "--json", "--quiet", cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        for _ in range(600):  # under way, served from eu-west-1's namespace: its first segments are out
            if await asyncio.to_thread(served) >= before + 3 or play.returncode is not None:
                break
            await asyncio.sleep(0.05)
        for edge in ("edge-eu-west-1a", "edge-eu-west-1b"):  # the viewer's whole region goes
            assert "killed" in await asyncio.to_thread(shares["eu-west-1"].kill, edge)
        out, err = await asyncio.wait_for(play.communicate(), 180)
        assert play.returncode == 0, err.decode()[-3000:]
        report = json.loads(out)
        assert report["ok"], report["error"]
        served = {s["pathway"] for s in report["segments"]}
        assert any(p.startswith("edge-eu-west-1") for p in served), served
        assert any(not p.startswith("edge-eu-west-1") for p in served), served  # played on from another host
        assert report["failovers"], report["failovers"]
    finally:
        for share in reversed(list(shares.values())):
            share.stop()
