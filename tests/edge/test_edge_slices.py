"""Large objects: fetched and cached in fixed-size slices with upstream Range requests."""
from __future__ import annotations

import os

from edge_helpers import metric


async def test_range_on_large_cold_object_fetches_slices_only(fake_upstream, start_edge, http):
    upstream = fake_upstream  # a fake: it counts the body bytes it sent, which a real origin does not
    data = os.urandom(8_000_000)
    key = "t1/video/v1/all.mp4"
    upstream.put(key, data)
    upstream.chunk_bytes = 16 * 1024
    e = await start_edge(upstream.url, slice_bytes=256 * 1024, large_object_bytes=1024 * 1024)
    async with http.get(e.obj_url(key), headers={"Range": "bytes=6000000-6000099"}) as r:
        assert r.status == 206 and await r.read() == data[6000000:6000100]
    assert upstream.bytes_sent < 2_000_000  # the probe read stopped after slice 0, then one slice
    ranges = [h.get("Range") for h in upstream.headers_seen]
    assert ranges[0] == f"bytes=0-{256 * 1024 - 1}" and ranges[1] == f"bytes={22 * 256 * 1024}-{23 * 256 * 1024 - 1}"
    assert all(h.get("If-Range") for h in upstream.headers_seen[1:])
    await e.edge.disk.flush()
    # the same range again: a hit, no upstream request
    n = len(upstream.headers_seen)
    async with http.get(e.obj_url(key), headers={"Range": "bytes=6000000-6000099"}) as r:
        assert await r.read() == data[6000000:6000100]
    assert len(upstream.headers_seen) == n
    # a whole GET streams every slice, filling the missing ones
    async with http.get(e.obj_url(key)) as r:
        assert r.status == 200 and await r.read() == data
    async with http.head(e.obj_url(key)) as r:
        assert r.headers["Content-Length"] == str(len(data))
    text = await (await http.get(f"{e.url}/_/metrics")).text()
    assert metric(text, "vodstack_edge_requests_total", status="206") == 2


async def test_slices_survive_restart(upstream, start_edge, http, tmp_path):
    data = os.urandom(3_000_000)
    key = "t1/video/v1/all.mp4"
    upstream.put(key, data)
    e = await start_edge(upstream.url, slice_bytes=256 * 1024, large_object_bytes=1024 * 1024,
                         cache_dir=tmp_path / "c")
    async with http.get(e.obj_url(key)) as r:
        assert await r.read() == data
    await e.edge.disk.flush()
    await e.stop()
    n = len(upstream.headers_seen)
    e2 = await start_edge(upstream.url, slice_bytes=256 * 1024, large_object_bytes=1024 * 1024,
                          cache_dir=tmp_path / "c")
    async with http.get(e2.obj_url(key), headers={"Range": "bytes=1000000-2000000"}) as r:
        assert await r.read() == data[1000000:2000001]
    assert len(upstream.headers_seen) == n
