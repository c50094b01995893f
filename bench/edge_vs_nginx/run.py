"""Benchmark: the edge's RAM-tier hit path against Debian's nginx serving the same files with sendfile.

    python bench/edge_vs_nginx/run.py [--duration-s 4] [--rounds 3] [--loops asyncio,uvloop] [--tls]
                                      [--workers N] [--cmcd] [--json]

100 segments of 1 MB (``.m4s``) and 100 playlists of 2 KB (``.m3u8``) are written to a temp folder.
nginx (one worker, sendfile on, no access log) serves the folder; the edge (``vodstack edge`` as
deployed: log level info, one access log line per request, written to a file in the temp folder;
once per event loop, with its RAM-hit fast path as deployed; ``--loops uvloop-aiohttp`` adds the same edge
with ``--no-fast-path``) fills from a ``vodstack origin`` on that folder and is warmed so that every
object is in its RAM tier (checked in its metrics). Each server is pinned to CPU 0
(``taskset -c 0``), ``wrk`` to CPU 1; wrk rotates through the 100 paths of one kind. Runs are
interleaved (nginx, edge-asyncio, edge-uvloop, per kind, ``--rounds`` times) and the median is
reported, so background load hits every server alike. Printed: req/s, payload MB/s, the server's CPU
time per request (user + system, from /proc, nginx's worker included; steadier than req/s on a busy
machine) and the ratio to nginx, against the targets (>= 0.8x on 1 MB, >= 0.3x on 2 KB); exit 1 if the default loop
(``EdgeConfig.event_loop``) misses one.
Playlists keep their real 2 s freshness on the edge, so their revalidation is part of the figure.

``--tls``: both serve HTTPS with the same certificate (EC P-256, made by a CA of the run; nginx with
``ssl_session_cache`` and keep-alive, the edge with ``--tls-cert``/``--tls-key``), wrk connects over TLS
and keeps its connections; targets >= 0.5x on 1 MB, >= 0.3x on 2 KB (sendfile and kTLS are not there
for Python, so the CPU µs per request is the figure to read).

``--workers N``: nginx with ``worker_processes N`` against ``vodstack edge --workers N``; nothing is
pinned (servers and wrk, ``-t2``, share every core, as the issue's workers bench asks), and the CPU time
per request counts the master and all its workers. Each edge worker has its own RAM tier
(``ram_mb / N``), so the warm-up asks every object until each worker holds it (checked: the RAM
share of the bytes served is printed). The targets are the single-worker ones.

``--cmcd``: every server is measured twice per kind, once as above and once with every request
carrying a CMCD query argument as our player and hls.js send it (``?CMCD=`` + the URL-encoded
``httpsem.cmcd.encode(CmcdData(...))`` of bl br cid d mtp nor ot sf sid st su tb; ot m for the
playlists, v for the segments; nor the next file; bl and mtp vary; the sid is one of as many sessions
as wrk has connections, varied per request, as wrk's Lua cannot tell its connections apart). nginx
serves the same URLs with the query ignored (static files), the edge parses it (its fast path
answers a RAM hit whose query is one ``CMCD=`` argument), logs its keys on the access line (the
access log is on for both rows, as above) and answers CMSD. Rows ``+cmcd`` are printed with their
ratio to nginx with CMCD and to the same edge without it; targets (the issue's): 2 KB with CMCD
>= 0.3x nginx, 1 MB with CMCD >= 0.8x the edge without CMCD (the default loop's miss exits 1, as
above). The edge's CMCD counters must show the requests, none malformed (else exit 1).

Needs nginx, wrk and taskset (Debian: ``apt-get install nginx-light wrk util-linux``); exits 2
without them. Any socket error or non-2xx answer seen by wrk fails the run (exit 1).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import signal
import statistics
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
from edge.config import EdgeConfig  # noqa: E402
from edge.tokens import sign_token  # noqa: E402

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
COUNT = 100
KINDS = {"1MB": (1_000_000, "m4s", 16), "2KB": (2_000, "m3u8", 64)}  # size, extension, wrk connections
TARGETS = {"1MB": 0.8, "2KB": 0.3}
TLS_TARGETS = {"1MB": 0.5, "2KB": 0.3}
CMCD_TARGETS = {"1MB": ("plain", 0.8), "2KB": ("nginx", 0.3)}  # against the edge without CMCD / nginx with it
DEFAULT_LOOP = EdgeConfig.__dataclass_fields__["event_loop"].default  # the one the targets apply to
KEY = ("bench", "bench-secret")

LUA = """
local paths = {}
local n = 0
function init(args)
  for i = 0, %(count)d - 1 do
    paths[#paths + 1] = string.format("%%s/%%s/f%%03d.%%s", args[1], args[2], i, args[3])
  end
end
function request()
  n = n + 1
  return wrk.format("GET", paths[(n %% #paths) + 1])
end
"""
# --cmcd: the same rotation, each path with a CMCD query argument from a table written by cmcd_lua
# (entry j is path j % COUNT; the table holds lcm(COUNT, connections) entries, so sessions and paths mix).
LUA_CMCD = """
local queries = {
@QUERIES@
}
local paths = {}
local n = 0
function init(args)
  for j, q in ipairs(queries[args[2]]) do
    paths[j] = string.format("%s/%s/f%03d.%s", args[1], args[2], (j - 1) % @COUNT@, args[3]) .. q
  end
end
function request()
  n = n + 1
  return wrk.format("GET", paths[(n % #paths) + 1])
end
"""
# No response() callback: with one, wrk hands every body to Lua as a string, and copying 1 MB into
# Lua per response capped every server at ~1000 req/s, nginx included (the 1 MB ratio measured
# wrk, not the servers). Non-2xx answers are still caught: wrk counts them ("Non-2xx or 3xx
# responses"), and such a run fails.


def cmcd_query(kind: str, j: int) -> str:
    """``?CMCD=...`` of request ``j`` of ``kind``: what our player sends (``client.cmcd``, URL-encoded as
    hls.js does), with the keys hls.js sends with a segment."""
    from client.cmcd import with_cmcd_query
    from httpsem.cmcd import CmcdData, encode

    size, ext, conns = KINDS[kind]
    i = j % COUNT
    sid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"vodstack-bench-session-{j % conns}"))
    data = CmcdData(bl_ms=21300 + (j % 37) * 100, br_kbps=3200, cid="bench", d_ms=4000,
                    mtp_kbps=25400 + (j % 11) * 300, nor=f"f{(i + 1) % COUNT:03d}.{ext}",
                    ot="m" if ext == "m3u8" else "v", sf="h", sid=sid, st="v", su=True, tb_kbps=6000)
    return with_cmcd_query("", encode(data))


def cmcd_lua() -> str:
    tables = []
    for kind, (_, _, conns) in KINDS.items():
        entries = ",\n".join(f'    "{cmcd_query(kind, j)}"' for j in range(math.lcm(COUNT, conns)))
        tables.append(f'  ["{kind}"] = {{\n{entries}\n  }}')
    return LUA_CMCD.replace("@QUERIES@", ",\n".join(tables)).replace("@COUNT@", str(COUNT))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def spawn_listening(cmd: list[str], log: Path, marker: str) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=open(log, "ab"), text=True,
                            env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if marker not in line:
        proc.kill()
        raise SystemExit(f"{cmd[3]} did not start: {line!r}; see {log}")
    return proc, line.split(" listening on ", 1)[1].split()[0]  # "(N workers)" may follow the URL


def stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def cpu_ticks(pid: int) -> int:
    """User + system clock ticks of ``pid`` and its children (nginx's worker), from /proc."""
    total = 0
    pids = [pid]
    while pids:
        p = pids.pop()
        try:
            total += sum(int(f) for f in Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()[11:13])
            for task in Path(f"/proc/{p}/task").iterdir():
                pids += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, ValueError):
            continue
    return total


def wrk(url: str, prefix: str, kind: str, duration_s: int, lua: Path, pin: list[str] | None = None,
        threads: int = 1) -> tuple[float, int, str]:
    size, ext, conns = KINDS[kind]
    cmd = [*(["taskset", "-c", "1"] if pin is None else pin), "wrk", f"-t{threads}", f"-c{conns}", f"-d{duration_s}s", "--timeout", "10s", "-s", str(lua), url, "--",
           prefix, kind, ext]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration_s + 60).stdout
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    n = re.search(r"(\d+) requests in", out)
    if not m or not n or "Non-2xx" in out or "Socket errors" in out or "error" in out.split("Requests/sec")[0].lower():
        raise SystemExit(f"wrk run failed or saw errors on {url}{prefix}:\n{out}")
    return float(m.group(1)), int(n.group(1)), out


def row_name(server: str, mode: str) -> str:
    return server if mode == "plain" else f"{server}+{mode}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration-s", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--loops", default="asyncio,uvloop",
                    help="edges to run, by event loop; LOOP-aiohttp runs that edge with --no-fast-path "
                         "(every request through aiohttp's handler), e.g. asyncio,uvloop,uvloop-aiohttp")
    ap.add_argument("--tls", action="store_true", help="both servers over HTTPS, same certificate")
    ap.add_argument("--workers", type=int, default=1,
                    help="nginx worker_processes and edge --workers (above 1: nothing pinned, wrk -t2)")
    ap.add_argument("--cmcd", action="store_true",
                    help="also measure every server with a CMCD query argument on every request (rows +cmcd)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    many = args.workers > 1
    server_pin = [] if many else ["taskset", "-c", "0"]
    wrk_pin: list[str] | None = [] if many else None
    wrk_threads = 2 if many else 1
    targets = TLS_TARGETS if args.tls else TARGETS
    missing = [t for t in ("wrk", "taskset") if not shutil.which(t)] + ([] if os.path.exists(NGINX) else ["nginx"])
    if missing:
        print(f"missing {', '.join(missing)}: apt-get install nginx-light wrk util-linux", file=sys.stderr)
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="edge-vs-nginx-"))
    root = tmp / "root"
    for kind, (size, ext, _) in KINDS.items():
        d = root / "bench" / kind
        d.mkdir(parents=True)
        for i in range(COUNT):
            (d / f"f{i:03d}.{ext}").write_bytes(os.urandom(size))
    lua = tmp / "rotate.lua"
    lua.write_text(LUA % {"count": COUNT})
    luas = {"plain": lua}
    if args.cmcd:
        luas["cmcd"] = tmp / "rotate-cmcd.lua"
        luas["cmcd"].write_text(cmcd_lua())
    rows: list[tuple[str, str]] = []  # (server, mode): every server in every mode
    context: ssl.SSLContext | None = None
    tls_args: list[str] = []
    nginx_tls = ""
    if args.tls:
        from vodstack.devcerts import DevCA  # the same test CA the TLS tests make

        ca = DevCA(tmp / "ca", name="bench CA")
        cert, key = ca.issue("bench", hosts=("127.0.0.1",))
        context = ssl.create_default_context(cafile=str(ca.cert_path))
        tls_args = ["--tls-cert", str(cert), "--tls-key", str(key)]
        nginx_tls = (f" ssl; ssl_certificate {cert}; ssl_certificate_key {key}; ssl_protocols TLSv1.2 TLSv1.3; "
                     "ssl_session_cache shared:SSL:10m; ssl_session_timeout 1h")
    scheme = "https" if args.tls else "http"
    results: dict[str, dict[str, float]] = {}
    samples: dict[tuple[str, str, str], list[float]] = {}
    cpu_samples: dict[tuple[str, str, str], list[float]] = {}  # server CPU µs per request
    tick_us = 1e6 / os.sysconf("SC_CLK_TCK")
    load_before = os.getloadavg()[0]
    procs: list[subprocess.Popen] = []
    servers: dict[str, tuple[str, str]] = {}  # name -> (base url, path prefix)
    pids: dict[str, int] = {}
    try:
        port = free_port()
        conf = tmp / "nginx.conf"
        conf.write_text(f"""user root; worker_processes {args.workers}; daemon off; pid {tmp}/nginx.pid; error_log {tmp}/nginx.err;
events {{ worker_connections 4096; }}
http {{ sendfile on; tcp_nopush on; access_log off; keepalive_requests 1000000; types {{}}
  default_type application/octet-stream;
  server {{ listen 127.0.0.1:{port}{nginx_tls}; root {root}; }} }}
""")
        procs.append(subprocess.Popen([*server_pin, NGINX, "-c", str(conf), "-p", str(tmp)]))
        servers["nginx"] = (f"{scheme}://127.0.0.1:{port}", "/bench")
        pids["nginx"] = procs[-1].pid
        origin, origin_url = spawn_listening(
            [*(["taskset", "-c", "1"] if not many else []), sys.executable, "-m", "vodstack", "--log-level",
             "warning", "origin",
             "--storage", str(root), "--port", "0", "--workers", "1"], tmp / "origin.log", "listening on")
        procs.append(origin)
        prefix = f"/t/{sign_token(KEY[0], KEY[1], 'bench', time.time() + 3600)}/bench"
        for variant in args.loops.split(","):
            loop, _, plain = variant.partition("-")  # "uvloop-aiohttp": the same edge with --no-fast-path
            if loop not in ("asyncio", "uvloop") or plain not in ("", "aiohttp"):
                raise SystemExit(f"--loops: expected asyncio, uvloop, asyncio-aiohttp or uvloop-aiohttp, got {variant!r}")
            edge, url = spawn_listening(
                [*server_pin, sys.executable, "-m", "vodstack", "--log-level", "info", "edge",
                 "--origin", origin_url, "--port", "0", "--cache-dir", str(tmp / f"cache-{variant}"),
                 "--ram-mb", "512", "--disk-mb", "1024", "--token-key", f"{KEY[0]}={KEY[1]}",
                 "--event-loop", loop, "--name", f"bench-{variant}", "--workers", str(args.workers), *tls_args]
                + (["--no-fast-path"] if plain else []),
                tmp / f"edge-{variant}.log", "listening on")
            procs.append(edge)
            servers[f"edge-{variant}"] = (url, prefix)
            pids[f"edge-{variant}"] = edge.pid
            for kind, (size, ext, _) in KINDS.items():
                # miss, disk hit, then admitted to RAM (lru+2hit); with workers, each has its own RAM and a new
                # connection reaches any of them: ask until every worker has seen each object twice
                for _ in range(3 if not many else 12 * args.workers):
                    for i in range(COUNT):
                        with urllib.request.urlopen(f"{url}{prefix}/{kind}/f{i:03d}.{ext}", context=context) as r:
                            r.read()
        time.sleep(0.3)
        rows = [(name, mode) for name in servers for mode in luas]
        # interleaved rounds: every server sees the same background load; the median is reported
        for round_no in range(args.rounds):
            for kind in KINDS:
                for name, mode in rows:
                    url, pre = servers[name]
                    if round_no == 0:
                        wrk(url, pre, kind, 1, luas[mode], wrk_pin, wrk_threads)  # warm-up
                    ticks = cpu_ticks(pids[name])
                    rps, requests, _ = wrk(url, pre, kind, args.duration_s, luas[mode], wrk_pin, wrk_threads)
                    samples.setdefault((name, mode, kind), []).append(rps)
                    cpu_samples.setdefault((name, mode, kind), []).append(
                        (cpu_ticks(pids[name]) - ticks) * tick_us / requests)
        for name, mode in rows:
            label = row_name(name, mode)
            results[label] = {kind: statistics.median(samples[(name, mode, kind)]) for kind in KINDS}
            results[label].update({f"{kind}_cpu_us_per_request": statistics.median(cpu_samples[(name, mode, kind)])
                                 for kind in KINDS})
        for name, mode in rows:
            label = row_name(name, mode)
            if name != "nginx" and mode == "plain":
                metrics = urllib.request.urlopen(f"{servers[name][0]}/_/metrics", context=context).read().decode()
                served = {line.split('"')[1]: float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
                          if line.startswith("vodstack_edge_served_bytes_total{")}
                results[label]["ram_byte_share"] = served.get("ram", 0.0) / sum(served.values())
                if args.cmcd:  # the edge saw and parsed the CMCD (its counters), none of it malformed
                    values = [(line.split(" ", 1)[0], float(line.rsplit(" ", 1)[1])) for line in metrics.splitlines()
                              if line.startswith("vodstack_edge_cmcd_")]
                    counted = sum(v for k, v in values if k.startswith("vodstack_edge_cmcd_requests_total"))
                    malformed = sum(v for k, v in values if k.startswith("vodstack_edge_cmcd_malformed_total"))
                    results[row_name(name, "cmcd")]["cmcd_requests"] = counted
                    results[row_name(name, "cmcd")]["cmcd_malformed"] = malformed
    finally:
        for p in procs:
            if NGINX in p.args:
                p.send_signal(signal.SIGQUIT)
                p.wait(10)
            else:
                stop(p)
        shutil.rmtree(tmp, ignore_errors=True)
    load_after = os.getloadavg()[0]
    print(f"{'HTTPS (TLS) on both' if args.tls else 'plain HTTP'}; "
          f"{'workers ' + str(args.workers) + ' each, nothing pinned; ' if many else 'one worker each, pinned; '}"
          f"rounds {args.rounds} x {args.duration_s} s per figure (median); load average before/after "
          f"{load_before:.2f}/{load_after:.2f} on {os.cpu_count()} CPUs")
    print("edge: log level info, access log on (one line per request, to a file in the temp folder)"
          + (", the same for the +cmcd rows" if args.cmcd else ""))
    if args.cmcd:
        print(f"+cmcd: every request carries a CMCD query argument, e.g. {cmcd_query('1MB', 1)}")
    if args.json:
        print(json.dumps(results, indent=2))
    print(f"{'server':<20} {'object':>6} {'req/s':>10} {'MB/s':>9} {'CPU µs/req':>10} {'x nginx':>8} "
          + (f"{'x plain':>8} " if args.cmcd else "") + f"{'target':>12}")
    ok = True
    for name, mode in rows:
        row = results[row_name(name, mode)]
        nginx = results[row_name("nginx", mode)]  # CMCD rows: against nginx serving the same URLs
        plain = results[name]
        for kind, (size, _, _) in KINDS.items():
            rps = row[kind]
            ratio = rps / nginx[kind]
            versus_plain = rps / plain[kind]
            if name == "nginx":
                verdict, ok_here = "", True
            elif mode == "plain":
                ok_here = ratio >= targets[kind]
                verdict = f"{targets[kind]}x nginx" + (" ok" if ok_here else " MISS")
            else:
                against, target = CMCD_TARGETS[kind]
                ok_here = (ratio if against == "nginx" else versus_plain) >= target
                verdict = f"{target}x {against}" + (" ok" if ok_here else " MISS")
            if name == f"edge-{DEFAULT_LOOP}":
                ok = ok and ok_here
            print(f"{row_name(name, mode):<20} {kind:>6} {rps:>10.0f} {rps * size / 1e6:>9.1f} "
                  f"{row[f'{kind}_cpu_us_per_request']:>10.1f} {ratio:>8.2f} "
                  + (f"{'' if mode == 'plain' else format(versus_plain, '.2f'):>8} " if args.cmcd else "")
                  + f"{verdict:>12}")
        if "ram_byte_share" in row:
            print(f"{'':<20} (bytes served from the RAM tier over the whole run: {row['ram_byte_share']:.1%})")
        if "cmcd_requests" in row:
            print(f"{'':<20} (CMCD requests counted by the edge: {row['cmcd_requests']:.0f}, "
                  f"malformed: {row['cmcd_malformed']:.0f})")
            ok = ok and row["cmcd_requests"] > 0 and row["cmcd_malformed"] == 0
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
