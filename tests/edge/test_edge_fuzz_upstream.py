"""Seeded fuzz of upstream answers: per upstream request a fake origin answers the object, a 4xx, a 5xx
or hangs (a timeout), chosen by a seeded random generator, while a client asks an edge for objects, whole
or by range, on a clock the test moves. Every answer must be the right bytes, the origin's 4xx, or
502/504; a 4xx is never turned into a 5xx; no 5xx is ever negatively cached."""
from __future__ import annotations

import random

import pytest

from edge_helpers import FakeClock, metric, wait_for

FAILURES = (500, 502, 503, "hang")
REFUSALS = (400, 403, 404, 410)


@pytest.mark.parametrize("seed", [13, 2026])
async def test_fuzzed_upstream_answers(fake_upstream, start_edge, http, seed):
    upstream = fake_upstream  # a fake: a script picks each answer (object, 4xx, 5xx, hang), which a real origin does not
    rng = random.Random(seed)
    objects = {f"t1/m{n}.m4s": rng.randbytes(rng.randrange(1, 200_000)) for n in range(5)}
    objects.update({f"t1/p{n}.m3u8": b"#EXTM3U\n" + rng.randbytes(40) for n in range(3)})
    objects["t1/empty.m4s"] = b""
    for key, data in objects.items():
        upstream.put(key, data)
    answered: list[tuple[str, object]] = []  # (key, answer) per upstream request, in order

    def script(key: str) -> object:
        roll = rng.random()
        answer: object = ("ok" if roll < 0.6 else rng.choice(REFUSALS) if roll < 0.75
                          else rng.choice(FAILURES[:3]) if roll < 0.95 else "hang")
        answered.append((key, answer))
        return answer

    upstream.script = script
    clock = FakeClock()
    e = await start_edge(upstream.url, clock=clock, upstream_connect_timeout_s=0.3, upstream_read_timeout_s=0.3,
                         breaker_open_s=2.0, negative_ttl_s=1.0, stale_while_revalidate_s=1.0,
                         stale_deadline_s=0.05)
    refused_so_far: dict[str, set[int]] = {}
    keys = sorted(objects)
    for step in range(150):
        key = rng.choice(keys)
        data = objects[key]
        headers = {}
        if rng.random() < 0.3:
            start = rng.randrange(0, max(len(data), 1))
            headers["Range"] = f"bytes={start}-"
        before = len(answered)
        async with http.get(e.obj_url(key), headers=headers) as r:
            status, body = r.status, await r.read()
        await wait_for(lambda: not e.edge.fills.fills, timeout_s=10)  # revalidations behind: done before the next
        mine = [a for k, a in answered[before:] if k == key]
        for k, a in answered[before:]:
            if isinstance(a, int) and 400 <= a < 500:
                refused_so_far.setdefault(k, set()).add(a)
        where = (seed, step, key, headers, status, mine)
        if status == 200:
            assert body == data, where
        elif status == 206:
            start = int(headers["Range"][6:-1])
            assert body == data[start:], where
        elif status == 416:
            assert key == "t1/empty.m4s" and "Range" in headers, where
        elif 400 <= status < 500:
            assert status in refused_so_far.get(key, set()), where  # only ever the origin's own 4xx
        else:
            assert status in (502, 504), where
            assert not any(isinstance(a, int) and 400 <= a < 500 for a in mine[-1:]), where  # no 4xx -> 5xx
            assert any(a in FAILURES for _, a in answered), where  # a failure happened somewhere
        if len(mine) == 1 and isinstance(mine[0], int) and 400 <= mine[0] < 500 and status not in (200, 206, 416):
            assert status == mine[0], where  # this request's own upstream 4xx is its answer
        assert all(400 <= int(v) < 500 for v in e.edge.negative.values()), where  # never a 5xx remembered
        clock.advance(rng.choice((0.0, 0.3, 1.1)))
    async with http.get(f"{e.url}/_/metrics") as r:
        text = await r.text()
    assert metric(text, "vodstack_edge_requests_total", status="500") == 0
