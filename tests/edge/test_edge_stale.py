"""Stale copies and failing upstreams, on a clock the test moves (``FakeClock``): stale-while-revalidate
serves at once while one revalidation runs; past it a request waits at most ``stale_deadline_s``; a failed
or slow revalidation is answered from the stale copy (RFC 5861 stale-if-error), and an upstream whose
circuit opened is not asked again until its probe. Assertions are on answers, counters and the order of
events, never on elapsed time."""
from __future__ import annotations

import asyncio

import aiohttp
import aiohttp.web

from edge_helpers import FakeClock, TestUpstream, _serve, metric, wait_for

KEY = "t1/video/v1/index.m3u8"
V1, V2 = b"#EXTM3U\n#v1\n", b"#EXTM3U\n#v2\n"


async def _text(http: aiohttp.ClientSession, url: str) -> str:
    async with http.get(f"{url}/_/metrics") as r:
        return await r.text()


async def _get(http: aiohttp.ClientSession, url: str) -> tuple[int, bytes]:
    async with http.get(url) as r:
        return r.status, await r.read()


async def test_stale_while_revalidate_answers_at_once_and_revalidates_once(upstream, start_edge, http):
    upstream.put(KEY, V1)  # the origin in these tests says max-age=1 for playlists
    clock = FakeClock()
    e = await start_edge(upstream.url, clock=clock, stale_while_revalidate_s=10.0)
    url = e.obj_url(KEY)
    assert await _get(http, url) == (200, V1)
    upstream.put(KEY, V2)
    upstream.gate = asyncio.Event()  # the revalidation is held upstream until the test lets it go
    clock.advance(2.0)  # stale, within stale-while-revalidate
    for _ in range(4):
        assert await _get(http, url) == (200, V1)  # the stale copy, without waiting on the upstream
    assert KEY in e.edge.fills.fills  # ... while the one revalidation is still in flight
    upstream.gate.set()
    await wait_for(lambda: KEY not in e.edge.fills.fills)
    assert upstream.requests[KEY] == 2  # the fill, and one revalidation for the four stale answers
    assert await _get(http, url) == (200, V2)  # the revalidation's result, fresh
    text = await _text(http, e.url)
    assert metric(text, "vodstack_edge_stale_served_total", reason="revalidating") == 4
    assert metric(text, "vodstack_edge_requests_total", cache="stale") == 4


async def test_past_swr_a_slow_revalidation_is_answered_stale_after_the_deadline(fake_upstream, start_edge, http):
    upstream = fake_upstream  # a fake: it holds a request on a gate, then answers 503, which a real origin does not
    upstream.put(KEY, V1)
    clock = FakeClock()
    e = await start_edge(upstream.url, clock=clock, stale_while_revalidate_s=0, stale_deadline_s=0.05,
                         upstream_read_timeout_s=0.5, breaker_open_s=30.0)
    url = e.obj_url(KEY)
    assert await _get(http, url) == (200, V1)
    upstream.gate = asyncio.Event()  # the revalidation is held upstream: slower than the stale deadline
    clock.advance(2.0)
    assert await _get(http, url) == (200, V1)
    assert KEY in e.edge.fills.fills  # answered before the revalidation ended: the deadline
    text = await _text(http, e.url)
    assert metric(text, "vodstack_edge_stale_served_total", reason="deadline") == 1
    upstream.statuses[KEY] = 503
    upstream.gate.set()  # ... which then fails behind
    await wait_for(lambda: KEY not in e.edge.fills.fills)
    origin = f"origin:{upstream.url}"
    assert e.edge.fills.circuit_phases()[origin] == "open"
    asked = upstream.requests[KEY]
    for _ in range(3):  # the circuit is open: stale at once, the upstream not asked
        assert await _get(http, url) == (200, V1)
    assert upstream.requests[KEY] == asked and not e.edge.fills.fills
    text = await _text(http, e.url)
    assert metric(text, "vodstack_edge_stale_served_total", reason="circuit_open") == 3
    assert metric(text, "vodstack_edge_upstream_skipped_total", upstream=origin) == 3
    assert metric(text, "vodstack_edge_breaker_transitions_total", upstream=origin, phase="open") == 1
    async with http.get(e.obj_url("t1/uncached.m4s")) as r:  # nothing stale to give: from the breaker
        assert r.status == 502  # (opened by a 5xx; by a timeout it says 504: test_edge_outage.py)
    assert upstream.requests["t1/uncached.m4s"] == 0


