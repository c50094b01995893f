"""Benchmark: what verifying downloads costs the load generator (`vodstack load --verify-fraction F`).

    python bench/load_capacity/verify.py [--sessions 60] [--fractions 0,0.1,0.25,0.5,1] [--title-s 40]
                                         [--ramp-s 10] [--json]

Set-up: a real stream, not the capacity bench's sparse synthetic title (a verifying session decodes
what it downloads): ffmpeg's HLS muxer, ``--title-s`` seconds of testsrc2 + a sine, two H.264 variants
(640x360 at 800 kb/s, 320x180 at 300 kb/s) in fMP4 with AAC, 2 s segments, served by a plain static
aiohttp server pinned to CPU 1 (``taskset -c 1``).

Each run is ``taskset -c 0 vodstack load --url URL --workers 1 --speed 1 --networks 3g --players N
--ramp R --verify-fraction F --json``: real time, N sessions on one worker, the fraction F of them
decoding every segment they download (PyAV, off the event loop). The F = 0 run is the peer: stalls
above its stall ratio are caused by the verification's CPU. Reported per run: sessions
finished/failed, verified sessions, segments checked, media errors (0 on this clean stream), stall
ratio, event-loop lag p99/max, the worker's CPU per session. The verdict: the largest F whose stall
ratio stays within 1 percentage point of the F = 0 run ("stalls caused by the generator under 1 %").
Load average before and after is printed. Bounded: each run has a ``--time-limit``.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

SERVER = """
import asyncio, sys
from aiohttp import web
async def main():
    app = web.Application(); app.router.add_static("/", sys.argv[1])
    runner = web.AppRunner(app); await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0); await site.start()
    print(runner.addresses[0][1], flush=True)
    await asyncio.Event().wait()
