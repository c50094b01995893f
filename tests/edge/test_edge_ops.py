"""Ops: bounds under a random workload, purge, prefill (completeness and rate), heartbeats, chains."""
from __future__ import annotations

import asyncio
import json
import os
import random
import time
from pathlib import Path

from aiohttp import web

from edge_helpers import _serve, metric, wait_for


def _disk_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in (root / "objects").rglob("*") if p.is_file())


async def test_ram_and_disk_never_exceed_their_bounds(upstream, start_edge, http, tmp_path):
    rng = random.Random(4)
    keys = [f"t{i % 3}/v/{i:05d}.m4s" for i in range(60)]
    for k in keys:
        upstream.put(k, os.urandom(rng.randint(10_000, 400_000)))
    e = await start_edge(upstream.url, ram_mb=1, disk_mb=3, cache_dir=tmp_path / "c")
    ram_limit, disk_limit = e.edge.ram.limit_bytes, e.edge.disk.limit_bytes
    for i in range(300):
        k = keys[min(int(rng.paretovariate(1.0)) - 1, len(keys) - 1)] if rng.random() < 0.7 else rng.choice(keys)
        hdrs = {"Range": f"bytes={rng.randint(0, 5000)}-"} if rng.random() < 0.2 else {}
        async with http.get(e.obj_url(k), headers=hdrs) as r:
            assert r.status in (200, 206)
            body = await r.read()
            assert body == upstream.objects[k][len(upstream.objects[k]) - len(body):]
        assert e.edge.ram.used_bytes <= ram_limit
        assert e.edge.disk.used_bytes <= disk_limit
        if i % 25 == 0:
            await e.edge.disk.flush()
            assert _disk_bytes(tmp_path / "c") <= disk_limit
    await e.edge.disk.flush()
    assert _disk_bytes(tmp_path / "c") <= disk_limit
    text = await (await http.get(f"{e.url}/_/metrics")).text()
    assert metric(text, "vodstack_edge_evictions_total", tier="disk") > 0
    assert metric(text, "vodstack_edge_cache_bytes", tier="ram") <= ram_limit


async def test_purge_by_key_and_prefix(upstream, start_edge, http):
    for k in ("t1/a.m4s", "t1/b.m4s", "t2/a.m4s"):
        upstream.put(k, k.encode() * 100)
    e = await start_edge(upstream.url)
    for k in ("t1/a.m4s", "t1/b.m4s", "t2/a.m4s"):
        async with http.get(e.obj_url(k)) as r:
            await r.read()
    await e.edge.disk.flush()
    async with http.post(f"{e.url}/_/purge", json={"keys": ["t1/a.m4s"]}) as r:
        assert r.status == 403
    async with http.post(f"{e.url}/_/purge", json={"keys": ["t1/a.m4s"]}, headers={"X-Admin-Key": "admin"}) as r:
        assert r.status == 200 and (await r.json())["purged_parts"] >= 1
    async with http.post(f"{e.url}/_/purge", json={"prefix": "t2/"}, headers={"X-Admin-Key": "admin"}) as r:
        assert r.status == 200
    for k in ("t1/a.m4s", "t1/b.m4s", "t2/a.m4s"):
        async with http.get(e.obj_url(k)) as r:
            assert await r.read() == upstream.objects[k]
    assert [upstream.requests[k] for k in ("t1/a.m4s", "t1/b.m4s", "t2/a.m4s")] == [2, 1, 2]