async def test_5xx_on_revalidation_serves_stale_and_keeps_the_copy(fake_upstream, start_edge, http):
    upstream = fake_upstream  # a fake: it answers 503 on demand, which a real origin does not
    upstream.put(KEY, V1)
    clock = FakeClock()
    e = await start_edge(upstream.url, clock=clock, stale_while_revalidate_s=0, breaker_open_s=5.0)
    url = e.obj_url(KEY)
    assert await _get(http, url) == (200, V1)
    upstream.statuses[KEY] = 503
    clock.advance(2.0)
    assert await _get(http, url) == (200, V1)
    text = await _text(http, e.url)
    assert metric(text, "vodstack_edge_stale_served_total", reason="upstream_error") == 1
    assert metric(text, "vodstack_edge_fill_errors_total", reason="http_5xx") == 1
    assert KEY not in e.edge.negative and KEY in e.edge.ram  # never remembered, never replaced
    del upstream.statuses[KEY]
    upstream.put(KEY, V2)
    clock.advance(5.0)  # the circuit half-opens: this request is the probe, and it succeeds
    assert await _get(http, url) == (200, V2)
    assert e.edge.fills.circuit_phases()[f"origin:{upstream.url}"] == "closed"


async def test_the_origins_stale_if_error_bounds_serving_on_error(fake_upstream, start_edge, http):
    """``Cache-Control: stale-if-error=N`` from the origin overrides the edge's default (a day): past it,
    a failing revalidation is a 502, not the stale copy; ``must-revalidate`` forbids stale at once."""
    upstream = fake_upstream  # a fake: its Cache-Control changes mid-test, then it fails, which a real origin does not
    upstream.put(KEY, V1)
    upstream.put("t1/strict.m3u8", V1)
    upstream.cache_control = "stale-if-error=5"
    clock = FakeClock()
    e = await start_edge(upstream.url, clock=clock, stale_while_revalidate_s=0, breaker_open_s=0)
    assert await _get(http, e.obj_url(KEY)) == (200, V1)
    upstream.cache_control = "must-revalidate"
    assert await _get(http, e.obj_url("t1/strict.m3u8")) == (200, V1)
    upstream.mode = "error"
    clock.advance(1.0 + 4.0)  # max-age 1 + 4 s: within stale-if-error=5
    assert await _get(http, e.obj_url(KEY)) == (200, V1)
    assert (await _get(http, e.obj_url("t1/strict.m3u8")))[0] == 502  # must-revalidate: no stale
    clock.advance(2.0)  # past it
    assert (await _get(http, e.obj_url(KEY)))[0] == 502
    assert KEY in e.edge.ram  # the copy stays (an error never replaces it); it is just not served


async def test_an_open_circuit_sends_fills_to_the_next_upstream_without_waiting(upstream, start_edge, http):
    """A parent that fails opens its circuit: the next fills go straight to the origin (the parent is not
    asked) until the circuit half-opens; then one probe goes to the parent, and its success closes it."""
    parent = TestUpstream(mode="error")
    app = __import__("aiohttp").web.Application()
    app.router.add_get("/{key:.+}", parent.handle)
    runners: list = []
    parent.url = await _serve(app, runners)
    try:
        for n in range(4):
            upstream.put(f"t1/{n}.m4s", bytes([n]) * 1000)
            parent.put(f"t1/{n}.m4s", bytes([n]) * 1000)
        clock = FakeClock()
        e = await start_edge(upstream.url, parents=(parent.url,), clock=clock, breaker_open_s=5.0)
        label = f"parent:{parent.url}"
        assert await _get(http, e.obj_url("t1/0.m4s")) == (200, bytes([0]) * 1000)  # parent 500, then origin
        assert e.edge.fills.circuit_phases()[label] == "open"
        assert await _get(http, e.obj_url("t1/1.m4s")) == (200, bytes([1]) * 1000)
        assert parent.requests["t1/1.m4s"] == 0 and upstream.requests["t1/1.m4s"] == 1
        parent.mode = "ok"
        clock.advance(5.0)
        assert await _get(http, e.obj_url("t1/2.m4s")) == (200, bytes([2]) * 1000)  # the probe, to the parent
        assert parent.requests["t1/2.m4s"] == 1 and upstream.requests["t1/2.m4s"] == 0
        assert e.edge.fills.circuit_phases()[label] == "closed"
        text = await _text(http, e.url)
        assert metric(text, "vodstack_edge_breaker_transitions_total", upstream=label, phase="open") == 1
        assert metric(text, "vodstack_edge_breaker_transitions_total", upstream=label, phase="half_open") == 1
        assert metric(text, "vodstack_edge_breaker_transitions_total", upstream=label, phase="closed") == 1
    finally:
        for r in runners:
            await r.cleanup()


