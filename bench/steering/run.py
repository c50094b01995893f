"""Benchmark: the steering service's playback API, and how fast a dead edge leaves its answers.

    python bench/steering/run.py [--duration-s 10] [--connections 32] [--heartbeat-timeout-s 2] [--json]

Set-up: a real origin (``vodstack origin``) holding one small title; a topology of 3 regions x 10
edges; ``vodstack steering`` on that topology, pinned to CPU 0 (``taskset -c 0``), once per event
loop (uvloop, asyncio). This process, pinned to CPU 1, plays the 30 edges: each posts a heartbeat
every ``heartbeat_interval_s`` (like ``edge/`` does), so every edge is in rotation and the
registry works as in production.

1. Throughput: ``wrk`` pinned to CPU 1 sends ``GET /play/bench?device=D&region=R&session=sN``
   with a new session, a rotating region and device on every request (a Lua script), after a
   warm-up. Reported: requests/s and p50/p99 latency from wrk. Every answer must be 200
   (non-2xx or socket errors fail the run). Target: >= 2,000 req/s.
2. Removal: for 5 edges in turn, the heartbeats of the edge stop at a random instant between two
   beats (its death); ``/steer`` for a session whose first pathway is that edge is polled every
   10 ms until the edge is no longer named. Reported: death -> removal seconds (max, median).
   Target: <= heartbeat timeout + 1 s.

Needs wrk and taskset (Debian: ``apt-get install wrk util-linux``); exits 2 without them.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

REPO = Path(__file__).resolve().parents[2]
SERVER_CPU, CLIENT_CPU = "0", "1"
REGIONS = {"us-east-1": ["us-west-2", "eu-west-1"], "us-west-2": ["us-east-1", "eu-west-1"],
           "eu-west-1": ["us-east-1", "us-west-2"]}
EDGES_PER_REGION = 10
HEARTBEAT_INTERVAL_S = 0.5

PLAY_LUA = """
local regions = {"us-east-1", "us-west-2", "eu-west-1"}
local devices = {"iphone", "android-phone", "tv-4k", "laptop-chrome", "low-end"}
local n = 0
local thread_id = 0
local threads = {}
function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end
function request()
  n = n + 1
  local path = string.format("/play/bench?device=%s&region=%s&session=t%d-%d",
                             devices[n % 5 + 1], regions[n % 3 + 1], id, n)
  return wrk.format("GET", path)