def _title(upstream, title: str, renditions: int, segments: int, seg_bytes: int, byterange: bool = False) -> list[str]:
    doc: dict = {"format": "vodstack-title/1", "title": title, "duration_s": 4.0 * segments,
                 "segment_duration_s": 4.0, "layout": "byterange" if byterange else "segments",
                 "video": [], "audio": [], "subtitles": [], "iframes": []}
    upstream.put(f"{title}/master.m3u8", b"#EXTM3U\n")
    paths = ["master.m3u8"]
    for r in range(renditions):
        track = {"id": f"v{r}", "codec": "avc1", "codec_family": "h264", "width": 640, "height": 360,
                 "frame_rate": 25.0, "nominal_bitrate_kbps": 1, "bandwidth_bps": 1, "average_bandwidth_bps": 1,
                 "playlist": f"video/v{r}/index.m3u8", "init": {"path": f"video/v{r}/init.mp4", "size_bytes": 800},
                 "segments": []}
        upstream.put(f"{title}/video/v{r}/index.m3u8", b"#EXTM3U\n#x\n")
        upstream.put(f"{title}/video/v{r}/init.mp4", os.urandom(800))
        paths += [track["playlist"], track["init"]["path"]]
        if byterange:
            whole = os.urandom(seg_bytes * segments)
            upstream.put(f"{title}/video/v{r}/all.mp4", whole)
            track["segments"] = [{"path": f"video/v{r}/all.mp4", "duration_s": 4.0, "size_bytes": seg_bytes,
                                  "offset_bytes": i * seg_bytes} for i in range(segments)]
            paths.append(f"video/v{r}/all.mp4")
        else:
            for i in range(segments):
                p = f"video/v{r}/{i + 1:05d}.m4s"
                upstream.put(f"{title}/{p}", os.urandom(seg_bytes))
                track["segments"].append({"path": p, "duration_s": 4.0, "size_bytes": seg_bytes, "offset_bytes": None})
                paths.append(p)
        doc["video"].append(track)
    upstream.put(f"{title}/title.json", json.dumps(doc).encode())
    return paths


async def test_prefill_fills_title_completely_at_the_rate(upstream, start_edge, http):
    paths = _title(upstream, "m1", renditions=2, segments=6, seg_bytes=60_000)
    br_paths = _title(upstream, "m2", renditions=1, segments=10, seg_bytes=50_000, byterange=True)
    total = sum(len(upstream.objects[f"m1/{p}"]) for p in paths) + len(upstream.objects["m1/title.json"])
    e = await start_edge(upstream.url, fill_rate_mbps=4.0, slice_bytes=64 * 1024, large_object_bytes=128 * 1024)
    adm = {"X-Admin-Key": "admin"}
    async with http.post(f"{e.url}/_/prefill", json={"titles": ["m1"]}) as r:
        assert r.status == 403
    async with http.post(f"{e.url}/_/prefill", json={"titles": ["m1"]}, headers=adm) as r:
        assert r.status == 202
        job_id = (await r.json())["id"]
    t0 = time.monotonic()
    while True:
        async with http.get(f"{e.url}/_/prefill/{job_id}", headers=adm) as r:
            job = await r.json()
        if job["state"] in ("done", "failed"):
            break
        assert time.monotonic() - t0 < 10
        await asyncio.sleep(0.05)
    assert job["state"] == "done" and job["objects_total"] == len(paths) == job["objects_done"]
    assert job["bytes_filled"] == total
    expected_s = total * 8 / 4e6
    # the pacing holds the fill back (one-sided: a busy machine can only make it slower)
    assert job["rate_achieved_mbps"] <= 4.0 * 1.10, job
    assert job["elapsed_s"] >= expected_s * 0.9
    await e.edge.disk.flush()
    for p in paths:
        assert f"m1/{p}" in e.edge.disk, p
    n = sum(upstream.requests.values())
    async with http.get(e.obj_url("m1/video/v1/00006.m4s")) as r:
        assert await r.read() == upstream.objects["m1/video/v1/00006.m4s"]
    assert sum(upstream.requests.values()) == n  # a disk hit
    # byte-range layout: the large file is filled slice by slice
    async with http.post(f"{e.url}/_/prefill", json={"titles": ["m2"], "rate_mbps": 50}, headers=adm) as r:
        job_id = (await r.json())["id"]
    for _ in range(200):
        async with http.get(f"{e.url}/_/prefill/{job_id}", headers=adm) as r:
            job = await r.json()
        if job["state"] == "done":
            break
        await asyncio.sleep(0.05)
    assert job["state"] == "done", job
    await e.edge.disk.flush()
    n = sum(upstream.requests.values())
    async with http.get(e.obj_url("m2/video/v0/all.mp4"), headers={"Range": "bytes=250000-349999"}) as r:
        assert await r.read() == upstream.objects["m2/video/v0/all.mp4"][250000:350000]
    assert sum(upstream.requests.values()) == n


