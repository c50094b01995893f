"""When upstreams fail: cached objects still served, uncached ones 502/504 in bounded time, stale
playlists served on error, a broken body resumed from the next upstream, corrupt disk parts refetched."""
from __future__ import annotations

import asyncio
import os
import time

import aiohttp
import pytest

from edge_helpers import metric


async def test_origin_down_cached_served_uncached_502_quickly(fake_upstream, start_edge, http):
    upstream = fake_upstream  # a fake: it answers 500 on demand, which a real origin does not
    upstream.put("t1/a.m4s", b"a" * 200_000)
    upstream.put("t1/b.m4s", b"b" * 200_000)
    e = await start_edge(upstream.url)
    async with http.get(e.obj_url("t1/a.m4s")) as r:
        assert r.status == 200
    await e.edge.disk.flush()
    upstream.mode = "error"
    for _ in range(2):  # disk hit, then RAM hit
        async with http.get(e.obj_url("t1/a.m4s")) as r:
            assert r.status == 200 and await r.read() == b"a" * 200_000
    t0 = time.monotonic()
    async with http.get(e.obj_url("t1/b.m4s")) as r:
        assert r.status == 502
    assert time.monotonic() - t0 < 2.0
    async with http.get(f"{e.url}/_/health") as r:
        assert r.status == 200 and (await r.json())["status"] == "ok"


async def test_origin_unreachable_and_hanging(fake_upstream, start_edge, http):
    upstream = fake_upstream  # a fake: it hangs on demand, which a real origin does not
    e = await start_edge("http://127.0.0.1:9", upstream_connect_timeout_s=0.5)  # nothing listens on port 9
    t0 = time.monotonic()
    async with http.get(e.obj_url("t1/x.m4s")) as r:
        assert r.status in (502, 504)
    assert time.monotonic() - t0 < 2.5
    upstream.mode = "hang"
    e2 = await start_edge(upstream.url, upstream_read_timeout_s=0.5)
    t0 = time.monotonic()
    async with http.get(e2.obj_url("t1/y.m4s")) as r:
        assert r.status == 504
    assert time.monotonic() - t0 < 2.5
    async with http.get(f"{e2.url}/_/health") as r:
        assert (await r.json())["status"] == "ok"


async def test_stale_playlist_served_when_every_upstream_fails(fake_upstream, start_edge, http):
    upstream = fake_upstream  # a fake: it answers 500 on demand, which a real origin does not
    upstream.put("t1/index.m3u8", b"#EXTM3U\n")
    upstream.playlist_max_age_s = 0
    e = await start_edge(upstream.url)
    async with http.get(e.obj_url("t1/index.m3u8")) as r:
        assert await r.read() == b"#EXTM3U\n"
    upstream.mode = "error"
    async with http.get(e.obj_url("t1/index.m3u8")) as r:
        assert r.status == 200 and await r.read() == b"#EXTM3U\n"
    text = await (await http.get(f"{e.url}/_/metrics")).text()
    assert metric(text, "vodstack_edge_requests_total", cache="stale") == 1


async def test_broken_body_resumes_from_next_upstream(upstream, start_edge, http, tmp_path):
    from aiohttp import web

    from edge_helpers import TestUpstream, _serve
    data = os.urandom(600_000)
    parent = TestUpstream(mode="cut")
    parent.put("t1/v.m4s", data)
    upstream.put("t1/v.m4s", data)
    parent.etags["t1/v.m4s"] = upstream.etags["t1/v.m4s"]  # the same object on both: the resume may use If-Range
    app = web.Application()
    app.router.add_get("/{key:.+}", parent.handle)
    runners: list = []
    parent.url = await _serve(app, runners)
    try:
        e = await start_edge(upstream.url, parents=(parent.url,))
        async with http.get(e.obj_url("t1/v.m4s")) as r:
            assert r.status == 200 and await r.read() == data
        assert parent.requests["t1/v.m4s"] == 1 and upstream.requests["t1/v.m4s"] == 1
        resumed = upstream.headers_seen[-1]
        assert resumed["Range"].startswith("bytes=") and not resumed["Range"].startswith("bytes=0-")
        assert resumed["If-Range"] == f'"{parent.etags["t1/v.m4s"]}"'
    finally:
        for r in runners:
            await r.cleanup()


