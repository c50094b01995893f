"""An edge of two worker processes (``vodstack edge --workers 2``) is one edge: one upstream fetch per
object across its workers, one disk tier, metrics and purges for the whole edge, a dead worker
replaced, a SIGHUP reload that drops no request (serverkit/workers.py, edge/workers.py)."""
from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from edge.workers import socket_name
from edge_helpers import KEYS, metric, tok
from tests.procs import keepalive_gets

REPO = Path(__file__).resolve().parents[2]
BODY_CLIENTS = 40


async def start_master(origin: str, cache: Path, log: Path, *extra: str) -> tuple[asyncio.subprocess.Process, str]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "vodstack", "edge", "--workers", "2", "--origin", origin, "--port", "0",
        "--cache-dir", str(cache), "--ram-mb", "16", "--disk-mb", "64", "--token-key", f"k1={KEYS['k1']}",
        "--admin-key", "admin", "--name", "w2", *extra, cwd=REPO, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=open(log, "ab"))
    assert proc.stdout is not None
    line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
    assert "listening on http://127.0.0.1:" in line and "(2 workers)" in line, (line, log.read_text()[-2000:])
    return proc, line.split(" listening on ", 1)[1].split(" ", 1)[0]


async def stop(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 20) == 0


async def worker_get(master_pid: int, slot: int, path: str, generation: int = 1) -> tuple[int, bytes]:
    """Ask one worker for itself, on its unix socket."""
    connector = aiohttp.UnixConnector(path=socket_name(master_pid, generation, slot))
    async with aiohttp.ClientSession(connector=connector) as s:
        async with s.get(f"http://worker{path}?worker=local") as r:
            return r.status, await r.read()


