"""Benchmark: how many concurrent 3G sessions one load worker sustains, uvloop vs asyncio's loop.

    python bench/load_capacity/run.py [--sessions 100,1000] [--loops uvloop,asyncio] [--title-s 40]
                                      [--ramp-s 10] [--json]
    python bench/load_capacity/run.py --scheduler [--sessions 400]     # the Dask row

Set-up: a synthetic title (``vodstack.sample.build_synthetic_title``: sparse segments, real
playlists) of ``--title-s`` seconds, 2 s segments, three H.264 rungs (145, 365, 730 kb/s) with
64 kb/s AAC, so a 3G link (1 Mb/s, 150 ms RTT) carries the top rung with room to spare: a
session on it never needs to stall, and stalls above the small-run baseline come from the
generator. A `vodstack up` topology of one region (origin, one edge with a 256 MB RAM tier,
steering), pinned to CPU 1 with ``taskset -c 1``; the edge's RAM tier is warmed first.

Each run is ``taskset -c 0 vodstack load --workers 1 --speed 1 --networks 3g --players N --ramp
R --devices laptop-chrome:1 --loop L --json``: real time, N sessions arriving over R seconds, all
N playing at once from R until the first ones end. Reported per run: sessions finished/failed,
stall ratio (rebuffer ratio over every session), stalls, start-up p50/p95, the worker's
event-loop lag (p99 of its per-interval p99s, and max), the worker's CPU per session (CPU
seconds / session-seconds, i.e. the fraction of one core a playing session costs), RSS per
session, and the whole generator's CPU (parent + worker, from rusage) per session. Targets:
>= 1,000 concurrent sessions per worker with < 1% stall ratio caused by the generator.

``--scheduler`` runs the same load three times per ``--sessions`` count, all with ``--workers 2``:
two local worker processes, then two load workers as tasks on a ``distributed.LocalCluster`` of
two single-threaded worker processes over TCP on loopback (``vodstack load --scheduler``), once
with Dask's default configuration (``dask``) and once with its workers' statistical profiler off
(``dask-noprof``: ``DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED=False``). Runner,
workers and the cluster's scheduler are all on CPU 0, the stack on CPU 1. Reported: the same
columns, and the ratio of sessions a worker core sustains, Dask against local (local CPU per
session / Dask CPU per session, the Dask workers' whole process CPU counted). Target: within 10 %.

Bounded: every run has a ``--time-limit`` of ramp + title + 60 s; the whole bench a few minutes
with the defaults. Needs taskset (util-linux) and two CPUs.
"""
from __future__ import annotations

import argparse
import ctypes
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from vodstack.sample import SYNTHETIC_LADDER, build_synthetic_title  # noqa: E402

BENCH_LADDER = [r for r in SYNTHETIC_LADDER if r[0] in ("h264-234p", "h264-270p", "h264-360p")]


def topology(data_dir: Path, storage: Path) -> str:
    return (f'[stack]\ndata_dir = "{data_dir}"\nstorage = "{storage}"\ncontrol_port = 0\n'
            'heartbeat_interval_s = 0.5\nready_timeout_s = 90\n'
            '[keys]\nactive = "k1"\n[keys.secrets]\nk1 = "bench-secret"\n'
            '[steering]\nport = 0\nadmin_key = "adm"\nheartbeat_timeout_s = 3.0\n'
            '[regions.bench-1]\npreference = []\norigin = { name = "origin-bench-1", port = 0 }\n'
            '[[regions.bench-1.edges]]\nname = "edge-bench-1a"\nport = 0\nram_mb = 256\ndisk_mb = 512\n')


def _die_with_parent() -> None:  # in the child: SIGTERM when this bench goes (the stack's servers follow)
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def start_stack(topo: Path, log: Path) -> tuple[subprocess.Popen[bytes], str, str]:
    out = open(log, "wb")
    proc = subprocess.Popen(["taskset", "-c", "1", sys.executable, "-m", "vodstack", "--log-level", "warning", "up",
                             str(topo)], stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True, cwd=REPO, preexec_fn=_die_with_parent)
    deadline = time.monotonic() + 120
    while "every server is ready" not in log.read_text(errors="replace"):
        if proc.poll() is not None or time.monotonic() > deadline:
            stop_stack(proc)
            sys.exit(f"vodstack up did not start:\n{log.read_text(errors='replace')[-2000:]}")
        time.sleep(0.2)
    time.sleep(0.3)
    urls = dict(re.findall(r"^\s+(\S+)\s+(http://\S+)", log.read_text(), re.M))
    pid = re.search(r"edge-bench-1a\s+\S+\s+\(pid (\d+)\)", log.read_text())
    return proc, urls["steering"], pid.group(1) if pid else ""


