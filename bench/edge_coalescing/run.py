"""Benchmark: N concurrent clients on one cold object behind a slow origin (coalescing).

    python bench/edge_coalescing/run.py [--clients 100,1000] [--size-mb 2] [--origin-mbps 128] [--workers N]

A slow origin (in this process: 64 KB chunks paced to ``--origin-mbps`` after a 50 ms first-byte
delay; it counts requests per object) sits behind a real ``vodstack edge`` process pinned to CPU 0;
this process (origin and clients) runs on CPU 1. For each N, N clients ask the edge at once for a
new cold object. Printed: origin requests for that object (must be 1), p50/p99 time to first byte
and to last byte across the clients, and those against the origin's own fill time (one client
straight from the origin, measured first). Exit 1 if any object was fetched upstream more than once.

``--workers N``: the edge runs N worker processes (unpinned); the clients' connections spread over
them, so the one-fetch rule is held by the cross-worker fill lock (``edge/workers.py``). Printed per
cold object: how many clients each worker answered, and how many of its fills waited on another
worker's lock and read that worker's copy.
"""
from __future__ import annotations

import argparse
import asyncio
import collections
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from aiohttp import web

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
from edge.tokens import sign_token  # noqa: E402
from edge.workers import socket_name  # noqa: E402

KEY = ("bench", "bench-secret")


class SlowOrigin:
    def __init__(self, size_bytes: int, rate_bytes_per_s: float) -> None:
        self.data = os.urandom(size_bytes)
        self.rate = rate_bytes_per_s
        self.requests: collections.Counter[str] = collections.Counter()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        key = request.match_info["key"]
        self.requests[key] += 1
        await asyncio.sleep(0.05)
        resp = web.StreamResponse(headers={"Content-Length": str(len(self.data)), "ETag": f'"{key}"',
                                           "Cache-Control": "public, max-age=31536000, immutable"})
        await resp.prepare(request)
        t0 = time.monotonic()
        for pos in range(0, len(self.data), 65536):
            await resp.write(self.data[pos:pos + 65536])
            ahead = (pos + 65536) / self.rate - (time.monotonic() - t0)
            if ahead > 0:
                await asyncio.sleep(ahead)
        await resp.write_eof()
        return resp


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


async def fetch(session: aiohttp.ClientSession, url: str) -> tuple[float, float, int]:
    t0 = time.monotonic()
    async with session.get(url) as r:
        assert r.status == 200, r.status
        first = None
        n = 0
        async for chunk in r.content.iter_any():
            if first is None:
                first = time.monotonic() - t0
            n += len(chunk)
        return first or 0.0, time.monotonic() - t0, n


async def run(args: argparse.Namespace) -> int:
    origin = SlowOrigin(int(args.size_mb * 1_000_000), args.origin_mbps * 1e6 / 8)
    app = web.Application()
    app.router.add_get("/{key:.+}", origin.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    origin_url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    tmp = Path(tempfile.mkdtemp(prefix="edge-coalescing-"))
    pin = ["taskset", "-c", "0"] if args.workers == 1 else []
    proc = await asyncio.create_subprocess_exec(
        *pin, sys.executable, "-m", "vodstack", "--log-level", "warning", "edge",
        "--origin", origin_url, "--port", "0", "--cache-dir", str(tmp / "cache"), "--ram-mb", "256",
        "--disk-mb", "1024", "--token-key", f"{KEY[0]}={KEY[1]}", "--no-access-log", "--workers", str(args.workers),
        cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)), stdout=asyncio.subprocess.PIPE)
    assert proc.stdout is not None
    line = (await proc.stdout.readline()).decode()
    edge_url = line.split(" listening on ", 1)[1].split()[0]
    failed = False
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as s:
            ttfb, ttlb, _ = await fetch(s, f"{origin_url}/direct/probe.m4s")
            print(f"object {args.size_mb} MB; origin alone: TTFB {ttfb * 1000:.0f} ms, fill (TTLB) {ttlb * 1000:.0f} ms")
            print(f"{'clients':>7} {'origin reqs':>11} {'TTFB p50':>9} {'p99':>7} {'TTLB p50':>9} {'p99':>7}"
                  f" {'TTLB p50/fill':>13} {'p99/fill':>8} {'out MB/s':>9}  (ms)")
            token = sign_token(KEY[0], KEY[1], "bench", time.time() + 3600)
            for n in (int(c) for c in args.clients.split(",")):
                key = f"bench/cold-{n}.m4s"
                url = f"{edge_url}/t/{token}/{key}"
                results = await asyncio.gather(*(fetch(s, url) for _ in range(n)))
                assert all(r[2] == len(origin.data) for r in results)
                firsts = [r[0] for r in results]
                lasts = [r[1] for r in results]
                reqs = origin.requests[key]
                failed |= reqs != 1
                print(f"{n:>7} {reqs:>11} {pct(firsts, 50) * 1000:>9.0f} {pct(firsts, 99) * 1000:>7.0f}"
                      f" {pct(lasts, 50) * 1000:>9.0f} {pct(lasts, 99) * 1000:>7.0f}"
                      f" {pct(lasts, 50) / ttlb:>13.2f} {pct(lasts, 99) / ttlb:>8.2f}"
                      f" {n * len(origin.data) / max(lasts) / 1e6:>9.0f}")
                if args.workers > 1:
                    print(f"{'':>7} per worker: {await per_worker(proc.pid, args.workers)}")
    finally:
        proc.send_signal(signal.SIGTERM)
        await proc.wait()
        await runner.cleanup()
        subprocess.run(["rm", "-rf", str(tmp)])
    if failed:
        print("FAIL: an object was fetched from the origin more than once", file=sys.stderr)
    return 1 if failed else 0


async def per_worker(master_pid: int, count: int) -> str:
    """Each worker's answered requests and fills answered from a sibling's copy (its own unix socket)."""
    parts = []
    for slot in range(count):
        connector = aiohttp.UnixConnector(path=socket_name(master_pid, 1, slot))
        async with aiohttp.ClientSession(connector=connector) as s:
            async with s.get("http://worker/_/health?worker=local") as r:
                h = await r.json()
        lock = h.get("fill_lock", {})
        parts.append(f"worker {slot}: {int(h['requests'])} requests (all runs so far), {lock.get('waited', 0)} fills from a sibling's copy")
    return "; ".join(parts)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", default="100,1000")
    ap.add_argument("--size-mb", type=float, default=2.0)
    ap.add_argument("--origin-mbps", type=float, default=128.0)
    ap.add_argument("--workers", type=int, default=1, help="edge worker processes (default 1, pinned)")
    args = ap.parse_args()
    if hasattr(os, "sched_setaffinity") and os.cpu_count() and os.cpu_count() > 1:
        os.sched_setaffinity(0, {1})
    return asyncio.run(run(args))


if __name__ == "__main__":
    raise SystemExit(main())
