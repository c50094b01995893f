"""Coalescing: many concurrent misses for one cold object -> one upstream request, streamed to all."""
from __future__ import annotations

import asyncio
import os
import time

import aiohttp

from edge_helpers import metric


async def _fetch(session: aiohttp.ClientSession, url: str, drop_after_first: bool = False):
    async with session.get(url) as r:
        first = None
        body = bytearray()
        async for chunk in r.content.iter_any():
            if first is None:
                first = time.monotonic()
                if drop_after_first:
                    r.close()
                    return r.status, None, first
            body += chunk
        return r.status, bytes(body), first


async def test_200_concurrent_misses_one_upstream_request(fake_upstream, start_edge, http):
    upstream = fake_upstream  # a fake: it trickles the body and notes when it ended, which a real origin does not
    data = os.urandom(1_000_000)
    key = "t1/video/v1/00007.m4s"
    upstream.put(key, data)
    upstream.delay_per_chunk_s = 0.03  # 16 chunks of 64 KB: the fill takes ~0.5 s
    e = await start_edge(upstream.url)
    url = e.obj_url(key)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as s:
        tasks = [asyncio.create_task(_fetch(s, url, drop_after_first=(i % 20 == 7))) for i in range(200)]
        await asyncio.gather(*tasks)
        fill_done = time.monotonic()  # upper bound of the fill's end; refined below
        results = [t.result() for t in tasks]
    assert upstream.requests[key] == 1
    full = [r for r in results if r[1] is not None]
    assert len(full) == 190
    assert all(status == 200 and body == data for status, body, _ in full)
    # the upstream took >= 15 * 0.03 s; most clients had their first bytes before it finished
    firsts = sorted(first for _, _, first in results)
    assert firsts[0] < upstream.finished_at - 0.3
    assert firsts[len(firsts) // 2] < upstream.finished_at, "median first byte must come before the fill ends"
    assert fill_done >= upstream.finished_at
    body = await (await http.get(f"{e.url}/_/metrics")).text()
    assert metric(body, "vodstack_edge_requests_total", cache="miss") == 1
    coalesced = metric(body, "vodstack_edge_requests_total", cache="coalesced")
    late_hits = (metric(body, "vodstack_edge_requests_total", cache="disk_hit")
                 + metric(body, "vodstack_edge_requests_total", cache="ram_hit"))  # arrived after the fill
    assert coalesced >= 100 and coalesced + late_hits == 199
    await e.edge.disk.flush()
    assert key in e.edge.disk  # clients that left did not abort the fill


async def test_ranged_waiters_on_a_fill(fake_upstream, start_edge, http):
    upstream = fake_upstream  # a fake: it trickles the body so the waiters join a fill in flight, which a real origin does not
    data = os.urandom(500_000)
    key = "t1/video/v1/00008.m4s"
    upstream.put(key, data)
    upstream.delay_per_chunk_s = 0.01
    e = await start_edge(upstream.url)
    ranges = [(0, 99), (1000, 70000), (400_000, 499_999), (123, 123)]

    async def get(a: int, b: int) -> bytes:
        async with http.get(e.obj_url(key), headers={"Range": f"bytes={a}-{b}"}) as r:
            assert r.status == 206
            return await r.read()

    bodies = await asyncio.gather(*(get(a, b) for a, b in ranges))
    assert [len(b) for b in bodies] == [b - a + 1 for a, b in ranges]
    assert all(body == data[a:b + 1] for body, (a, b) in zip(bodies, ranges))
    assert upstream.requests[key] == 1