end
function done(summary, latency, requests)
  io.write(string.format("JSON {\\"requests\\": %d, \\"duration_us\\": %d, \\"non2xx\\": %d, " ..
    "\\"errors\\": %d, \\"p50_us\\": %d, \\"p99_us\\": %d, \\"max_us\\": %d}\\n",
    summary.requests, summary.duration, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
"""

MASTER = """#EXTM3U
#EXT-X-VERSION:7
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-STREAM-INF:BANDWIDTH=300000,CODECS="avc1.64000c",RESOLUTION=160x90
video/v90/index.m3u8
"""


def edge_names() -> list[tuple[str, str]]:
    return [(f"edge-{r}-{i:02d}", r) for r in REGIONS for i in range(EDGES_PER_REGION)]


def write_topology(path: Path, origin_port: int, heartbeat_timeout_s: float, loop: str) -> None:
    text = ('[stack]\ncontrol_port = 0\nheartbeat_interval_s = %s\n[keys]\nactive = "k1"\n[keys.secrets]\n'
            'k1 = "bench-secret"\n[steering]\nport = 0\nadmin_key = "adm"\nheartbeat_timeout_s = %s\n'
            'steering_ttl_s = 5\nloop = "%s"\n' % (HEARTBEAT_INTERVAL_S, heartbeat_timeout_s, loop))
    port = 47000
    for n, (region, pref) in enumerate(REGIONS.items()):
        text += (f'[regions.{region}]\npreference = ["{pref[0]}", "{pref[1]}"]\n'
                 f'origin = {{ name = "origin-{region}", port = {origin_port if n == 0 else 1 + n} }}\n')
        for name, r in edge_names():
            if r == region:
                port += 1
                text += f'[[regions.{region}.edges]]\nname = "{name}"\nport = {port}\ncapacity_mbps = 1000\n'
    path.write_text(text)


def start(argv: list[str], log: Path, cpu: str) -> tuple[subprocess.Popen[bytes], str]:
    out = open(log, "wb")
    proc = subprocess.Popen(["taskset", "-c", cpu, sys.executable, "-m", "vodstack", *argv], stdout=out,
                            stderr=subprocess.STDOUT, start_new_session=True, cwd=REPO)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        m = re.search(r"listening on (http://[0-9.]+:\d+)", log.read_text(errors="replace"))
        if m:
            return proc, m.group(1)
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    raise SystemExit(f"{argv[0]} did not start: {log.read_text(errors='replace')[-2000:]}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        import os
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(15)


class Heartbeats:
    """The 30 edges: one heartbeat each every HEARTBEAT_INTERVAL_S, staggered; ``dead`` ones stop."""

    def __init__(self, http: aiohttp.ClientSession, steering: str) -> None:
        self.http, self.steering = http, steering
        self.dead: set[str] = set()
        self.tasks = [asyncio.create_task(self.beat(name, region, i)) for i, (name, region) in enumerate(edge_names())]

    async def beat(self, name: str, region: str, i: int) -> None:
        await asyncio.sleep(HEARTBEAT_INTERVAL_S * i / len(edge_names()))
        while name not in self.dead:
            try:
                async with self.http.post(f"{self.steering}/edges/heartbeat", json={
                        "name": name, "region": region, "status": "ok", "bytes_out_per_s": 1_000_000}) as r:
                    await r.read()
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(HEARTBEAT_INTERVAL_S)

    async def close(self) -> None:
        for t in self.tasks:
            t.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


def run_wrk(url: str, script: Path, duration_s: float, connections: int) -> dict[str, float]:
    cmd = ["taskset", "-c", CLIENT_CPU, "wrk", "-t1", f"-c{connections}", f"-d{duration_s:g}s", "-s", str(script), url]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration_s + 60)
    m = re.search(r"^JSON (\{.*\})$", out.stdout, re.M)
    if out.returncode != 0 or not m:
        raise SystemExit(f"wrk failed: {out.stdout}\n{out.stderr}")
    doc = json.loads(m.group(1))
    if doc["non2xx"] or doc["errors"]:
        raise SystemExit(f"wrk saw {doc['non2xx']} non-2xx answers and {doc['errors']} socket errors")
    return {"req_per_s": doc["requests"] / (doc["duration_us"] / 1e6), "p50_ms": doc["p50_us"] / 1000,
            "p99_ms": doc["p99_us"] / 1000, "max_ms": doc["max_us"] / 1000, "requests": doc["requests"]}


async def removal_times(http: aiohttp.ClientSession, steering: str, beats: Heartbeats, trials: int) -> list[float]:
    times = []
    for trial in range(trials):
        region = list(REGIONS)[trial % 3]
        session = f"removal-{trial}"
        async with http.get(f"{steering}/play/bench?device=iphone&region={region}&session={session}") as r:
            doc = await r.json()
        victim, steer_uri = doc["edge"], doc["content_steering_uri"]
        await asyncio.sleep(random.uniform(0, HEARTBEAT_INTERVAL_S))
        beats.dead.add(victim)  # its next heartbeat is not sent: the edge died now
        died = time.monotonic()
        while True:
            async with http.get(steer_uri) as r:
                manifest = await r.json()
            if victim not in manifest["PATHWAY-PRIORITY"]:
                times.append(time.monotonic() - died)
                break
            if time.monotonic() - died > 30:
                raise SystemExit(f"{victim} still steered to 30 s after its death")
            await asyncio.sleep(0.01)
    return times


async def measure(loop_name: str, origin_port: int, tmp: Path, args: argparse.Namespace) -> dict[str, object]:
    topo = tmp / f"topology-{loop_name}.toml"
    write_topology(topo, origin_port, args.heartbeat_timeout_s, loop_name)
    proc, steering = start(["--log-level", "warning", "steering", "--topology", str(topo)],
                           tmp / f"steering-{loop_name}.log", SERVER_CPU)
    try:
        async with aiohttp.ClientSession() as http:
            beats = Heartbeats(http, steering)
            await asyncio.sleep(HEARTBEAT_INTERVAL_S * 2)
            async with http.get(f"{steering}/_/health") as r:
                health = await r.json()
            assert health["edges_in_rotation"] == 30, health
            script = tmp / "play.lua"
            script.write_text(PLAY_LUA)
            await asyncio.to_thread(run_wrk, f"{steering}/", script, 2, args.connections)  # warm-up
            result = await asyncio.to_thread(run_wrk, f"{steering}/", script, args.duration_s, args.connections)
            result["removal_s"] = await removal_times(http, steering, beats, args.removal_trials)
            await beats.close()
    finally:
        stop(proc)
    return result


async def main_async(args: argparse.Namespace) -> int:
    for tool in ("wrk", "taskset"):
        if shutil.which(tool) is None:
            print(f"bench/steering: {tool} is not installed (apt-get install wrk util-linux)", file=sys.stderr)
            return 2
    with tempfile.TemporaryDirectory(prefix="vodstack-bench-steering-") as d:
        tmp = Path(d)
        title = tmp / "storage" / "bench"
        title.mkdir(parents=True)
        (title / "title.json").write_text(json.dumps({"format": "vodstack-title/1", "title": "bench"}))
        (title / "master.m3u8").write_text(MASTER)
        origin, origin_url = start(["--log-level", "warning", "origin", "--storage", str(tmp / "storage"),
                                    "--port", "0", "--workers", "1"], tmp / "origin.log", CLIENT_CPU)
        try:
            results = {loop: await measure(loop, int(origin_url.rsplit(":", 1)[1]), tmp, args)
                       for loop in args.loops}
        finally:
            stop(origin)
    target_s = args.heartbeat_timeout_s + 1.0
    if args.json:
        print(json.dumps({"results": results, "heartbeat_timeout_s": args.heartbeat_timeout_s,
                          "heartbeat_interval_s": HEARTBEAT_INTERVAL_S, "command": " ".join(sys.argv)}, indent=1))
    else:
        print(f"\nsteering playback API, 3 regions x {EDGES_PER_REGION} edges, wrk -t1 -c{args.connections} "
              f"{args.duration_s:g}s (server on CPU {SERVER_CPU}, wrk on CPU {CLIENT_CPU})")
        print(f"{'loop':<9} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7}   "
              f"death->removal s (max / median, {args.removal_trials} edges; heartbeat every "
              f"{HEARTBEAT_INTERVAL_S:g} s, timeout {args.heartbeat_timeout_s:g} s, target <= {target_s:g} s)")
        for loop, r in results.items():
            rem = r["removal_s"]
            print(f"{loop:<9} {r['req_per_s']:>8.0f} {r['p50_ms']:>7.2f} {r['p99_ms']:>7.2f} {r['max_ms']:>7.1f}   "
                  f"{max(rem):.2f} / {statistics.median(rem):.2f}")
        print(f"target: >= 2000 req/s; command: python {' '.join(sys.argv)}")
    ok = all(r["req_per_s"] >= 2000 and max(r["removal_s"]) <= target_s for r in results.values())
    return 0 if ok else 1


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--duration-s", type=float, default=10.0)
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--heartbeat-timeout-s", type=float, default=2.0)
    p.add_argument("--removal-trials", type=int, default=5)
    p.add_argument("--loops", nargs="+", default=["uvloop", "asyncio"], choices=["uvloop", "asyncio"])
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    raise SystemExit(main())
