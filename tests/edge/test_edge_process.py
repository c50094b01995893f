"""The edge as a real process (``python -m vodstack edge``): SIGKILL mid-fill and restart, SIGTERM
draining, and one-line errors for bad input."""
from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from pathlib import Path

import aiohttp
import pytest

from edge_helpers import metric
from edge_helpers import KEYS, tok

REPO = Path(__file__).resolve().parents[2]


async def spawn(*args: str, log: Path) -> tuple[asyncio.subprocess.Process, str]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "vodstack", "edge", *args, cwd=REPO, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=open(log, "ab"))
    assert proc.stdout is not None
    line = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode()
    assert " listening on http://127.0.0.1:" in line, (line, log.read_text()[-2000:])
    return proc, line.rsplit(" ", 1)[1].strip()


def edge_args(origin: str, cache: Path) -> list[str]:
    return ["--origin", origin, "--port", "0", "--cache-dir", str(cache), "--ram-mb", "16", "--disk-mb", "64",
            "--token-key", f"k1={KEYS['k1']}", "--admin-key", "admin", "--name", "proc"]


async def test_restart_after_sigkill_mid_fill(fake_upstream, tmp_path):
    upstream = fake_upstream  # a fake: it trickles the body so the kill lands mid-fill, which a real origin does not
    a, b = os.urandom(200_000), os.urandom(2_000_000)
    upstream.put("t1/a.m4s", a)
    upstream.put("t1/b.m4s", b)
    cache = tmp_path / "cache"
    proc, url = await spawn(*edge_args(upstream.url, cache), log=tmp_path / "edge.log")
    try:
        async with aiohttp.ClientSession() as s:
            async with s.get(f"{url}/t/{tok('t1')}/t1/a.m4s") as r:
                assert await r.read() == a
            for _ in range(100):  # written behind the fill
                if list(cache.rglob("*.meta")):
                    break
                await asyncio.sleep(0.02)
            upstream.delay_per_chunk_s = 0.05  # b takes ~1.5 s to fill
            async with s.get(f"{url}/t/{tok('t1')}/t1/b.m4s") as r:
                await r.content.readexactly(64 * 1024)
                proc.send_signal(signal.SIGKILL)
                await proc.wait()
                with pytest.raises((aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError,
                                    asyncio.IncompleteReadError, aiohttp.ClientConnectionError)):
                    await r.read()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    upstream.delay_per_chunk_s = 0.0
    proc, url = await spawn(*edge_args(upstream.url, cache), log=tmp_path / "edge.log")
    assert not list(cache.rglob("*.tmp"))  # what the kill left half-written is gone at start
    try:
        async with aiohttp.ClientSession() as s:
            async with s.get(f"{url}/t/{tok('t1')}/t1/b.m4s") as r:
                assert r.status == 200 and await r.read() == b  # never a truncated b
            async with s.get(f"{url}/t/{tok('t1')}/t1/a.m4s") as r:
                assert await r.read() == a
            text = await (await s.get(f"{url}/_/metrics")).text()
        assert metric(text, "vodstack_edge_requests_total", cache="disk_hit") == 1
        assert upstream.requests["t1/a.m4s"] == 1 and upstream.requests["t1/b.m4s"] == 2
    finally:
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 10) == 0


async def test_sigterm_drains_then_exits_zero(fake_upstream, tmp_path):
    upstream = fake_upstream  # a fake: it trickles the body so a response is in flight at SIGTERM, which a real origin does not
    data = os.urandom(1_000_000)
    upstream.put("t1/slow.m4s", data)
    upstream.put("t1/other.m4s", b"x")
    upstream.delay_per_chunk_s = 0.06  # ~1 s
    proc, url = await spawn(*edge_args(upstream.url, tmp_path / "c"), log=tmp_path / "edge.log")
    try:
        async with aiohttp.ClientSession() as s, aiohttp.ClientSession() as s2:
            async with s.get(f"{url}/t/{tok('t1')}/t1/slow.m4s") as r:
                first = await r.content.readexactly(64 * 1024)
                proc.send_signal(signal.SIGTERM)
                for _ in range(500):  # until the signal is handled: health turns to draining, never back
                    async with s2.get(f"{url}/_/health") as h:
                        if h.status == 503:
                            assert (await h.json())["status"] == "draining"
                            break
                        assert h.status == 200
                    await asyncio.sleep(0.01)
                else:
                    raise AssertionError("the edge never reported draining after SIGTERM")
                async with s2.get(f"{url}/t/{tok('t1')}/t1/other.m4s") as n:
                    assert n.status == 503 and n.headers["Retry-After"]
                rest = await r.read()
            assert first + rest == data
        assert await asyncio.wait_for(proc.wait(), 10) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


