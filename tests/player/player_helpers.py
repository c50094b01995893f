"""Helpers of the player tests (a module with its own name, so no other folder's conftest shadows it).

    Server          one ``vodstack ...`` process (own process group, logs in files, URL from the
                    "listening on" line).
    free_port       a port nothing listens on.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.procs import LISTENING, Server, free_port  # noqa: F401 - re-exported

REPO = Path(__file__).resolve().parents[2]

TOPOLOGY = """[stack]
data_dir = "{data}"
storage = "{storage}"
control_port = 0
heartbeat_interval_s = 0.5
ready_timeout_s = 90
[keys]
active = "k1"
[keys.secrets]
k1 = "player-test-secret"
[steering]
port = 0
admin_key = "adm"
heartbeat_timeout_s = 1.5
steering_ttl_s = 2
[regions.us-east-1]
preference = ["eu-west-1"]
origin = {{ name = "origin-us-east-1", port = 0 }}
[[regions.us-east-1.edges]]
name = "edge-us-east-1a"
port = 0
ram_mb = 64
disk_mb = 512
peers = ["edge-us-east-1b"]
[[regions.us-east-1.edges]]
name = "edge-us-east-1b"
port = 0
ram_mb = 64
disk_mb = 512
peers = ["edge-us-east-1a"]
[regions.eu-west-1]
preference = ["us-east-1"]
origin = {{ name = "origin-eu-west-1", port = 0 }}
[[regions.eu-west-1.edges]]
name = "edge-eu-west-1a"
port = 0
ram_mb = 64
disk_mb = 512
"""
EDGES = ("edge-us-east-1a", "edge-us-east-1b", "edge-eu-west-1a")


class Stack:
    """``vodstack up`` over a small topology, driven through its own CLI (--status/--kill/--restart)."""

    def __init__(self, workdir: Path, storage: Path, timeout_s: float = 120.0) -> None:
        self.workdir = workdir
        self.topology = workdir / "topology.toml"
        self.topology.write_text(TOPOLOGY.format(data=workdir / "data", storage=storage))
        self.log = workdir / "up.out"
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "vodstack", "up", str(self.topology)], stdout=out,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
                                         cwd=REPO, env=env)
        deadline = time.monotonic() + timeout_s
        while "every server is ready" not in self.log.read_text(errors="replace"):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("vodstack up did not get ready:\n" + self.log.read_text(errors="replace")[-3000:])
            time.sleep(0.2)
        self.urls = {}
        for line in self.cli("--status").splitlines():
            parts = line.split()
            if len(parts) >= 3 and parts[2].startswith("http://"):
                self.urls[parts[0]] = parts[2]
        self.steering = self.urls["steering"]

    def cli(self, *args: str) -> str:
        p = subprocess.run([sys.executable, "-m", "vodstack", "up", str(self.topology), *args], capture_output=True,
                           text=True, timeout=120, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
        if p.returncode != 0:
            raise RuntimeError(f"vodstack up {' '.join(args)}: {p.stderr}")
        return p.stdout

    def kill(self, name: str) -> None:
        self.cli("--kill", name)

    def restart(self, name: str) -> None:
        self.cli("--restart", name)

    def status(self) -> dict[str, str]:
        return {line.split()[0]: line.split()[1] for line in self.cli("--status").splitlines() if line.strip()}

    def heal(self) -> None:
        """Restart every edge that is not running and restore evacuated regions."""
        import json
        import urllib.request

        for name, state in self.status().items():
            if name.startswith("edge-") and state != "running":
                self.restart(name)
        for region in ("us-east-1", "eu-west-1"):
            req = urllib.request.Request(f"{self.steering}/regions/{region}/restore", method="POST",
                                         headers={"X-Admin-Key": "adm"})
            urllib.request.urlopen(req, timeout=10).read()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            with urllib.request.urlopen(f"{self.steering}/edges", timeout=5) as r:
                edges = json.loads(r.read())["edges"]
            if all(e["in_rotation"] for e in edges):
                return
            time.sleep(0.2)
        raise RuntimeError("edges did not come back into rotation")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