async def wait_for(predicate, what: str, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not await predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def test_two_workers_fetch_a_cold_object_once_and_count_as_one_edge(upstream, tmp_path):
    body = os.urandom(300_000)
    upstream.put("t1/seg.m4s", body)
    upstream.gate = asyncio.Event()  # the origin holds the fill until both workers are waiting on it
    proc, url = await start_master(upstream.url, tmp_path / "cache", tmp_path / "edge.log")
    try:
        connector = aiohttp.TCPConnector(force_close=True)  # a connection per client: the kernel spreads them
        async with aiohttp.ClientSession(connector=connector) as s:
            async def client() -> bytes:
                async with s.get(f"{url}/t/{tok('t1')}/t1/seg.m4s") as r:
                    assert r.status == 200
                    return await r.read()

            clients = [asyncio.ensure_future(client()) for _ in range(BODY_CLIENTS)]

            async def both_waiting() -> bool:
                active = [json.loads((await worker_get(proc.pid, slot, "/_/health"))[1])["active_requests"]
                          for slot in (0, 1)]
                return all(a >= 1 for a in active)

            await wait_for(both_waiting, "requests in both workers")
            upstream.gate.set()
            bodies = await asyncio.gather(*clients)
            assert all(b == body for b in bodies)
            assert upstream.requests["t1/seg.m4s"] == 1  # one fetch for the edge, not one per worker

            per_worker = [(await worker_get(proc.pid, slot, "/_/metrics"))[1].decode() for slot in (0, 1)]
            counts = [sum(metric(t, "vodstack_edge_requests_total", cache=c) for c in ("miss", "coalesced"))
                      for t in per_worker]
            assert all(c >= 1 for c in counts) and sum(counts) == BODY_CLIENTS, counts
            whole = await (await s.get(f"{url}/_/metrics")).text()
            assert metric(whole, "vodstack_edge_workers") == 2
            assert sum(metric(whole, "vodstack_edge_requests_total", cache=c)
                       for c in ("miss", "coalesced")) == BODY_CLIENTS
            assert metric(whole, "vodstack_edge_served_bytes_total") == BODY_CLIENTS * len(body)
            health = await (await s.get(f"{url}/_/health")).json()
            assert health["workers"] == 2 and health["ram_limit_bytes"] == 16 * 1024 * 1024

            # one disk tier: the part is on disk once, in the file of the worker that fetched it
            assert len(list((tmp_path / "cache").rglob("*.meta"))) == 1

            # a purge through either worker purges the whole edge: the next request goes upstream again
            r = await s.post(f"{url}/_/purge", json={"keys": ["t1/seg.m4s"]}, headers={"X-Admin-Key": "admin"})
            assert r.status == 200 and (await r.json())["purged_parts"] >= 2  # RAM in both, disk in one
            for _ in range(6):
                assert await client() == body
            assert upstream.requests["t1/seg.m4s"] == 2
    finally:
        upstream.gate.set()
        await stop(proc)


async def test_a_killed_worker_is_replaced_and_a_reload_drops_no_request(upstream, tmp_path):
    body = os.urandom(50_000)
    upstream.put("t1/a.m4s", body)
    log = tmp_path / "edge.log"
    proc, url = await start_master(upstream.url, tmp_path / "cache", log)
    failures: list[str] = []
    answers = [0]
    running = True
    try:
        def done_() -> int:
            return answers[0]

        clients = [asyncio.ensure_future(keepalive_gets(url, f"/t/{tok('t1')}/t1/a.m4s", body, lambda: running,
                                                        failures, answers)) for _ in range(4)]
        await wait_for(lambda: _true(done_() > 20), "first requests")

        for n in (1, 2):  # two reloads, one after the other
            proc.send_signal(signal.SIGHUP)
            await wait_for(lambda: _true(log.read_text().count("msg=reloaded") >= n
                                         or log.read_text().count("reloaded") >= n), f"reload {n}")
            before = done_()
            await wait_for(lambda: _true(done_() > before + 20), "requests after the reload")
        await wait_for(lambda: _true(log.read_text().count("worker retired") >= 4), "old workers retired")
        assert "code=0" in log.read_text().split("worker retired", 1)[1].split("\n", 1)[0]
        status, _ = await worker_get(proc.pid, 0, "/_/health", generation=3)
        assert status == 200

        running = False
        await asyncio.gather(*clients)
        assert failures == []

        # a worker killed: logged, replaced in its slot, and the edge serves on
        status, raw = await worker_get(proc.pid, 1, "/_/health", generation=3)
        pid_file = [line for line in log.read_text().splitlines() if "worker started" in line and "slot=1" in line]
        victim = int(pid_file[-1].split("pid=")[1].split()[0])
        os.kill(victim, signal.SIGKILL)
        await wait_for(lambda: _true("worker exited; replacing it" in log.read_text()), "the replacement")

        async def replaced() -> bool:
            try:
                return (await worker_get(proc.pid, 1, "/_/health", generation=3))[0] == 200
            except aiohttp.ClientError:
                return False

        await wait_for(replaced, "the new worker in slot 1")
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as s:
            for _ in range(20):
                async with s.get(f"{url}/t/{tok('t1')}/t1/a.m4s") as r:
                    assert r.status == 200 and await r.read() == body
    finally:
        running = False
        await stop(proc)
    # no worker outlives its master
    await asyncio.sleep(0)
    assert not any(_alive(int(line.split("pid=")[1].split()[0]))
                   for line in log.read_text().splitlines() if "worker started" in line)


async def _true(value: bool) -> bool:
    return value


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie still answers kill(0): look at its state
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


@pytest.mark.parametrize("bad", ["-1"])
async def test_bad_worker_count_is_one_line(bad, tmp_path):
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "vodstack", "edge", "--workers", bad, "--origin", "http://127.0.0.1:9",
        "--cache-dir", str(tmp_path / "c"), cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 2
    lines = err.decode().strip().splitlines()
    assert len(lines) == 1 and "workers" in lines[0], lines


async def test_disk_files_by_slot_read_by_siblings_and_adopted_when_the_count_shrinks(tmp_path):
    from edge.disk import DiskTier
    from edge.objects import CachedPart, ObjectMeta

    def part(body: bytes) -> CachedPart:
        meta = ObjectMeta(key="t1/a.m4s", size_bytes=len(body), etag="e1", last_modified_s=0.0, max_age_s=60.0)
        return CachedPart(meta=meta, base_bytes=0, body=body, fetched_at_s=1.0)

    w0, w1 = (DiskTier(tmp_path, 1 << 20, slot=s, count=2) for s in (0, 1))
    await w0.open()
    await w1.open()
    assert await w1.put("t1/a.m4s", part(b"from one")) is True
    assert [p.name.split(".", 1)[1] for p in tmp_path.rglob("*.meta")] == ["w1.meta"]
    assert (await w1.get("t1/a.m4s")).body == b"from one" and w1.corrupt == 0  # its own file, by its slot
    assert await w0.get("t1/a.m4s") is None  # not in worker 0's index...
    assert (await w0.borrow("t1/a.m4s")).body == b"from one"  # ...but read from worker 1's committed copy
    assert (await w0.lookup("t1/a.m4s")).part.body == b"from one"
    await w0.delete("t1/a.m4s")  # nothing of its own to delete: the sibling's file stays
    assert (await w1.get("t1/a.m4s")).body == b"from one"

    (tmp_path / "objects" / "zz").mkdir()
    half = tmp_path / "objects" / "zz" / "x.data.999999.abcd.tmp"  # a dead writer's temp file
    half.write_bytes(b"half")
    alone = DiskTier(tmp_path, 1 << 20, slot=0, count=1)  # a reload to one worker: it owns every slot's files
    await alone.open()
    assert len(alone) == 1 and (await alone.get("t1/a.m4s")).body == b"from one" and alone.corrupt == 0
    assert not half.exists()


async def test_two_workers_filling_the_same_objects_at_once_leave_no_torn_object(upstream, tmp_path):
    from edge.disk import DiskTier

    bodies = {f"t1/s{i:02d}.m4s": os.urandom(50_000 + 997 * i) for i in range(20)}
    for key, body in bodies.items():
        upstream.put(key, body)
    cache = tmp_path / "cache"
    proc, url = await start_master(upstream.url, cache, tmp_path / "edge.log")
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as s:
            async def get(key: str) -> bytes:
                async with s.get(f"{url}/t/{tok('t1')}/{key}") as r:
                    assert r.status == 200
                    return await r.read()

            keys = [k for k in bodies for _ in range(10)]  # ten clients per object, all at once, both workers
            got = await asyncio.gather(*(get(k) for k in keys))
            assert all(g == bodies[k] for k, g in zip(keys, got))
            twice = {k: n for k, n in upstream.requests.items() if n != 1}
            assert not twice, twice  # one fetch per object for the edge
    finally:
        await stop(proc)
    # what the two workers left on disk: one whole, verified copy of each object, nothing half-written
    assert not list(cache.rglob("*.tmp"))
    alone = DiskTier(cache, 1 << 30, slot=0, count=1)  # one worker adopts every slot's files
    await alone.open()
    assert alone.dropped_at_start == 0 and len(alone) == len(bodies)
    for key, body in bodies.items():
        part = await alone.get(key)
        assert part is not None and part.body == body
    assert alone.corrupt == 0
