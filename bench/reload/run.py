"""Benchmark: graceful reload under load. 20 SIGHUPs during a 30 s keep-alive ``wrk`` run, against
``vodstack edge --workers 2`` and, as the peer, nginx (``worker_processes 2``) given the same storm.

    python bench/reload/run.py [--duration-s 30] [--reloads 20] [--connections 64] [--size-kb 100]

100 segments of ``--size-kb`` are written to a temp folder; nginx serves it, the edge fills from a
``vodstack origin`` on it (warmed: every object asked until it is in every worker's RAM). For each
server, ``wrk`` (keep-alive, ``--connections``, a Lua script that checks every answer's status and body
length) runs for ``--duration-s`` while this script sends the master ``--reloads`` SIGHUPs, evenly
spaced, each after the previous one finished (the edge: its ``reloaded: generation N`` line; nginx:
its new workers replaced the old ones). Printed per server: requests, req/s, socket errors
(connect/read/write/timeout), non-200 answers, wrong-length bodies, reloads done, and the req/s ratio
edge/nginx; the load average before and after. Nothing is pinned (the workers use every core). Exit 1
if the edge failed or truncated a single response, or did not finish every reload.

Needs nginx and wrk (Debian: ``apt-get install nginx-light wrk``); exits 2 without them.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
from edge.tokens import sign_token  # noqa: E402

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
COUNT = 100
KEY = ("bench", "bench-secret")

LUA = """
local threads = {}
function setup(thread)
  table.insert(threads, thread)
