"""What the RAM-hit path keeps between requests must never outlive what it was made from: token
verdicts end at the token's expiry, memoised response plans die with their part (purge, change
upstream, revalidation), counters reach /_/metrics, and every request still gets its log line."""
from __future__ import annotations

import io
import logging
import os
import time
from pathlib import Path

import pytest
from multidict import CIMultiDict

from edge.accesslog import AccessLog
from edge.config import EdgeConfig
from edge.node import Edge
from edge.objects import CachedPart, ObjectMeta
from edge.serve import ACCESS_LOG_KEY
from edge.tokens import sign_token
from edge_helpers import KEYS, FakeClock, metric, tok


def test_memoised_token_is_refused_once_expired(tmp_path: Path):
    now = [1_000_000.0]
    edge = Edge(EdgeConfig(origin="http://127.0.0.1:9", cache_dir=tmp_path, token_keys=dict(KEYS)),
                clock=lambda: now[0])
    token = sign_token("k1", KEYS["k1"], "t1", 1_000_010)
    assert edge.token_ok(token, "t1") == ""
    assert edge.token_ok(token, "t1") == ""  # the memoised verdict
    assert edge.token_ok(token, "t2") == "wrong_title"  # the memo grants its own title only
    now[0] = 1_000_009.9
    assert edge.token_ok(token, "t1") == ""
    now[0] = 1_000_010.0
    assert edge.token_ok(token, "t1") == "expired"
    assert edge.token_ok(token, "t1") == "expired"


def test_a_refreshed_part_starts_with_no_plans():
    meta = ObjectMeta(key="t1/a.m3u8", size_bytes=3, etag="e1", last_modified_s=1.0, max_age_s=2.0)
    part = CachedPart(meta=meta, base_bytes=0, body=b"abc", fetched_at_s=5.0)
    part.plans["GET"] = "planned"
    fresh = part.refreshed(ObjectMeta(key="t1/a.m3u8", size_bytes=3, etag="e2", last_modified_s=2.0,
                                      max_age_s=2.0), 9.0)
    assert fresh.plans == {} and part.plans == {"GET": "planned"}
    assert fresh == CachedPart(meta=fresh.meta, base_bytes=0, body=b"abc", fetched_at_s=9.0)  # memo not compared


async def _until_ram_hit(http, e, url: str) -> tuple[bytes, CIMultiDict[str]]:
    """GET ``url`` until the edge answers from RAM (lru+2hit admits on the second request)."""
    for _ in range(5):
        before = e.edge.metrics.request_totals().get("ram_hit", 0.0)
        async with http.get(url) as r:
            assert r.status == 200
            body, headers = await r.read(), CIMultiDict(r.headers)
        await e.edge.disk.flush()
        if e.edge.metrics.request_totals().get("ram_hit", 0.0) > before:
            return body, headers
    raise AssertionError("never served from RAM")


async def test_purged_and_replaced_object_is_not_served_with_old_headers(upstream, start_edge, http):
    key = "t1/video/v1/00001.m4s"
    old, new = os.urandom(5000), os.urandom(7000)
    upstream.put(key, old)
    e = await start_edge(upstream.url)
    url = e.obj_url(key)
    body, headers = await _until_ram_hit(http, e, url)
    body, headers = await _until_ram_hit(http, e, url)  # a second hit: from the memoised plan
    assert body == old and headers["ETag"] == f'"{upstream.etags[key]}"' and headers["Content-Length"] == "5000"
    upstream.put(key, new)
    async with http.post(f"{e.url}/_/purge", json={"keys": [key]}, headers={"X-Admin-Key": "admin"}) as r:
        assert r.status == 200
    body, headers = await _until_ram_hit(http, e, url)
    assert body == new
    assert headers["ETag"] == f'"{upstream.etags[key]}"' and headers["Content-Length"] == "7000"
    # conditionals and ranges on a part with a memoised plan are still planned from the request
    async with http.get(url, headers={"If-None-Match": headers["ETag"]}) as r:
        assert r.status == 304
    async with http.get(url, headers={"Range": "bytes=0-9"}) as r:
        assert r.status == 206 and await r.read() == new[:10] and r.headers["Content-Length"] == "10"
    async with http.head(url) as r:
        assert r.status == 200 and r.headers["Content-Length"] == "7000" and await r.read() == b""
    async with http.get(url) as r:
        assert r.status == 200 and await r.read() == new