def _run_cli(*args: str) -> tuple[int, str]:
    """Exit code and stderr; the error must be exactly one line, the last one."""
    import subprocess
    p = subprocess.run([sys.executable, "-m", "vodstack", "edge", *args], cwd=REPO, capture_output=True,
                       text=True, timeout=30, env=dict(os.environ, PYTHONPATH=str(REPO)))
    lines = p.stderr.strip().splitlines()
    assert lines and lines[-1].startswith("vodstack: error: "), p.stderr
    assert sum("error" in line.lower() for line in lines) == 1 and "Traceback" not in p.stderr, p.stderr
    return p.returncode, lines[-1]


def test_bad_input_is_one_line_and_nonzero(tmp_path):
    base = ["--origin", "http://127.0.0.1:9", "--cache-dir", str(tmp_path / "c"), "--token-key", "k1=s"]
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        code, err = _run_cli(*base, "--port", str(busy.getsockname()[1]))
    assert code != 0 and "cannot listen" in err, err
    code, err = _run_cli(*base, "--port", "0", "--token-key", "nokey")
    assert code != 0 and "--token-key" in err, err
    code, err = _run_cli(*base, "--port", "0", "--breaker-failures", "0")
    assert code != 0 and "breaker_failures" in err, err
    code, err = _run_cli(*base, "--port", "0", "--stale-deadline", "-1")
    assert code != 0 and "stale_deadline_s" in err, err
    (tmp_path / "file").write_text("x")
    code, err = _run_cli("--origin", "http://127.0.0.1:9", "--port", "0", "--token-key", "k1=s",
                         "--cache-dir", str(tmp_path / "file" / "sub"))
    assert code != 0 and "not writable" in err, err
    code, err = _run_cli("--port", "0", "--cache-dir", str(tmp_path / "c"))
    assert code != 0 and "origin" in err, err


async def test_a_pooled_upstream_connection_is_not_poisoned_by_a_read_timer(start_origin_app, tmp_path):
    """aiohttp 3.14.5 under uvloop (an edge's loop with --event-loop uvloop) re-arms ``sock_read`` on a
    connection back in the pool once a body whose last bytes paused reading is drained (the variant of
    aio-libs/aiohttp#12953 its fix does not cover); the next request on
    that connection fails at once, and the player saw a 504 in 2 ms while the origin was answering.
    The edge's fills time their reads themselves: fills after an idle spell longer than the read
    timeout succeed. The origin app sends each body in one write, as the real origin does."""
    objects = {f"t1/big{n}.m4s": os.urandom(3_000_000) for n in range(3)}
    objects.update({f"t1/after{n}.m4s": b"x" * 1000 for n in range(3)})
    origin = await start_origin_app(objects)
    config = tmp_path / "edge.toml"
    config.write_text("[edge]\nupstream_read_timeout_s = 0.3\nevent_loop = \"uvloop\"\n")
    proc, url = await spawn(*edge_args(origin, tmp_path / "cache"), "--ram-mb", "64", "--config", str(config),
                            log=tmp_path / "edge.log")
    try:
        async with aiohttp.ClientSession() as s:
            for n in range(3):  # big bodies arrive faster than the fill takes them: reading pauses
                async with s.get(f"{url}/t/{tok('t1')}/t1/big{n}.m4s") as r:
                    assert r.status == 200 and await r.read() == objects[f"t1/big{n}.m4s"]
            await asyncio.sleep(0.6)  # idle for longer than the read timeout
            for n in range(3):
                async with s.get(f"{url}/t/{tok('t1')}/t1/after{n}.m4s") as r:
                    assert r.status == 200, (await r.text(), (tmp_path / "edge.log").read_text()[-1500:])
    finally:
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 10) == 0
