"""Helpers of the load tests (a module with its own name, so no other folder's conftest shadows it).

    LOAD_LADDER     three small H.264 rungs (145, 730, 2000 kbps): cheap to move over loopback
    make_store      a storage folder with synthetic titles (``vodstack.sample.build_synthetic_title``:
                    sparse segment files of the right sizes, playlists written by ``manifests``)
    topology_text   a `vodstack up` topology: REGIONS, each with an origin and two edges, ports 0
    UpStack         ``vodstack up TOPOLOGY`` as a real process; ``.steering``, ``.control``,
                    ``.edges``; stopped with SIGTERM (its children go with it); ``log_level="info"``
                    for a stack whose edges write their access logs (``warning`` silences them)
    vodstack        run ``python -m vodstack ...`` and return the CompletedProcess
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from vodstack.sample import SYNTHETIC_LADDER, build_synthetic_title
from serverkit.workers import die_with_parent

REPO = Path(__file__).resolve().parents[2]
LOAD_LADDER = [r for r in SYNTHETIC_LADDER if r[0] in ("h264-234p", "h264-360p", "h264-540p")]
REGIONS = {"us-east-1": ["eu-west-1"], "eu-west-1": ["us-east-1"]}
ADMIN_KEY = "adm"


def make_store(root: Path, titles: dict[str, float], segment_s: float = 2.0) -> Path:
    """``{title: duration_s}`` -> a storage folder holding them (synthetic, sparse segments)."""
    for i, (title, duration_s) in enumerate(titles.items()):
        build_synthetic_title(root, title, duration_s=duration_s, segment_s=segment_s, languages=("en",),
                              ladder=LOAD_LADDER, seed=i + 1)
    return root


def topology_text(data_dir: Path, storage: Path, regions: dict[str, list[str]] = REGIONS) -> str:
    text = (f'[stack]\ndata_dir = "{data_dir}"\nstorage = "{storage}"\ncontrol_port = 0\n'
            'heartbeat_interval_s = 0.3\nready_timeout_s = 90\n'
            '[keys]\nactive = "k1"\n[keys.secrets]\nk1 = "s1"\n'
            f'[steering]\nport = 0\nadmin_key = "{ADMIN_KEY}"\nheartbeat_timeout_s = 1.0\nsteering_ttl_s = 2\n')
    for region, pref in regions.items():
        prefs = ", ".join(f'"{p}"' for p in pref)
        text += (f'[regions.{region}]\npreference = [{prefs}]\n'
                 f'origin = {{ name = "origin-{region}", port = 0 }}\n')
        for c in "ab":
            other = "b" if c == "a" else "a"
            text += (f'[[regions.{region}.edges]]\nname = "edge-{region}{c}"\nport = 0\nram_mb = 32\n'
                     f'disk_mb = 64\npeers = ["edge-{region}{other}"]\n')
    return text


class UpStack:
    """``vodstack up`` in its own process group; URLs read from its ready table."""

    def __init__(self, topology: Path, log_path: Path, timeout_s: float = 120.0, log_level: str = "warning") -> None:
        self.log_path = log_path
        self._out = open(log_path, "w+")
        self.proc = subprocess.Popen([sys.executable, "-m", "vodstack", "--log-level", log_level, "up",
                                      str(topology)], stdout=self._out, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True, cwd=REPO,
                                     preexec_fn=die_with_parent)  # its servers follow the test process
        deadline = time.monotonic() + timeout_s
        while "every server is ready" not in self.log():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"vodstack up did not get ready:\n{self.log()[-3000:]}")
            time.sleep(0.2)
        time.sleep(0.2)
        urls = dict(re.findall(r"^\s+(\S+)\s+(http://\S+)", self.log(), re.M))
        self.steering = urls["steering"]
        self.control = urls["control"]
        self.edges = {name: url for name, url in urls.items() if name.startswith("edge-")}

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self._out.close()


def vodstack(*args: str, timeout: float = 180, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "vodstack", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO, env={**os.environ, **(env or {})})


def read_report(folder: Path) -> dict:
    return json.loads((folder / "report.json").read_text())