asyncio.run(main())
"""


def make_stream(root: Path, title_s: float) -> str:
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    "testsrc2=size=640x360:rate=25", "-f", "lavfi", "-i", "sine=f=440:sample_rate=48000",
                    "-t", str(title_s), "-map", "0:v", "-map", "0:v", "-map", "1:a", "-c:v", "libx264", "-preset",
                    "veryfast", "-g", "50", "-keyint_min", "50", "-sc_threshold", "0", "-b:v:0", "800k", "-s:v:0",
                    "640x360", "-b:v:1", "300k", "-s:v:1", "320x180", "-c:a", "aac", "-b:a", "64k", "-f", "hls",
                    "-hls_time", "2", "-hls_playlist_type", "vod", "-hls_segment_type", "fmp4",
                    "-var_stream_map", "v:0,agroup:aud v:1,agroup:aud a:0,agroup:aud,language:en,default:yes",
                    "-master_pl_name", "master.m3u8", "-hls_segment_filename", "s_%v_%03d.m4s",
                    "-hls_fmp4_init_filename", "s_%v_init.mp4", "s_%v.m3u8"], cwd=root, check=True, timeout=600)
    return "master.m3u8"


def load(url: str, players: int, ramp_s: float, fraction: float, title_s: float) -> tuple[dict, list[str]]:
    cmd = ["taskset", "-c", "0", sys.executable, "-m", "vodstack", "--log-level", "warning", "load", "--url", url,
           "--players", str(players), "--ramp", str(ramp_s), "--speed", "1", "--networks", "3g",
           "--devices", "laptop-chrome:1", "--workers", "1", "--verify-fraction", f"{fraction:g}", "--json",
           "--no-live", "--time-limit", str(ramp_s + title_s + 60)]
    result = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=ramp_s + title_s + 240)
    if result.returncode not in (0, 3):
        sys.exit(f"vodstack load failed ({result.returncode}):\n{result.stderr[-2000:]}")
    return json.loads(result.stdout), cmd


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sessions", type=int, default=60, help="sessions per run (default 60)")
    ap.add_argument("--fractions", default="0,0.1,0.25,0.5,1", help="verify fractions, comma-separated")
    ap.add_argument("--title-s", type=float, default=40.0, help="stream length, seconds (default 40)")
    ap.add_argument("--ramp-s", type=float, default=10.0, help="arrivals spread over this (default 10)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if shutil.which("taskset") is None or (os.cpu_count() or 1) < 2:
        print("needs taskset and two CPUs", file=sys.stderr)
        return 2
    load_before = os.getloadavg()
    tmp = Path(tempfile.mkdtemp(prefix="vodstack-verify-bench-"))
    rows = []
    server = None
    try:
        master = make_stream(tmp, args.title_s)
        server = subprocess.Popen(["taskset", "-c", "1", sys.executable, "-c", SERVER, str(tmp)],
                                  stdout=subprocess.PIPE, text=True, start_new_session=True)
        assert server.stdout is not None
        port = int(server.stdout.readline())
        url = f"http://127.0.0.1:{port}/{master}"
        fractions = [float(x) for x in args.fractions.split(",")]
        if 0.0 not in fractions:
            fractions.insert(0, 0.0)
        for f in fractions:
            t = time.monotonic()
            doc, cmd = load(url, args.sessions, args.ramp_s, f, args.title_s)
            s, res = doc["summary"], doc["resources"]
            w = next(iter(res["workers"].values()))
            v = s.get("verify") or {}
            rows.append({"fraction": f, "sessions": s["sessions"], "finished": s["finished"], "failed": s["failed"],
                         "verified_sessions": v.get("sessions", 0), "segments_checked": v.get("segments", 0),
                         "media_errors": v.get("errors", 0), "stall_ratio": s["rebuffer_ratio"],
                         "stalls": s["stalls"], "loop_lag_p99_ms": (w["loop_lag_ms"] or {}).get("p99"),
                         "loop_lag_max_ms": res["loop_lag_max_ms"], "cpu_per_session": res["cpu_per_session"],
                         "wall_s": round(time.monotonic() - t, 1), "command": " ".join(cmd)})
            r = rows[-1]
            print(f"F={f:<5g} {r['sessions']} sessions: failed {r['failed']}, verified {r['verified_sessions']} "
                  f"({r['segments_checked']} segments, {r['media_errors']} media errors), stall ratio "
                  f"{100 * r['stall_ratio']:.3f}%, loop lag p99 {r['loop_lag_p99_ms']} ms max {r['loop_lag_max_ms']} "
                  f"ms, CPU {100 * (r['cpu_per_session'] or 0):.2f}% of a core per session", file=sys.stderr,
                  flush=True)
    finally:
        if server is not None and server.poll() is None:
            os.killpg(server.pid, 15)
            server.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)
    base = rows[0]["stall_ratio"] if rows else 0.0
    ok = [r["fraction"] for r in rows if r["stall_ratio"] - base < 0.01 and r["failed"] == 0]
    verdict = max(ok) if ok else None
    load_after = os.getloadavg()
    if args.json:
        print(json.dumps({"load_average_before": load_before, "load_average_after": load_after, "runs": rows,
                          "largest_fraction_within_1pct": verdict}, indent=1))
        return 0
    print(f"\nload average before {load_before[0]:.2f}, after {load_after[0]:.2f} (2 CPUs; server on CPU 1, "
          "generator on CPU 0)")
    print(f"{'F':>5} {'verified':>8} {'segments':>8} {'errors':>6} {'stall %':>8} {'vs F=0':>7} {'lag p99':>8} "
          f"{'CPU/session':>11}")
    for r in rows:
        print(f"{r['fraction']:>5g} {r['verified_sessions']:>8} {r['segments_checked']:>8} {r['media_errors']:>6} "
              f"{100 * r['stall_ratio']:>8.3f} {100 * (r['stall_ratio'] - base):>+7.3f} {r['loop_lag_p99_ms']:>8} "
              f"{100 * (r['cpu_per_session'] or 0):>10.2f}%")
    cpu0 = rows[0]["cpu_per_session"] or 0.0
    cpu1 = next((r["cpu_per_session"] for r in rows if r["fraction"] == 1.0), None)
    if cpu1 and cpu0:
        print(f"CPU per session, every session verifying vs none: {cpu1 / cpu0:.2f}x")
    print(f"largest verify fraction keeping the generator's stalls within 1 point of F=0: {verdict}")
    print(f"command of the last run: {rows[-1]['command']}" if rows else "no runs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