async def test_half_open_lets_one_probe_through_while_the_others_are_refused(fake_upstream, start_edge, http):
    upstream = fake_upstream  # a fake: it fails, then holds a request on a gate, which a real origin does not
    upstream.mode = "error"
    clock = FakeClock()
    e = await start_edge(upstream.url, clock=clock, breaker_open_s=5.0)
    assert (await _get(http, e.obj_url("t1/a.m4s")))[0] == 502
    assert (await _get(http, e.obj_url("t1/b.m4s")))[0] == 502  # from the breaker
    assert upstream.requests["t1/b.m4s"] == 0
    upstream.mode = "ok"
    upstream.put("t1/c.m4s", b"c" * 100)
    upstream.put("t1/d.m4s", b"d" * 100)
    upstream.gate = asyncio.Event()  # the probe is held upstream while the second request comes
    clock.advance(5.0)
    probe = asyncio.create_task(_get(http, e.obj_url("t1/c.m4s")))
    await wait_for(lambda: upstream.requests["t1/c.m4s"] == 1)
    assert (await _get(http, e.obj_url("t1/d.m4s")))[0] == 502  # half-open, the probe is out: refused
    assert upstream.requests["t1/d.m4s"] == 0
    upstream.gate.set()
    assert await probe == (200, b"c" * 100)
    assert await _get(http, e.obj_url("t1/d.m4s")) == (200, b"d" * 100)  # closed again


async def test_a_peer_without_the_object_and_an_open_origin_circuit_is_circuit_open(fake_upstream, start_edge, http):
    """A peer that lacks the object answers 404 (not a failure) and the origin's circuit is open: nothing
    failed now, the breaker kept the edge from asking. The stale copy is served for that reason, and an
    uncached object gets the breaker's answer at once."""
    upstream = fake_upstream  # a fake: it answers 503 on demand, which a real origin does not
    peer = TestUpstream()  # a fake peer that holds nothing: 404 to every request, as a cache-only edge on a miss
    app = aiohttp.web.Application()
    app.router.add_get("/{key:.+}", peer.handle)
    runners: list = []
    peer.url = await _serve(app, runners)
    try:
        upstream.put(KEY, V1)
        clock = FakeClock()
        e = await start_edge(upstream.url, peers=(peer.url,), clock=clock, stale_while_revalidate_s=0,
                             breaker_open_s=30.0)
        assert await _get(http, e.obj_url(KEY)) == (200, V1)
        upstream.statuses[KEY] = 503
        clock.advance(2.0)
        assert await _get(http, e.obj_url(KEY)) == (200, V1)  # the origin's 503 opens its circuit
        async with http.get(f"{e.url}/_/health") as r:
            assert (await r.json())["circuits"] == {f"peer:{peer.url}": "closed", f"origin:{upstream.url}": "open"}
        asked = upstream.requests[KEY]
        assert await _get(http, e.obj_url(KEY)) == (200, V1)
        assert upstream.requests[KEY] == asked and peer.requests[KEY] == 3
        async with http.get(e.obj_url("t1/other.m4s")) as r:
            assert r.status == 502 and upstream.requests["t1/other.m4s"] == 0
        text = await _text(http, e.url)
        assert metric(text, "vodstack_edge_stale_served_total", reason="upstream_error") == 1
        assert metric(text, "vodstack_edge_stale_served_total", reason="circuit_open") == 1
    finally:
        for r in runners:
            await r.cleanup()