end
function init(args)
  paths = {}
  for i = 0, %(count)d - 1 do
    paths[#paths + 1] = string.format("%%s/f%%03d.m4s", args[1], i)
  end
  expected = tonumber(args[2])
  n = 0
  bad_status = 0
  bad_length = 0
end
function request()
  n = n + 1
  return wrk.format("GET", paths[(n %% #paths) + 1])
end
function response(status, headers, body)
  if status ~= 200 then
    bad_status = bad_status + 1
  elseif #body ~= expected then
    bad_length = bad_length + 1
  end
end
function done(summary, latency, requests)
  local s, l = 0, 0
  for _, t in ipairs(threads) do
    s = s + t:get("bad_status")
    l = l + t:get("bad_length")
  end
  io.write(string.format("CHECK bad_status=%%d bad_length=%%d\\n", s, l))
end
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def children(pid: int) -> set[int]:
    out: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        out |= {int(c) for c in (task / "children").read_text().split()}
    return out


def run_wrk(url: str, prefix: str, size: int, args: argparse.Namespace, lua: Path) -> dict[str, int | float]:
    cmd = ["wrk", "-t2", f"-c{args.connections}", f"-d{args.duration_s}s", "--timeout", "10s", "-s", str(lua), url,
           "--", prefix, str(size)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=args.duration_s + 60).stdout
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    check = re.search(r"CHECK bad_status=(\d+) bad_length=(\d+)", out)
    if check is None:
        raise SystemExit(f"wrk printed no check line:\n{out}")
    return {"requests": requests, "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
            "socket_errors": sum(int(g) for g in socket_errors.groups()) if socket_errors else 0,
            "socket_detail": socket_errors.group(0) if socket_errors else "none",
            "non_200": int(check.group(1)), "wrong_length": int(check.group(2)), "raw": out}


def storm(reload_once, count: int, duration_s: float, done: list[int]) -> None:
    """``count`` reloads spread over ``duration_s`` (starting 1 s in), each after the last finished."""
    gap = (duration_s - 3.0) / count
    time.sleep(1.0)
    for _ in range(count):
        t0 = time.monotonic()
        if reload_once():
            done[0] += 1
        time.sleep(max(0.0, gap - (time.monotonic() - t0)))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration-s", type=int, default=30)
    ap.add_argument("--reloads", type=int, default=20)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--size-kb", type=int, default=100)
    args = ap.parse_args()
    if not shutil.which("wrk") or not os.path.exists(NGINX):
        print("missing nginx or wrk: apt-get install nginx-light wrk", file=sys.stderr)
        return 2
    size = args.size_kb * 1000
    tmp = Path(tempfile.mkdtemp(prefix="reload-bench-"))
    root = tmp / "root" / "bench"
    root.mkdir(parents=True)
    for i in range(COUNT):
        (root / f"f{i:03d}.m4s").write_bytes(os.urandom(size))
    lua = tmp / "check.lua"
    lua.write_text(LUA % {"count": COUNT})
    env = dict(os.environ, PYTHONPATH=str(REPO))
    load_before = os.getloadavg()
    results: dict[str, dict[str, int | float]] = {}
    procs: list[subprocess.Popen[str]] = []
    try:
        # ---- nginx, the peer
        port = free_port()
        conf = tmp / "nginx.conf"
        conf.write_text(f"""user root; worker_processes 2; daemon off; pid {tmp}/nginx.pid; error_log {tmp}/nginx.err;
events {{ worker_connections 4096; }}
http {{ sendfile on; tcp_nopush on; access_log off; keepalive_requests 1000000; types {{}}
  default_type application/octet-stream;
  server {{ listen 127.0.0.1:{port}; root {tmp / 'root'}; }} }}
""")
        nginx = subprocess.Popen([NGINX, "-c", str(conf), "-p", str(tmp)], text=True)
        procs.append(nginx)
        for _ in range(100):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/bench/f000.m4s").read()
                break
            except OSError:
                time.sleep(0.05)

        def nginx_reload() -> bool:
            old = children(nginx.pid)
            nginx.send_signal(signal.SIGHUP)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                now = children(nginx.pid)
                if len(now - old) >= 2 and not (now & old):
                    return True
                time.sleep(0.01)
            return False

        done = [0]
        t = threading.Thread(target=storm, args=(nginx_reload, args.reloads, args.duration_s, done))
        t.start()
        results["nginx"] = run_wrk(f"http://127.0.0.1:{port}", "/bench", size, args, lua)
        t.join()
        results["nginx"]["reloads"] = done[0]

        # ---- the edge, two workers, filling from our origin
        origin = subprocess.Popen([sys.executable, "-m", "vodstack", "--log-level", "warning", "origin", "--storage",
                                   str(tmp / "root"), "--port", "0"], cwd=REPO, env=env, text=True,
                                  stdout=subprocess.PIPE, stderr=open(tmp / "origin.log", "a"))
        procs.append(origin)
        assert origin.stdout is not None
        origin_url = origin.stdout.readline().split(" listening on ", 1)[1].split()[0]
        edge = subprocess.Popen([sys.executable, "-m", "vodstack", "--log-level", "warning", "edge", "--workers", "2",
                                 "--origin", origin_url, "--port", "0", "--cache-dir", str(tmp / "cache"),
                                 "--ram-mb", "512", "--disk-mb", "1024", "--token-key", f"{KEY[0]}={KEY[1]}",
                                 "--name", "reload-bench"], cwd=REPO, env=env, text=True,
                                stdout=subprocess.PIPE, stderr=open(tmp / "edge.log", "a"))
        procs.append(edge)
        assert edge.stdout is not None
        edge_url = edge.stdout.readline().split(" listening on ", 1)[1].split()[0]
        prefix = f"/t/{sign_token(KEY[0], KEY[1], 'bench', time.time() + 3600)}/bench"
        for _ in range(12):
            for i in range(COUNT):
                urllib.request.urlopen(f"{edge_url}{prefix}/f{i:03d}.m4s").read()
        generation = [1]
        reloaded = threading.Condition()

        def pump() -> None:  # the master's stdout: "... reloaded: generation N listening"
            assert edge.stdout is not None
            for line in edge.stdout:
                m = re.search(r"reloaded: generation (\d+)", line)
                if m:
                    with reloaded:
                        generation[0] = int(m.group(1))
                        reloaded.notify_all()

        threading.Thread(target=pump, daemon=True).start()

        def edge_reload() -> bool:
            want = generation[0] + 1
            edge.send_signal(signal.SIGHUP)
            with reloaded:
                return reloaded.wait_for(lambda: generation[0] >= want, timeout=20)

        done = [0]
        t = threading.Thread(target=storm, args=(edge_reload, args.reloads, args.duration_s, done))
        t.start()
        results["edge"] = run_wrk(edge_url, prefix, size, args, lua)
        t.join()
        results["edge"]["reloads"] = done[0]
    finally:
        for p in reversed(procs):
            p.send_signal(signal.SIGTERM if p is not procs[0] else signal.SIGQUIT)
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(tmp, ignore_errors=True)
    load_after = os.getloadavg()
    print(f"reload under load: {args.reloads} SIGHUPs during {args.duration_s} s of wrk (-t2 -c{args.connections}, "
          f"keep-alive), {args.size_kb} KB objects, nothing pinned, {os.cpu_count()} CPUs; load average "
          f"before {load_before[0]:.2f}, after {load_after[0]:.2f}")
    print(f"{'server':<8} {'requests':>9} {'req/s':>8} {'sock err':>8} {'non-200':>8} {'bad len':>8} {'reloads':>8}")
    for name, r in results.items():
        print(f"{name:<8} {r['requests']:>9} {r['rps']:>8.0f} {r['socket_errors']:>8} {r['non_200']:>8} "
              f"{r['wrong_length']:>8} {r['reloads']:>8}   ({r['socket_detail']})")
    e, n = results["edge"], results["nginx"]
    print(f"edge/nginx req/s during the storm: {e['rps'] / n['rps']:.2f}x")
    ok = e["socket_errors"] == 0 and e["non_200"] == 0 and e["wrong_length"] == 0 and e["reloads"] == args.reloads
    print("edge: 0 failed, 0 truncated, every reload done" if ok else "edge: FAILED (see the row above)")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