async def test_heartbeats_reach_steering_and_survive_its_absence(upstream, start_edge, http):
    beats: list[dict] = []

    async def heartbeat(request: web.Request) -> web.Response:
        beats.append(await request.json())
        return web.json_response({"ok": True})

    refused: list[dict] = []

    async def refuse(request: web.Request) -> web.Response:
        refused.append(await request.json())
        return web.json_response({"error": "down"}, status=503)

    app = web.Application()
    app.router.add_post("/edges/heartbeat", heartbeat)
    down = web.Application()
    down.router.add_post("/edges/heartbeat", refuse)
    runners: list = []
    steering = await _serve(app, runners)
    steering_down = await _serve(down, runners)
    try:
        e = await start_edge(upstream.url, steering=steering, heartbeat_interval_s=0.1, region="eu")
        await wait_for(lambda: len(beats) >= 2)
        beat = beats[-1]
        assert beat["name"] == e.cfg.name and beat["region"] == "eu" and beat["status"] == "ok"
        for field in ("active_connections", "bytes_out_per_s", "ram_fullness", "disk_fullness", "hit_ratio", "url"):
            assert field in beat
        e2 = await start_edge(upstream.url, steering=steering_down, heartbeat_interval_s=0.1)
        await wait_for(lambda: len(refused) >= 3)  # the steering service answers 503, again and again
        async with http.get(f"{e2.url}/_/health") as r:
            assert r.status == 200 and (await r.json())["status"] == "ok"
    finally:
        for r in runners:
            await r.cleanup()


async def test_chain_edge_parent_origin_and_peer(start_origin_app, start_edge, http):
    data = os.urandom(700_000)
    origin = await start_origin_app({"t1/video/v1/00001.m4s": data, "t1/master.m3u8": b"#EXTM3U\n"})
    parent = await start_edge(origin, name="parent")
    child = await start_edge(origin, parents=(parent.url,), name="child")
    async with http.get(child.obj_url("t1/video/v1/00001.m4s")) as r:
        assert r.status == 200 and await r.read() == data
    async with http.get(child.obj_url("t1/video/v1/00001.m4s"), headers={"Range": "bytes=100-199"}) as r:
        assert r.status == 206 and await r.read() == data[100:200]
    ptext = await (await http.get(f"{parent.url}/_/metrics")).text()
    assert metric(ptext, "vodstack_edge_requests_total", cache="miss") == 1
    ctext = await (await http.get(f"{child.url}/_/metrics")).text()
    assert metric(ctext, "vodstack_edge_fill_bytes_total", upstream=f"parent:{parent.url}") == len(data)
    # a peer of the child asks it cache-only first: hit there, nothing more at the parent
    await child.edge.disk.flush()
    peer = await start_edge(origin, peers=(child.url,), parents=(parent.url,), name="peer")
    async with http.get(peer.obj_url("t1/video/v1/00001.m4s")) as r:
        assert await r.read() == data
    # an object the child lacks: the peer's cache-only ask is a quick 404, then the parent fills
    async with http.get(peer.obj_url("t1/master.m3u8")) as r:
        assert await r.read() == b"#EXTM3U\n"
    ptext2 = await (await http.get(f"{parent.url}/_/metrics")).text()
    assert metric(ptext2, "vodstack_edge_requests_total", cache="miss") == 2
    ctext2 = await (await http.get(f"{child.url}/_/metrics")).text()
    assert metric(ctext2, "vodstack_edge_requests_total", status="404") == 1
    async with http.get(peer.obj_url("t1/nope.m4s")) as r:
        assert r.status == 404
