"""What an upstream's answers become at the edge: an origin 4xx passes through (same status, short body)
and is negatively cached briefly; a peer's 404 means "ask the next one"; only 5xx, timeouts and connection
errors are failures (502/504), never remembered. A 416 to the edge's own probe is an answer (an empty
object), and zero-length objects are served right on every path."""
from __future__ import annotations

import os
from pathlib import Path
from typing import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest
from aiohttp import web

from edge_helpers import FakeClock, TestUpstream, _serve, metric


@pytest.fixture
async def local_origin(tmp_path: Path) -> AsyncIterator[Callable[[], Awaitable[tuple[str, Path]]]]:
    """The real origin app over a LocalStorage folder: (url, root)."""
    from origin.server.config import OriginConfig
    from origin.server.app import build_app as build_origin
    from origin.storage.local import LocalStorage

    runners: list[web.AppRunner] = []

    async def start() -> tuple[str, Path]:
        root = tmp_path / "titles"
        storage = LocalStorage(root)
        return await _serve(build_origin(OriginConfig(storage_url=str(root)), storage), runners), root

    yield start
    for r in runners:
        await r.cleanup()


async def _metrics(http: aiohttp.ClientSession, url: str) -> str:
    async with http.get(f"{url}/_/metrics") as r:
        return await r.text()


async def test_origin_400s_pass_through_and_are_remembered(local_origin, start_edge, http, tmp_path):
    """A 256-character name and a symlink out of the root are the origin's 400: the edge answers 400 (not
    502), asks the origin once per key within negative_ttl_s, and counts no upstream failure."""
    url, root = await local_origin()
    (root / "t1").mkdir(parents=True)
    (tmp_path / "secret.m3u8").write_bytes(b"#EXTM3U\n")
    (root / "t1" / "escape.m3u8").symlink_to(tmp_path / "secret.m3u8")
    clock = FakeClock()
    e = await start_edge(url, clock=clock, negative_ttl_s=5.0)
    keys = ["t1/" + "n" * 256 + ".m4s", "t1/escape.m3u8"]
    for key in keys:
        for _ in range(3):
            async with http.get(e.obj_url(key)) as r:
                assert r.status == 400, (key, await r.text())
                assert len(await r.read()) < 100
    text = await _metrics(http, e.url)
    origin_label = f"origin:{url}"
    assert metric(text, "vodstack_edge_upstream_attempts_total", upstream=origin_label) == 2  # once per key
    assert metric(text, "vodstack_edge_requests_total", status="400", cache="negative") == 4
    assert metric(text, "vodstack_edge_upstream_refused_total", status="400") == 2
    assert metric(text, "vodstack_edge_fill_errors_total") == 0
    assert e.edge.fills.circuit_phases()[origin_label] == "closed"
    clock.advance(5.1)  # the remembered 400 has expired: asked again
    async with http.get(e.obj_url(keys[0])) as r:
        assert r.status == 400
    assert metric(await _metrics(http, e.url), "vodstack_edge_upstream_attempts_total", upstream=origin_label) == 3


@pytest.mark.parametrize("status", [400, 403, 404, 410, 451])
async def test_every_origin_4xx_passes_through_with_its_status(fake_upstream, start_edge, http, status):
    upstream = fake_upstream  # a fake: it answers any 4xx on demand, which a real origin does not
    upstream.statuses["t1/x.m4s"] = status
    e = await start_edge(upstream.url)
    for _ in range(2):
        async with http.get(e.obj_url("t1/x.m4s")) as r:
            assert r.status == status
            assert r.headers["Cache-Control"] == "no-store"
    assert upstream.requests["t1/x.m4s"] == 1
    assert e.edge.negative.get("t1/x.m4s") == status


async def test_a_peers_404_moves_on_the_origins_404_is_final(upstream, start_edge, http):
    """Cache-only peers answer 404 for a miss: the edge asks the next upstream. A peer's other 4xx is the
    peer's failure (skipped next time), never the answer. The origin's 404 is final (and remembered)."""
    peer = TestUpstream()  # a fake peer: 404 on a miss like a cache-only edge, and a 400 no edge gives
    peer.statuses["t1/b.m4s"] = 400
    app = web.Application()
    app.router.add_get("/{key:.+}", peer.handle)
    runners: list[web.AppRunner] = []
    peer.url = await _serve(app, runners)
    try:
        upstream.put("t1/a.m4s", b"a" * 1000)
        upstream.put("t1/b.m4s", b"b" * 1000)
        e = await start_edge(upstream.url, peers=(peer.url,))
        async with http.get(e.obj_url("t1/a.m4s")) as r:  # the peer's 404 ("not here"), then the origin
            assert r.status == 200 and await r.read() == b"a" * 1000
        assert peer.requests["t1/a.m4s"] == 1 and upstream.requests["t1/a.m4s"] == 1
        assert e.edge.fills.circuit_phases()[f"peer:{peer.url}"] == "closed"
        async with http.get(e.obj_url("t1/b.m4s")) as r:  # the peer's 400: its failure, the origin answers
            assert r.status == 200 and await r.read() == b"b" * 1000
        assert e.edge.fills.circuit_phases()[f"peer:{peer.url}"] == "open"
        async with http.get(e.obj_url("t1/none.m4s")) as r:  # the open peer is skipped; the origin's 404
            assert r.status == 404
        assert peer.requests["t1/none.m4s"] == 0 and upstream.requests["t1/none.m4s"] == 1
        async with http.get(e.obj_url("t1/none.m4s")) as r:
            assert r.status == 404
        assert upstream.requests["t1/none.m4s"] == 1
    finally:
        for r in runners:
            await r.cleanup()