async def test_corrupt_disk_part_is_dropped_and_refetched(upstream, start_edge, http, tmp_path):
    data = os.urandom(100_000)
    upstream.put("t1/c.m4s", data)
    e = await start_edge(upstream.url, cache_dir=tmp_path / "c")
    async with http.get(e.obj_url("t1/c.m4s")) as r:
        assert await r.read() == data
    await e.edge.disk.flush()
    await e.stop()
    [path] = list((tmp_path / "c" / "objects").rglob("*.data"))
    raw = bytearray(path.read_bytes())
    raw[5000] ^= 0xFF
    path.write_bytes(bytes(raw))
    e2 = await start_edge(upstream.url, cache_dir=tmp_path / "c")
    async with http.get(e2.obj_url("t1/c.m4s")) as r:
        assert r.status == 200 and await r.read() == data
    assert upstream.requests["t1/c.m4s"] == 2
    text = await (await http.get(f"{e2.url}/_/metrics")).text()
    assert metric(text, "vodstack_edge_corrupt_parts_total") == 1
    await e2.edge.disk.flush()
    assert path.read_bytes() == data  # rewritten whole


async def test_truncated_and_orphan_files_dropped_at_start(upstream, start_edge, http, tmp_path):
    upstream.put("t1/d.m4s", os.urandom(50_000))
    upstream.put("t1/e.m4s", os.urandom(50_000))
    e = await start_edge(upstream.url, cache_dir=tmp_path / "c")
    for k in ("t1/d.m4s", "t1/e.m4s"):
        async with http.get(e.obj_url(k)) as r:
            await r.read()
    await e.edge.disk.flush()
    await e.stop()
    datas = sorted((tmp_path / "c" / "objects").rglob("*.data"))
    with open(datas[0], "r+b") as f:
        f.truncate(1000)
    (datas[0].parent / "deadbeef.data").write_bytes(b"orphan")
    (datas[0].parent / "x.data.1234.tmp").write_bytes(b"half")
    e2 = await start_edge(upstream.url, cache_dir=tmp_path / "c")
    assert e2.edge.disk.dropped_at_start == 2
    assert len(e2.edge.disk) == 1
    assert not list((tmp_path / "c" / "objects").rglob("*.tmp"))
    for k in ("t1/d.m4s", "t1/e.m4s"):
        async with http.get(e2.obj_url(k)) as r:
            assert await r.read() == upstream.objects[k]


async def test_a_body_that_stalls_is_cut_after_the_read_timeout(fake_upstream, start_edge, http):
    """The read timeout bounds the wait for the next body bytes (the edge's own timer, not aiohttp's
    sock_read): a body that stops after its first chunk fails the fill within about that long."""
    upstream = fake_upstream  # a fake: it stalls between chunks, which a real origin does not
    upstream.put("t1/stall.m4s", os.urandom(4 * 64 * 1024))
    upstream.delay_per_chunk_s = 3.0  # after each 64 KiB chunk: far over the read timeout
    e = await start_edge(upstream.url, upstream_read_timeout_s=0.4)
    t0 = time.monotonic()
    with pytest.raises(aiohttp.ClientPayloadError):
        async with http.get(e.obj_url("t1/stall.m4s")) as r:
            assert r.status == 200  # the headers went out with the first bytes
            await r.read()
    assert time.monotonic() - t0 < 2.0  # not the upstream's 3 s pause
    text = await (await http.get(f"{e.url}/_/metrics")).text()
    assert metric(text, "vodstack_edge_fill_errors_total", reason="timeout") == 1
