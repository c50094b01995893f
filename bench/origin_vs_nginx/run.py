"""Benchmark: the vodstack origin (local storage) against Debian's nginx serving the same files.

    python bench/origin_vs_nginx/run.py [--duration-s 10] [--connections 16] [--json]

100 files of 1 MB and 100 of 2 KB are written to a temp folder; nginx (one worker, sendfile on,
no access log) and the origin (one process per event loop: asyncio, uvloop) serve it, each
pinned to CPU 0 with ``taskset -c 0``; ``wrk -t1 -c16`` pinned to CPU 1 rotates through the 100
paths of one size (a small Lua script) for a fixed duration after a short warm-up, against one
server at a time. The servers are measured in turn, round after round (``--rounds``), and the
median of each is kept, so that a passing burst of other work on the machine hits all alike. The origin runs as a
real deployment does: ``vodstack origin`` with its access log on at INFO, written to a file in
the temp folder. Results print as a table: req/s, payload MB/s (req/s x file size, 10^6 bytes)
and the ratio to nginx per file size; then the server's CPU time per request (user + system,
all threads and workers, from /proc) and its inverse, requests per CPU-second, with that ratio
too: on a shared machine the wall-clock figures move with other work, the CPU cost much less.

Needs /usr/sbin/nginx, wrk and taskset (Debian: ``apt-get install nginx-light wrk``); exits 2
without them and never prints a made-up number. A run in which wrk sees socket errors,
timeouts or non-2xx answers is not a measurement: it is run once more, and a second bad run
fails the bench.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
NGINX = "/usr/sbin/nginx"
FILE_COUNT = 100
SIZES_BYTES = {"1MB": 1_000_000, "2KB": 2_000}
SERVER_CPU = "0"
CLIENT_CPU = "1"

ROTATE_LUA = """
-- rotate through FILE_COUNT paths of one size: wrk -s rotate.lua URL -- SIZE_NAME
local paths = {}
local n = 0
function init(args)
  for i = 0, %(count)d - 1 do
    paths[#paths + 1] = string.format("/%%s/f%%03d.m4s", args[1], i)
  end
end
function request()
  n = n + 1
  return wrk.format("GET", paths[(n %% #paths) + 1])
end
"""

NGINX_CONF = """
daemon off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    open_file_cache max=1000 inactive=60s;  # the origin keeps files open too (open_file_cache_*)
    open_file_cache_valid 60s;
    keepalive_requests 1000000;
    types {{ video/iso.segment m4s; }}
    default_type application/octet-stream;
    client_body_temp_path {tmp}/nginx-tmp/body;
    proxy_temp_path {tmp}/nginx-tmp/proxy;
    fastcgi_temp_path {tmp}/nginx-tmp/fastcgi;
    uwsgi_temp_path {tmp}/nginx-tmp/uwsgi;
    scgi_temp_path {tmp}/nginx-tmp/scgi;
    server {{
        listen 127.0.0.1:{port};
        root {data};
        location / {{ }}
    }}
}}
"""


@dataclass(frozen=True)
class Sample:
    """One measured wrk run against one server."""

    requests_per_s: float
    cpu_us_per_request: float  # the server's user+system CPU time (all threads, workers) per request


@dataclass(frozen=True)
class Result:
    server: str
    size: str
    requests_per_s: float        # median over the rounds
    payload_mb_per_s: float      # requests_per_s x file size / 10^6
    cpu_us_per_request: float    # median over the rounds
    requests_per_cpu_s: float    # 10^6 / cpu_us_per_request: what one whole CPU would serve


class BenchError(Exception):
    """The bench cannot run or produced an invalid measurement."""


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--duration-s", type=int, default=10, help="measured seconds per run (default 10)")
    p.add_argument("--warmup-s", type=int, default=2, help="unmeasured seconds before each run (default 2)")
    p.add_argument("--connections", type=int, default=16, help="wrk connections (default 16)")
    p.add_argument("--rounds", type=int, default=3, help="rounds over all servers; the median is kept (default 3)")
    p.add_argument("--loops", default="asyncio,uvloop", help="origin event loops to measure")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    args = p.parse_args(argv)
    missing = [tool for tool in (NGINX, "wrk", "taskset") if shutil.which(tool) is None]
    if missing:
        print(f"missing: {', '.join(missing)}; install with: apt-get install nginx-light wrk util-linux",
              file=sys.stderr)
        return 2
    if (os.cpu_count() or 1) < 2:
        print("needs 2 CPUs (server on CPU 0, wrk on CPU 1)", file=sys.stderr)
        return 2
    print(f"load average before: {load_average()} (a busy machine skews everything)", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="origin-vs-nginx-") as tmp_name:
        tmp = Path(tmp_name)
        try:
            results = run_all(tmp, args)
        except BenchError as e:
            print(f"bench failed: {e}", file=sys.stderr)
            return 1
    print(f"load average after: {load_average()}", file=sys.stderr)
    if args.json:
        print(json.dumps([asdict(r) for r in results], indent=2))
    else:
        print_table(results)
    return 0


def run_all(tmp: Path, args: argparse.Namespace) -> list[Result]:
    """Start every server, then measure them in turn, round after round; keep each one's median."""
    tmp.chmod(0o755)  # nginx workers run as nobody when started by root
    data = make_files(tmp / "data")
    lua = tmp / "rotate.lua"
    lua.write_text(ROTATE_LUA % {"count": FILE_COUNT})
    procs: list[subprocess.Popen[bytes]] = []
    urls: dict[str, str] = {}
    try:
        proc, urls["nginx"] = start_nginx(tmp, data)
        procs.append(proc)
        for loop in [x for x in args.loops.split(",") if x]:
            proc, urls[f"origin-{loop}"] = start_origin(tmp, data, loop)
            procs.append(proc)
        samples: dict[tuple[str, str], list[Sample]] = {}
        pids = dict(zip(urls, (p.pid for p in procs)))
        for round_no in range(1, args.rounds + 1):
            for size in SIZES_BYTES:
                for name, url in urls.items():
                    sample = measure(url, size, lua, args, pids[name])
                    samples.setdefault((name, size), []).append(sample)
                    print(f"  round {round_no} {name:16} {size:4} {sample.requests_per_s:10.0f} req/s "
                          f"{sample.cpu_us_per_request:8.1f} CPU us/req  (load {load_average()})",
                          file=sys.stderr, flush=True)
    finally:
        for proc in procs:
            stop(proc)
    results = []
    for (name, size), runs in samples.items():
        rps = statistics.median(r.requests_per_s for r in runs)
        cpu_us = statistics.median(r.cpu_us_per_request for r in runs)
        results.append(Result(server=name, size=size, requests_per_s=rps,
                              payload_mb_per_s=rps * SIZES_BYTES[size] / 1e6, cpu_us_per_request=cpu_us,
                              requests_per_cpu_s=1e6 / cpu_us if cpu_us > 0 else float("nan")))
    return sorted(results, key=lambda r: (r.size, r.server != "nginx", r.server))


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def make_files(data: Path) -> Path:
    for size, n_bytes in SIZES_BYTES.items():
        folder = data / size
        folder.mkdir(parents=True)
        for i in range(FILE_COUNT):
            (folder / f"f{i:03d}.m4s").write_bytes(os.urandom(n_bytes))
    for folder in (data, *data.iterdir()):
        folder.chmod(0o755)
    return data


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_nginx(tmp: Path, data: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    (tmp / "nginx-tmp").mkdir()
    conf = tmp / "nginx.conf"
    conf.write_text(NGINX_CONF.format(tmp=tmp, port=port, data=data))
    proc = subprocess.Popen(["taskset", "-c", SERVER_CPU, NGINX, "-c", str(conf), "-p", str(tmp)],
                            stdout=subprocess.DEVNULL, stderr=open(tmp / "nginx-stderr.log", "wb"))
    url = f"http://127.0.0.1:{port}"
    wait_until_serving(proc, f"{url}/2KB/f000.m4s", tmp / "nginx-error.log")
    return proc, url


def start_origin(tmp: Path, data: Path, loop: str) -> tuple[subprocess.Popen[bytes], str]:
    log_file = open(tmp / f"origin-{loop}.log", "wb")
    cmd = ["taskset", "-c", SERVER_CPU, sys.executable, "-m", "vodstack", "--log-level", "info",
           "origin", "--storage", str(data), "--port", "0", "--loop", loop, "--workers", "1"]  # one, pinned
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log_file, cwd=REPO, env=env)
    assert proc.stdout is not None
    line = proc.stdout.readline().decode()
    match = re.search(r"listening on (http://\S+)", line)
    if not match:
        stop(proc)
        raise BenchError(f"origin did not start: {line!r}; see {tmp}/origin-{loop}.log")
    url = match.group(1)
    wait_until_serving(proc, f"{url}/2KB/f000.m4s", tmp / f"origin-{loop}.log")
    return proc, url


def wait_until_serving(proc: subprocess.Popen[bytes], url: str, log: Path, timeout_s: float = 10.0) -> None:
    import urllib.request
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"server exited with {proc.returncode}: {log.read_text()[-500:] if log.exists() else ''}")
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise BenchError(f"server at {url} not serving after {timeout_s} s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def measure(url: str, size: str, lua: Path, args: argparse.Namespace, server_pid: int) -> Sample:
    """One wrk run (after an unmeasured warm-up), with the server's CPU time over the run.

    A run in which wrk saw errors (timeouts, resets, non-2xx) is not a measurement: it is
    reported and run once more; a second bad run fails the bench.
    """
    if args.warmup_s > 0:
        warm = run_wrk(url, lua, size, args.warmup_s, args.connections)
        if wrk_errors(warm):
            print(f"  warm-up against {url} saw errors (not measured): {wrk_errors(warm)}", file=sys.stderr)
    for attempt in (1, 2):
        cpu_before_s = tree_cpu_s(server_pid)
        out = run_wrk(url, lua, size, args.duration_s, args.connections)
        cpu_s = tree_cpu_s(server_pid) - cpu_before_s
        errors = wrk_errors(out)
        if not errors:
            requests = parse_request_count(out)
            return Sample(requests_per_s=parse_requests_per_s(out),
                          cpu_us_per_request=cpu_s * 1e6 / max(requests, 1))
        print(f"  run {attempt} against {url} saw errors: {errors}", file=sys.stderr)
    raise BenchError(f"wrk saw errors against {url} twice:\n{out}")


def tree_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (all its threads) and of its children (nginx workers)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for stat in _proc_stats():
        if stat[0] == pid or stat[1] == pid:
            total += stat[2]
    return total / ticks


def _proc_stats() -> list[tuple[int, int, int]]:
    """(pid, ppid, utime + stime in ticks) of every process, from /proc/*/stat."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            text = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = text.rsplit(")", 1)[1].split()  # after "pid (comm)": state ppid ... utime stime
        out.append((int(entry), int(fields[1]), int(fields[11]) + int(fields[12])))
    return out


def run_wrk(url: str, lua: Path, size: str, duration_s: int, connections: int) -> str:
    cmd = ["taskset", "-c", CLIENT_CPU, "wrk", "-t1", f"-c{connections}", f"-d{duration_s}s",
           "-s", str(lua), url, "--", size]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=duration_s + 60)
    if done.returncode != 0:
        raise BenchError(f"wrk failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout


def wrk_errors(wrk_output: str) -> str:
    """wrk's error lines ("Socket errors: ...", "Non-2xx or 3xx responses: N"), or ""."""
    return "; ".join(line.strip() for line in wrk_output.splitlines()
                     if line.strip().startswith(("Socket errors", "Non-2xx or 3xx responses")))


def parse_request_count(wrk_output: str) -> int:
    match = re.search(r"(\d+) requests in", wrk_output)
    if not match:
        raise BenchError(f"no request count in wrk output:\n{wrk_output}")
    return int(match.group(1))


def parse_requests_per_s(wrk_output: str) -> float:
    match = re.search(r"Requests/sec:\s*([\d.]+)", wrk_output)
    if not match:
        raise BenchError(f"no Requests/sec in wrk output:\n{wrk_output}")
    return float(match.group(1))


def print_table(results: list[Result]) -> None:
    """Wall-clock figures (what wrk saw) and CPU-normalised ones (robust to other load)."""
    nginx = {r.size: r for r in results if r.server == "nginx"}
    print(f"{'server':16} {'size':>4} {'req/s':>8} {'MB/s':>8} {'x nginx':>8} "
          f"{'CPU us/req':>10} {'req/CPU-s':>10} {'x nginx':>8}")
    for r in results:
        base = nginx.get(r.size)
        wall = r.requests_per_s / base.requests_per_s if base else float("nan")
        cpu = r.requests_per_cpu_s / base.requests_per_cpu_s if base else float("nan")
        print(f"{r.server:16} {r.size:>4} {r.requests_per_s:8.0f} {r.payload_mb_per_s:8.1f} {wall:8.2f} "
              f"{r.cpu_us_per_request:10.1f} {r.requests_per_cpu_s:10.0f} {cpu:8.2f}")


if __name__ == "__main__":
    raise SystemExit(main())