async def test_5xx_is_a_failure_never_remembered(fake_upstream, start_edge, http):
    upstream = fake_upstream  # a fake: it answers 503 on demand, which a real origin does not
    upstream.statuses["t1/x.m4s"] = 503
    clock = FakeClock()
    e = await start_edge(upstream.url, clock=clock, breaker_open_s=5.0)
    async with http.get(e.obj_url("t1/x.m4s")) as r:
        assert r.status == 502
    assert "t1/x.m4s" not in e.edge.negative
    del upstream.statuses["t1/x.m4s"]
    upstream.put("t1/x.m4s", b"x" * 10)
    clock.advance(5.0)  # past the open circuit: the next request is the probe
    async with http.get(e.obj_url("t1/x.m4s")) as r:
        assert r.status == 200 and await r.read() == b"x" * 10
    assert upstream.requests["t1/x.m4s"] == 2


ZERO_PATHS = [
    # (method, headers, status, body)
    ("GET", {"Range": "bytes=0-"}, 416, b""),
    ("GET", {}, 200, b""),
    ("HEAD", {}, 200, b""),
    ("GET", {"Range": "bytes=0-0"}, 416, b""),
    ("HEAD", {"Range": "bytes=0-"}, 416, b""),
    ("GET", {"Range": "bytes=-5"}, 200, b""),  # as the shared semantics core plans it: the whole (empty) body
]


@pytest.mark.parametrize("fast_path", [True, False], ids=["fast_path", "aiohttp_path"])
async def test_zero_length_object_on_every_path(start_origin_app, start_edge, http, tmp_path, fast_path):
    """An uncached 0-byte object asked with ``Range: bytes=0-`` is 416 at once (the origin's 416 to the
    edge's probe says ``bytes */0``: an answer, not a failure), then every way of asking it answers as the
    origin does: from RAM (fast path or aiohttp's), from the disk tier after a restart, and on an edge that
    slices large objects."""
    origin = await start_origin_app({"t1/empty.m4s": b"", "t1/empty2.m4s": b"", "t1/index.m3u8": b""})
    want: dict[tuple[str, str], tuple[int, str | None]] = {}
    for method, headers, status, _ in ZERO_PATHS:
        async with http.request(method, f"{origin}/t1/empty.m4s", headers=headers) as r:
            assert r.status == status
            want[(method, str(headers))] = (r.status, r.headers.get("Content-Range"))
    cache = tmp_path / "zero-cache"
    e = await start_edge(origin, cache_dir=cache, fast_path=fast_path)
    async with http.get(e.obj_url("t1/empty.m4s"), headers={"Range": "bytes=0-"}) as r:  # uncached
        assert r.status == 416 and r.headers["Content-Range"] == "bytes */0" and await r.read() == b""
    async with http.head(e.obj_url("t1/empty2.m4s")) as r:  # uncached HEAD
        assert r.status == 200 and r.headers["Content-Length"] == "0"
    async with http.get(e.obj_url("t1/index.m3u8")) as r:  # an empty playlist, uncached plain GET
        assert r.status == 200 and await r.read() == b""
    for _ in range(2):  # the second round from RAM (the fast path answers plain ones when on)
        for method, headers, status, body in ZERO_PATHS:
            async with http.request(method, e.obj_url("t1/empty.m4s"), headers=headers) as r:
                assert (r.status, r.headers.get("Content-Range")) == want[(method, str(headers))]
                assert await r.read() == body
                if status == 200:
                    assert r.headers["Content-Length"] == "0"
    text = await _metrics(http, e.url)
    assert metric(text, "vodstack_edge_fill_errors_total") == 0
    assert metric(text, "vodstack_edge_requests_total", status="502") == 0
    await e.edge.disk.flush()
    await e.stop()
    e2 = await start_edge(origin, cache_dir=cache, fast_path=fast_path)  # the disk tier
    for method, headers, status, body in ZERO_PATHS:
        async with http.request(method, e2.obj_url("t1/empty.m4s"), headers=headers) as r:
            assert (r.status, r.headers.get("Content-Range")) == want[(method, str(headers))]
            assert await r.read() == body
    text = await _metrics(http, e2.url)
    assert metric(text, "vodstack_edge_requests_total", cache="disk_hit") >= 1  # (RAM admits on the 2nd hit)
    assert metric(text, "vodstack_edge_upstream_attempts_total") == 0
    sliced = await start_edge(origin, slice_bytes=4096, large_object_bytes=4096, fast_path=fast_path)
    for method, headers, status, body in ZERO_PATHS:
        async with http.request(method, sliced.obj_url("t1/empty2.m4s"), headers=headers) as r:
            assert (r.status, r.headers.get("Content-Range")) == want[(method, str(headers))]
            assert await r.read() == body


async def test_a_large_object_sliced_and_an_unsatisfiable_range(start_origin_app, start_edge, http):
    """A range past the end of a sliced object is the edge's own 416 (the size is known); ranges that are
    satisfiable come from slices; no upstream 416 ever becomes a 502."""
    data = os.urandom(3 * 4096 + 100)
    origin = await start_origin_app({"t1/big.m4s": data})
    e = await start_edge(origin, slice_bytes=4096, large_object_bytes=4096)
    async with http.get(e.obj_url("t1/big.m4s"), headers={"Range": "bytes=5000-"}) as r:
        assert r.status == 206 and await r.read() == data[5000:]
    async with http.get(e.obj_url("t1/big.m4s"), headers={"Range": f"bytes={len(data)}-"}) as r:
        assert r.status == 416 and r.headers["Content-Range"] == f"bytes */{len(data)}"
    assert metric(await _metrics(http, e.url), "vodstack_edge_fill_errors_total") == 0
