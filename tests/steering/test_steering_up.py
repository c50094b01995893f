"""`vodstack up` and the Stack library with real origins, edges and steering on 127.0.0.1:
start, kill/restart an edge, stop with no orphan process, and an outside client (ffprobe)
reading the steered playlist through real edges and a real origin."""
from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import m3u8
import pytest

from steering_procs import play_doc_with_pathways, topology_text
from tests.tools import need_tool

from vodstack.supervisor import Stack
from vodstack.topology import parse_topology

pytestmark = pytest.mark.slow



def alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie (read from /proc, no psutil)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def processes_mentioning(text: str) -> list[int]:
    """PIDs whose command line contains ``text`` (our data folder is in every child's flags)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if text in cmdline and alive(int(entry)):
                found.append(int(entry))
    return found


def vodstack(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "vodstack", *args], capture_output=True, text=True, timeout=timeout)


def test_up_starts_kills_restarts_and_stops_without_orphans(tmp_path: Path, title_root: Path):
    topo = tmp_path / "topology.toml"
    topo.write_text(topology_text(tmp_path / "data", title_root))
    out = open(tmp_path / "up.out", "w+")
    up = subprocess.Popen([sys.executable, "-m", "vodstack", "up", str(topo)], stdout=out,
                          stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while "every server is ready" not in (tmp_path / "up.out").read_text():
            assert up.poll() is None, (tmp_path / "up.out").read_text()[-3000:]
            assert time.monotonic() < deadline, "vodstack up did not get ready"
            time.sleep(0.2)
        status = vodstack("up", str(topo), "--status")
        assert status.returncode == 0, status.stderr
        servers = {line.split()[0]: line for line in status.stdout.splitlines()}
        assert len(servers) == 10 and all(" running " in line for line in servers.values())
        pids = {name: int(line.rsplit("pid=", 1)[1]) for name, line in servers.items()}
        log = (tmp_path / "up.out").read_text()
        assert "edge-eu-west-1b    | edge edge-eu-west-1b listening on http://127.0.0.1:" in log
        steering = [line.split()[2] for line in servers.values() if line.startswith("steering")][0]

        def rotation() -> dict[str, bool]:
            import urllib.request
            with urllib.request.urlopen(f"{steering}/edges", timeout=5) as r:
                return {e["name"]: e["in_rotation"] for e in json.loads(r.read())["edges"]}

        deadline = time.monotonic() + 10
        while not all(rotation().values()):
            assert time.monotonic() < deadline, rotation()
            time.sleep(0.2)
        killed = vodstack("up", str(topo), "--kill", "edge-us-east-1a")
        assert killed.returncode == 0 and "killed" in killed.stdout, killed.stderr
        assert not alive(pids["edge-us-east-1a"])
        deadline = time.monotonic() + 3.0 + 2.0
        while rotation()["edge-us-east-1a"]:
            assert time.monotonic() < deadline, "a killed edge stayed in rotation"
            time.sleep(0.1)
        restarted = vodstack("up", str(topo), "--restart", "edge-us-east-1a")
        assert restarted.returncode == 0 and "running" in restarted.stdout, restarted.stderr
        new_pid = int(restarted.stdout.rsplit("pid ", 1)[1].rstrip(")\n"))
        assert alive(new_pid) and new_pid != pids["edge-us-east-1a"]
        deadline = time.monotonic() + 10
        while not rotation()["edge-us-east-1a"]:
            assert time.monotonic() < deadline, "a restarted edge did not come back"
            time.sleep(0.1)
        assert vodstack("up", str(topo), "--kill", "no-such-edge").returncode == 2
        pids["edge-us-east-1a"] = new_pid
    finally:
        if up.poll() is None:
            up.send_signal(signal.SIGTERM)
        code = up.wait(60)
    assert code == 0, (tmp_path / "up.out").read_text()[-3000:]
    assert "stopped" in (tmp_path / "up.out").read_text()
    assert [name for name, pid in pids.items() if alive(pid)] == []
    assert processes_mentioning(str(tmp_path / "data")) == []
    assert not (tmp_path / "data" / "run" / "up.json").exists()


def test_up_reports_a_server_that_cannot_start(tmp_path: Path):
    topo = tmp_path / "topology.toml"
    # the edges get a flag they refuse: they exit at once, after origins and steering started
    topo.write_text(topology_text(tmp_path / "data", tmp_path / "storage", edge_args='["--ram-mb", "-1"]'))
    result = vodstack("up", str(topo), timeout=120)
    assert result.returncode != 0
    assert "vodstack: error: edge-" in result.stderr and "exited with code" in result.stderr
    assert "Traceback" not in result.stderr
    assert processes_mentioning(str(tmp_path / "data")) == []


async def test_ffprobe_reads_the_steered_playlist_through_real_edges(tmp_path: Path, title_root: Path):
    need_tool("ffprobe", "apt-get install ffmpeg")
    import tomllib
    topology = parse_topology(tomllib.loads(topology_text(tmp_path / "data", title_root, max_pathways=2)), env={})
    lines: list[tuple[str, str]] = []
    async with Stack(topology, sink=lambda name, line: lines.append((name, line))) as stack:
        steering = stack.url_of("steering")
        async with aiohttp.ClientSession() as http:
            doc = await play_doc_with_pathways(http, steering, 6, session="ff", timeout_s=10)
            async with http.get(doc["multivariant_url"]) as r:
                text = await r.text()
        pl = m3u8.loads(text)
        assert {p.stream_info.pathway_id for p in pl.playlists} == {p["id"] for p in doc["pathways"][:2]}
        assert all(p.uri.startswith(stack.url_of(p.stream_info.pathway_id) + "/t/") for p in pl.playlists)
        proc = await asyncio.create_subprocess_exec(
            "ffprobe", "-v", "error", "-show_entries", "stream=codec_type,codec_name,width,height",
            "-of", "json", doc["multivariant_url"], stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        stdout, stderr = await asyncio.wait_for(proc.communicate(), 120)
        assert proc.returncode == 0, stderr.decode()[-2000:]
        streams = json.loads(stdout)["streams"]
        kinds = {(s["codec_type"], s.get("codec_name")) for s in streams}
        assert ("video", "h264") in kinds and ("audio", "aac") in kinds, streams
        assert {(s.get("width"), s.get("height")) for s in streams if s["codec_type"] == "video"} >= {(160, 90), (320, 180)}
        # an edge dying behind the supervisor's back is reported, and not restarted
        victim = doc["pathways"][0]["id"]
        pid = [s["pid"] for s in stack.status() if s["name"] == victim][0]
        os.killpg(pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while (victim, "exited with code -9; not restarted") not in lines:
            assert time.monotonic() < deadline, lines[-5:]
            await asyncio.sleep(0.05)
        assert [s["state"] for s in stack.status() if s["name"] == victim] == ["exited"]
        assert ("origin-eu-west-1", f"origin listening on {stack.url_of('origin-eu-west-1')}") in lines
    assert processes_mentioning(str(tmp_path / "data")) == []
