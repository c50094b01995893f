"""The serving path against our origin over a folder: misses, hits by tier, HTTP semantics, tokens, 404s."""
from __future__ import annotations

import os

from edge_helpers import FakeClock, metric
from edge_helpers import tok


async def test_miss_then_hits_with_origin_semantics(upstream, start_edge, http):
    data = os.urandom(300_000)
    upstream.put("t1/video/v1/00001.m4s", data)
    e = await start_edge(upstream.url)
    url = e.obj_url("t1/video/v1/00001.m4s")
    for expected in ("miss", "disk", "ram"):
        async with http.get(url) as r:
            assert r.status == 200
            assert await r.read() == data
            assert r.headers["Content-Type"] == "video/iso.segment"
            assert "immutable" in r.headers["Cache-Control"]
            assert r.headers["ETag"] == f'"{upstream.etags["t1/video/v1/00001.m4s"]}"'
            etag = r.headers["ETag"]
        await e.edge.disk.flush()
    assert upstream.requests["t1/video/v1/00001.m4s"] == 1
    text = await (await http.get(f"{e.url}/_/metrics")).text()
    for result in ("miss", "disk_hit", "ram_hit"):
        assert metric(text, "vodstack_edge_requests_total", cache=result) == 1, result
    async with http.get(url, headers={"Range": "bytes=10-19"}) as r:
        assert r.status == 206 and await r.read() == data[10:20]
        assert r.headers["Content-Range"] == f"bytes 10-19/{len(data)}"
    async with http.get(url, headers={"If-None-Match": etag}) as r:
        assert r.status == 304
    async with http.head(url) as r:
        assert r.status == 200 and r.headers["Content-Length"] == str(len(data))
    async with http.get(url, headers={"Range": f"bytes={len(data)}-"}) as r:
        assert r.status == 416


async def test_token_refusals_serve_nothing(upstream, start_edge, http):
    upstream.put("t1/a.m4s", b"x" * 1000)
    e = await start_edge(upstream.url)
    for token in ("nope", tok("t2"), tok("t1", ttl_s=-5), tok("t1")[:-2] + "AA"):
        async with http.get(f"{e.url}/t/{token}/t1/a.m4s") as r:
            assert r.status == 403
            assert b"x" not in await r.read()
    assert upstream.requests["t1/a.m4s"] == 0
    async with http.get(f"{e.url}/t/{tok('t1', kid='k2')}/t1/a.m4s") as r:
        assert r.status == 200


async def test_404_is_negatively_cached(upstream, start_edge, http):
    clock = FakeClock()
    e = await start_edge(upstream.url, negative_ttl_s=0.5, clock=clock)
    url = e.obj_url("t1/missing.m4s")
    for _ in range(3):
        async with http.get(url) as r:
            assert r.status == 404
    assert upstream.requests["t1/missing.m4s"] == 1
    upstream.put("t1/missing.m4s", b"now here")
    clock.advance(0.4)  # still inside the negative TTL: the 404 stands although the object is there
    async with http.get(url) as r:
        assert r.status == 404
    assert upstream.requests["t1/missing.m4s"] == 1
    clock.advance(0.2)  # past it
    async with http.get(url) as r:
        assert r.status == 200 and await r.read() == b"now here"
    assert upstream.requests["t1/missing.m4s"] == 2


async def test_playlist_revalidated_after_ttl(upstream, start_edge, http):
    upstream.put("t1/video/v1/index.m3u8", b"#EXTM3U\n#v1\n")
    clock = FakeClock()
    e = await start_edge(upstream.url, playlist_ttl_s=0.3, stale_while_revalidate_s=0, clock=clock)
    url = e.obj_url("t1/video/v1/index.m3u8")
    # the origin here sends max-age=1 for playlists; the edge honours the upstream's max-age
    async with http.get(url) as r:
        assert await r.read() == b"#EXTM3U\n#v1\n"
        assert r.headers["Cache-Control"] == "public, max-age=1"
    async with http.get(url) as r:
        await r.read()
    assert upstream.requests["t1/video/v1/index.m3u8"] == 1
    clock.advance(0.9)  # past the edge's own 0.3 s, inside the upstream's max-age=1: still fresh
    async with http.get(url) as r:
        assert await r.read() == b"#EXTM3U\n#v1\n"
    assert upstream.requests["t1/video/v1/index.m3u8"] == 1
    clock.advance(0.2)
    async with http.get(url) as r:  # stale: conditional request upstream, 304
        assert await r.read() == b"#EXTM3U\n#v1\n"
    assert upstream.requests["t1/video/v1/index.m3u8"] == 2
    assert upstream.headers_seen[-1].get("If-None-Match") == f'"{upstream.etags["t1/video/v1/index.m3u8"]}"'
    upstream.put("t1/video/v1/index.m3u8", b"#EXTM3U\n#v2\n")
    clock.advance(1.1)
    async with http.get(url) as r:  # stale, changed upstream: new body
        assert await r.read() == b"#EXTM3U\n#v2\n"
    text = await (await http.get(f"{e.url}/_/metrics")).text()
    assert metric(text, "vodstack_edge_requests_total", cache="revalidated") == 2


async def test_bad_paths(upstream, start_edge, http):
    e = await start_edge(upstream.url)
    async with http.get(f"{e.url}/t/{tok('t1')}/t1/a/../../etc/passwd") as r:
        assert r.status in (400, 403, 404)
    async with http.get(f"{e.url}/nothing") as r:
        assert r.status == 404