def stop_stack(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def cpu_s_of(pid: str) -> float:
    """utime + stime of a process, seconds (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_cluster(log: Path, profiler: bool = True) -> tuple[subprocess.Popen[str], str]:
    """A ``distributed.LocalCluster`` of two single-threaded worker processes, all on CPU 0; with
    ``profiler`` False, Dask's statistical profiler (a thread sampling every thread's stack each
    10 ms) is off in its workers."""
    env = {**os.environ, "DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED": "True" if profiler else "False"}
    code = ("import sys\nfrom distributed import LocalCluster\n"
            "c = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)\n"
            "c.wait_for_workers(2, timeout=60)\nprint(c.scheduler_address, flush=True)\nsys.stdin.read()\n"
            "c.close()\n")
    proc = subprocess.Popen(["taskset", "-c", "0", sys.executable, "-c", code], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=open(log, "wb"), text=True, cwd=REPO, env=env,
                            start_new_session=True, preexec_fn=_die_with_parent)
    assert proc.stdout is not None
    address = proc.stdout.readline().strip()
    if not address.startswith("tcp://"):
        proc.kill()
        sys.exit(f"the LocalCluster did not start:\n{log.read_text(errors='replace')[-2000:]}")
    return proc, address


def stop_cluster(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        assert proc.stdin is not None
        proc.stdin.close()
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def load(steering: str, players: int, ramp_s: float, loop: str, title_s: float, network: str = "3g",
         speed: float = 1.0, abr: str = "default", workers: int = 1,
         scheduler: str | None = None) -> tuple[dict, float, list[str]]:
    cmd = ["taskset", "-c", "0", sys.executable, "-m", "vodstack", "--log-level", "warning", "load",
           "--steering", steering, "--titles", "bench", "--players", str(players), "--ramp", str(ramp_s),
           "--speed", str(speed), "--networks", network, "--devices", "laptop-chrome:1", "--workers", str(workers),
           "--loop", loop, "--abr", abr, "--json", "--no-live", "--time-limit", str(ramp_s + title_s + 60)]
    cmd += ["--scheduler", scheduler] if scheduler else []
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=ramp_s + title_s + 240)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode not in (0, 3):
        sys.exit(f"vodstack load failed ({result.returncode}):\n{result.stderr[-2000:]}")
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return json.loads(result.stdout), cpu, cmd


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sessions", default="100,1000", help="concurrent sessions per run, comma-separated")
    ap.add_argument("--loops", default="uvloop,asyncio", help="event loops to compare")
    ap.add_argument("--asyncio-sessions", default="1000", help="sessions for the asyncio runs (default: 1000)")
    ap.add_argument("--title-s", type=float, default=40.0, help="title length, seconds (default 40)")
    ap.add_argument("--ramp-s", type=float, default=10.0, help="arrivals spread over this (default 10)")
    ap.add_argument("--abr", default="default", help="ABR algorithm of the sessions (default: default)")
    ap.add_argument("--scheduler", action="store_true",
                    help="the Dask row: 2 local workers against 2 load workers on a LocalCluster (uvloop)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if shutil.which("taskset") is None or (os.cpu_count() or 1) < 2:
        print("needs taskset and two CPUs", file=sys.stderr)
        return 2
    load_start = os.getloadavg()
    print(f"load average at the start: {load_start[0]:.2f}", file=sys.stderr)
    tmp = Path(tempfile.mkdtemp(prefix="vodstack-load-bench-"))
    build_synthetic_title(tmp / "storage", "bench", duration_s=args.title_s, segment_s=2.0, languages=("en",),
                          ladder=BENCH_LADDER)
    topo = tmp / "topology.toml"
    topo.write_text(topology(tmp / "data", tmp / "storage"))
    proc, steering, edge_pid = start_stack(topo, tmp / "up.log")
    cluster: subprocess.Popen[str] | None = None
    clusters: list[subprocess.Popen[str]] = []
    rows = []
    try:
        load(steering, 4, 0.0, "uvloop", args.title_s, network="none", speed=20.0)  # warm the edge's RAM tier
        runs: list[tuple[str, int, str | None]]
        if args.scheduler:
            cluster, address = start_cluster(tmp / "cluster.log")
            quiet, quiet_address = start_cluster(tmp / "cluster-quiet.log", profiler=False)
            clusters.append(quiet)
            runs = [r for n in args.sessions.split(",") for r in (
                ("local", int(n), None), ("dask", int(n), address), ("dask-noprof", int(n), quiet_address))]
        else:
            runs = [("uvloop", int(n), None) for n in args.sessions.split(",")] if "uvloop" in args.loops else []
            if "asyncio" in args.loops:
                runs += [("asyncio", int(n), None) for n in args.asyncio_sessions.split(",")]
        for loop, n, scheduler in runs:
            edge_cpu0 = cpu_s_of(edge_pid)
            t = time.monotonic()
            doc, total_cpu, cmd = load(steering, n, args.ramp_s, "asyncio" if loop == "asyncio" else "uvloop",
                                       args.title_s, abr=args.abr, workers=2 if args.scheduler else 1,
                                       scheduler=scheduler)
            wall = time.monotonic() - t
            s, res = doc["summary"], doc["resources"]
            ws = list(res["workers"].values())
            session_s = sum(w["session_seconds"] for w in ws) or 1.0
            lag_p99 = max(((w["loop_lag_ms"] or {}).get("p99") or 0) for w in ws)
            rows.append({
                "loop": loop, "abr": args.abr, "sessions": n, "finished": s["finished"], "failed": s["failed"],
                "cut": s["cut"],
                "stall_ratio": s["rebuffer_ratio"], "stalls": s["stalls"], "startup_p50_s": s["startup_p50_s"],
                "startup_p95_s": s["startup_p95_s"],
                "avg_bitrate_kbps": round((s["avg_bitrate_bps"]["mean"] or 0) / 1e3),
                "loop_lag_max_ms": res["loop_lag_max_ms"], "loop_lag_p99_ms": lag_p99,
                "worker_problems": doc["worker_problems"],
                "worker_cpu_per_session": res["cpu_per_session"],
                "rss_per_session_kib": round((res["rss_per_session_bytes"] or 0) / 1024),
                "generator_cpu_per_session": round(total_cpu / session_s, 5),
                "edge_cpu_s": round(cpu_s_of(edge_pid) - edge_cpu0, 1), "wall_s": round(wall, 1),
                "command": " ".join(cmd)})
            r = rows[-1]
            print(f"{loop:11} {args.abr:10} {n:5} sessions: finished {r['finished']} failed {r['failed']} stall ratio "
                  f"{100 * r['stall_ratio']:.3f}% ({r['stalls']} stalls), start-up p95 {r['startup_p95_s']} s, "
                  f"bitrate {r['avg_bitrate_kbps']} kb/s, loop lag p99 {r['loop_lag_p99_ms']} ms max "
                  f"{r['loop_lag_max_ms']} ms, worker CPU {100 * (r['worker_cpu_per_session'] or 0):.3f}% of a core "
                  f"per session (generator {100 * r['generator_cpu_per_session']:.3f}%), RSS "
                  f"{r['rss_per_session_kib']} KiB/session, edge CPU {r['edge_cpu_s']} s, {r['wall_s']} s",
                  file=sys.stderr, flush=True)
    finally:
        for c in [cluster, *clusters]:
            if c is not None:
                stop_cluster(c)
        stop_stack(proc)
        shutil.rmtree(tmp, ignore_errors=True)
    load_avg = os.getloadavg()
    ratios = [{"sessions": a["sessions"], "mode": b["loop"], "dask_vs_local_sessions_per_core":
               round(a["worker_cpu_per_session"] / b["worker_cpu_per_session"], 3)}
              for k in range(0, len(rows), 3) if args.scheduler for a in rows[k:k + 1] for b in rows[k + 1:k + 3]
              if a["worker_cpu_per_session"] and b["worker_cpu_per_session"]]
    if args.json:
        print(json.dumps({"load_average_start": load_start, "load_average": load_avg, "runs": rows,
                          "ratios": ratios}, indent=1))
    else:
        print(f"\nload average {load_start[0]:.2f} at the start, {load_avg[0]:.2f} at the end (2 CPUs; edge on "
              "CPU 1, generator on CPU 0)")
        print(f"{'loop':8} {'sessions':>8} {'failed':>6} {'stall %':>8} {'p95 start':>9} {'lag p99':>8} "
              f"{'lag max':>8} {'CPU/session':>11} {'RSS/session':>11}")
        for r in rows:
            print(f"{r['loop']:8} {r['sessions']:>8} {r['failed']:>6} {100 * r['stall_ratio']:>8.3f} "
                  f"{r['startup_p95_s']:>9} {r['loop_lag_p99_ms']:>8} {r['loop_lag_max_ms']:>8} "
                  f"{100 * (r['worker_cpu_per_session'] or 0):>10.3f}% {r['rss_per_session_kib']:>8} KiB")
        for q in ratios:
            print(f"{q['sessions']} sessions, {q['mode']}: a Dask load worker sustains {q['dask_vs_local_sessions_per_core']:.3f}x "
                  "the sessions per core of a local worker process (target >= 0.9)")
        if rows:
            print(f"command of the last run: {rows[-1]['command']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