async def test_playlist_changed_upstream_gets_new_headers(upstream, start_edge, http):
    key = "t1/video/v1/index.m3u8"
    upstream.put(key, b"#EXTM3U\n#v1\n")
    clock = FakeClock()
    e = await start_edge(upstream.url, stale_while_revalidate_s=0, clock=clock)  # stale: revalidated first
    url = e.obj_url(key)
    body, headers = await _until_ram_hit(http, e, url)
    assert body == b"#EXTM3U\n#v1\n"
    old_etag = headers["ETag"]
    upstream.put(key, b"#EXTM3U\n#v2 longer\n")
    async with http.get(url) as r:  # still fresh: the old copy, from RAM
        assert await r.read() == b"#EXTM3U\n#v1\n" and r.headers["ETag"] == old_etag
    clock.advance(1.1)  # the origin's playlist max-age is 1 s here: stale, revalidated, replaced
    for _ in range(3):
        async with http.get(url) as r:
            assert await r.read() == b"#EXTM3U\n#v2 longer\n"
            assert r.headers["ETag"] == f'"{upstream.etags[key]}"' != old_etag
            assert r.headers["Content-Length"] == str(len(b"#EXTM3U\n#v2 longer\n"))


async def test_counts_reach_metrics_and_health(upstream, start_edge, http):
    upstream.put("t1/a.m4s", b"y" * 1000)
    e = await start_edge(upstream.url)
    for _ in range(4):
        async with http.get(e.obj_url("t1/a.m4s")) as r:
            await r.read()
    async with http.get(f"{e.url}/t/nope/t1/a.m4s") as r:
        assert r.status == 403
    text = await (await http.get(f"{e.url}/_/metrics")).text()
    assert metric(text, "vodstack_edge_requests_total", status="200") == 4
    assert metric(text, "vodstack_edge_requests_total", status="403", cache="malformed") == 1
    assert metric(text, "vodstack_edge_served_bytes_total") == 4000
    health = await (await http.get(f"{e.url}/_/health")).json()
    assert health["hit_ratio"] > 0 and health["byte_hit_ratio"] > 0
    text = await (await http.get(f"{e.url}/_/metrics")).text()  # read twice: nothing counted twice
    assert metric(text, "vodstack_edge_requests_total", status="200") == 4


async def test_one_access_log_line_per_request(upstream, start_edge, http, caplog):
    caplog.set_level(logging.INFO, logger="edge.access")
    upstream.put("t1/a.m4s", b"z" * 1000)
    e = await start_edge(upstream.url, access_log=True)
    stream = io.StringIO()
    e.runner.app[ACCESS_LOG_KEY].stream = stream  # stderr in production
    for headers in ({}, {"Range": "bytes=0-9", "X-Vodstack-Edge": "peer one"}, {}):
        async with http.get(e.obj_url("t1/a.m4s"), headers=headers) as r:
            await r.read()
    async with http.get(f"{e.url}/t/{tok('t2')}/t1/a.m4s") as r:
        assert r.status == 403
    await e.stop()  # the app's clean-up flushes the buffer
    lines = stream.getvalue().splitlines()
    assert len(lines) == 4
    assert all(" INFO edge.access GET /t/" in line for line in lines)
    assert "status=200 cache=miss tier=fill bytes=1000 " in lines[0] and "range=- " in lines[0]
    assert "status=206 " in lines[1] and "range=bytes=0-9 " in lines[1] and ' via="peer one" sid=- ' in lines[1]
    assert "status=403 cache=wrong_title " in lines[3]


def test_access_log_lines_and_the_logger_level(caplog):
    """The edge's line layout; the buffering itself is httpsem.buffered_log's (tests/origin)."""
    stream = io.StringIO()
    log = AccessLog(stream, clock=lambda: 0.0)
    fields = dict(status=200, cache="ram_hit", tier="ram", sent_bytes=5, ms=0.01, range_header="-", peer="p",
                  via="a b")
    caplog.set_level(logging.WARNING, logger="edge.access")
    log.request("GET", "/t/x/t1/a", **fields)
    log.close()
    assert stream.getvalue() == ""  # --log-level warning: no access log
    caplog.set_level(logging.INFO, logger="edge.access")
    log.request("GET", "/t/x/t1/a", **fields)  # no loop running: written at once
    log.close()
    expected = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(0))
    assert stream.getvalue() == (f"{expected} INFO edge.access GET /t/x/t1/a status=200 cache=ram_hit tier=ram "
                                 'bytes=5 ms=0.01 range=- peer=p via="a b" '
                                 'sid=- ot=- bl=- br=- mtp=- su=- bs=- up_ms=0.0\n')


@pytest.mark.parametrize("size", [100, 200_000])
async def test_fills_reuse_their_upstream_connection(upstream, start_edge, http, size: int):
    """A fill that read its whole reply gives the connection back to the pool: sequential misses of
    playlists and segments share one connection to the origin instead of one each."""
    keys = [f"t1/video/v1/{n:05d}.m4s" for n in range(8)] + [f"t1/video/v{n}/index.m3u8" for n in range(8)]
    for key in keys:
        upstream.put(key, os.urandom(size))
    e = await start_edge(upstream.url)
    for key in keys:
        async with http.get(e.obj_url(key)) as r:
            assert r.status == 200 and await r.read() == upstream.objects[key]
    assert sum(upstream.requests.values()) == len(keys)
    assert len(upstream.connections) <= 2, upstream.connections
