"""The RAM-hit fast path (``edge/fastpath.py``) answers exactly what aiohttp's handler answers.

Two edges on the same upstream, one with the fast path and one without, get the same raw bytes on
the wire (one request at a time, pipelined, split at every byte, malformed); their answers must be
equal but for ``Date``. Other tests prove the fast path really answered (aiohttp's connection loop
never took the request: ``Server.requests_count``), that it keeps the access log, metrics and keep-alive timer as aiohttp's path does, and
that whatever it cannot answer reaches aiohttp in order.
"""
from __future__ import annotations

import asyncio
import io
import logging
import os
import re
from pathlib import Path
from typing import AsyncIterator

import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge.serve import ACCESS_LOG_KEY
from edge_helpers import RealOrigin, _serve, comparable, metric, tok, wait_for

PLAYLIST = "t1/a.m3u8"
SEGMENT = "t1/v/00001.m4s"
BIG = "t1/v/big.m4s"  # over MAX_FAST_BODY: aiohttp's (but HEAD is answered on the fast path)
MEDIUM = "t1/v/medium.m4s"  # just under MAX_FAST_BODY


@pytest.fixture
async def upstream(tmp_path: Path) -> AsyncIterator[RealOrigin]:
    """Our origin, saying max-age=600 for playlists: no answer here comes from a revalidation."""
    origin = RealOrigin(tmp_path / "origin", playlist_max_age_s=600)
    runners: list[web.AppRunner] = []
    origin.url = await _serve(origin.app(), runners)
    yield origin
    for r in runners:
        await r.cleanup()


@pytest.fixture
def pairs() -> dict:
    """Kept across the examples of one hypothesis test (the fixtures are made once for all of them)."""
    return {}


async def _pair(upstream, start_edge, http, **overrides):
    """Two edges on ``upstream`` with every object in RAM: (fast path on, fast path off)."""
    upstream.put(PLAYLIST, b"#EXTM3U\n" + b"#EXTINF:4,\nseg.m4s\n" * 100)
    upstream.put(SEGMENT, bytes(range(256)) * 20)
    upstream.put(BIG, bytes(range(251)) * 1000)
    upstream.put(MEDIUM, bytes(range(250)) * 260)
    edges = []
    for fast in (True, False):
        e = await start_edge(upstream.url, fast_path=fast, **overrides)
        for key in (PLAYLIST, SEGMENT, BIG, MEDIUM):
            for _ in range(3):  # lru+2hit admits to RAM on the second request
                async with http.get(e.obj_url(key)) as r:
                    assert r.status == 200
                    await r.read()
            await e.edge.disk.flush()
            assert e.edge.ram.peek(key) is not None
        edges.append(e)
    return edges


def _port(e) -> int:
    return int(e.url.rsplit(":", 1)[1])


async def _exchange(port: int, chunks: list[bytes], *, settle_s: float = 0.3) -> bytes:
    """Send ``chunks`` one write each, then read until the server closes or goes quiet."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for c in chunks:
            writer.write(c)
            await writer.drain()
        out = b""
        while True:
            try:
                data = await asyncio.wait_for(reader.read(1 << 20), settle_s)
            except asyncio.TimeoutError:
                break
            if not data:
                break
            out += data
        return out
    finally:
        writer.close()


def _same(a: bytes, b: bytes) -> None:
    assert comparable(a) == comparable(b)


def _req(method: str, target: str, *headers: str, version: str = "HTTP/1.1") -> bytes:
    return (f"{method} {target} {version}\r\nHost: edge\r\n" + "".join(h + "\r\n" for h in headers) + "\r\n").encode()


def _aiohttp_requests(e) -> int:
    """How many requests aiohttp's connection loop has taken (``Server.requests_count``); the fast path takes none."""
    return e.runner.server.requests_count


async def test_plain_hits_are_answered_before_aiohttp_and_the_rest_by_it(upstream, start_edge, http):
    fast, slow = await _pair(upstream, start_edge, http)
    before = _aiohttp_requests(fast)
    t = tok("t1")
    plain = [_req("GET", f"/t/{t}/{SEGMENT}"), _req("HEAD", f"/t/{t}/{PLAYLIST}"), _req("HEAD", f"/t/{t}/{BIG}"),
             _req("GET", f"/t/{t}/{MEDIUM}")]
    for r in plain:
        a = await _exchange(_port(fast), [r])
        b = await _exchange(_port(slow), [r])
        assert a.startswith(b"HTTP/1.1 200 OK\r\n")
        _same(a, b)
    assert _aiohttp_requests(fast) == before, "the fast path left plain hits to aiohttp"
    await _exchange(_port(fast), [_req("GET", f"/t/{t}/{SEGMENT}", "Range: bytes=0-9")])
    assert _aiohttp_requests(fast) == before + 1  # a range goes to aiohttp
    _same(*[await _exchange(_port(e), [_req("GET", f"/t/{t}/{BIG}")]) for e in (fast, slow)])
    assert _aiohttp_requests(fast) == before + 2  # and so does a body over MAX_FAST_BODY


EDGE_CASES = [
    ("range", [_req("GET", "/t/{t}/" + SEGMENT, "Range: bytes=10-19")]),
    ("if-none-match", [_req("GET", "/t/{t}/" + SEGMENT, 'If-None-Match: "nope"', 'if-modified-since: Tue, 01 Jan 2030 00:00:00 GMT')]),
    ("close", [_req("GET", "/t/{t}/" + SEGMENT, "Connection: close")]),
    ("keep-alive", [_req("GET", "/t/{t}/" + SEGMENT, "Connection: keep-alive")]),
    ("query", [_req("GET", "/t/{t}/" + SEGMENT + "?x=1")]),
    ("escaped", [_req("GET", "/t/{t}/t1/v/%30%30001.m4s")]),
    ("dot segments", [_req("GET", "/t/{t}/t1/v/../v/00001.m4s")]),
    ("bad token", [_req("GET", "/t/nope/" + SEGMENT)]),
    ("wrong title", [_req("GET", "/t/{t2}/" + SEGMENT)]),
    ("http/1.0", [_req("GET", "/t/{t}/" + SEGMENT, version="HTTP/1.0")]),
    ("not cached", [_req("GET", "/t/{t}/t1/v/00099.m4s")]),
    ("post", [b"POST /t/{t}/" + SEGMENT.encode() + b" HTTP/1.1\r\nHost: e\r\nContent-Length: 5\r\n\r\nhello"
              + _req("GET", "/t/{t}/" + SEGMENT)]),
    ("options", [_req("OPTIONS", "/t/{t}/" + SEGMENT, "Origin: http://x")]),
    ("lf only", [b"GET /t/{t}/" + SEGMENT.encode() + b" HTTP/1.1\nHost: e\n\n"]),
    ("bad header", [_req("GET", "/t/{t}/" + SEGMENT, "Bad Header: x")]),
    ("two hosts", [_req("GET", "/t/{t}/" + SEGMENT, "Host: other")]),
    ("two user agents", [_req("GET", "/t/{t}/" + SEGMENT, "User-Agent: a", "user-agent: b")]),
    ("long header", [_req("GET", "/t/{t}/" + SEGMENT, "X-Pad: " + "a" * 8200)]),
    ("many headers", [_req("GET", "/t/{t}/" + SEGMENT, *(f"X-{i}: {i}" for i in range(140)))]),
    ("peer edge", [_req("GET", "/t/{t}/" + SEGMENT, "X-Vodstack-Edge: e9")]),
    ("cache only", [_req("GET", "/t/{t}/" + SEGMENT, "X-Vodstack-Cache-Only: 1")]),
    ("garbage", [b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n"]),
    ("tls hello", [b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(range(40))]),
    ("bare lf in a header", [b"GET /t/{t}/" + SEGMENT.encode() + b" HTTP/1.1\r\nHost: e\n\r\n"]),
    ("bare lf mid-head", [b"GET /t/{t}/" + SEGMENT.encode() + b" HTTP/1.1\r\nHost: e\nAccept: */*\r\n\r\n"]),
    ("no host", [b"GET /t/{t}/" + SEGMENT.encode() + b" HTTP/1.1\r\nAccept: */*\r\n\r\n"]),
    ("no headers", [b"GET /t/{t}/" + SEGMENT.encode() + b" HTTP/1.1\r\n\r\n"]),
    ("old websocket", [_req("GET", "/t/{t}/" + SEGMENT, "Sec-WebSocket-Key1: 4 @1  46546xW%0l 1 5")]),
    ("other path split", [b"GET /no", b"pe HTTP/1.1\r\nHost: e\r\n\r\n"]),
    ("non-ascii", [_req("GET", "/t/{t}/" + SEGMENT).replace(b"Host: edge", "Host: \u00e9dge".encode())]),
    ("pipelined mix", [_req("GET", "/t/{t}/" + SEGMENT) + _req("GET", "/t/{t}/" + SEGMENT, "Range: bytes=0-0")
                       + _req("HEAD", "/t/{t}/" + PLAYLIST) + _req("GET", "/t/{t}/" + BIG) + _req("GET", "/t/{t}/" + MEDIUM)
                       + _req("GET", "/t/{t}/" + PLAYLIST, "If-None-Match: *") + _req("GET", "/t/{t}/" + SEGMENT)]),
    ("huge head", [_req("GET", "/t/{t}/" + SEGMENT, "X-Pad: " + "a" * 20000)]),
    ("cmcd query", [_req("GET", "/t/{t}/" + SEGMENT + "?CMCD=ot%3Dv%2Csid%3D%22a%22%2Cbl%3D100")]),
    ("cmcd query and more", [_req("GET", "/t/{t}/" + SEGMENT + "?CMCD=ot%3Dv&x=1")]),
    ("cmcd headers", [_req("GET", "/t/{t}/" + SEGMENT, "CMCD-Request: bl=100", "cmcd-request: su",
                           'CMCD-Session: sid="s"')]),
    ("malformed cmcd", [_req("GET", "/t/{t}/" + SEGMENT + "?CMCD=%22%22%22", "CMCD-Object: br==1")]),
]


@pytest.mark.parametrize("name,chunks", EDGE_CASES, ids=[c[0] for c in EDGE_CASES])
async def test_same_answer_with_and_without_the_fast_path(upstream, start_edge, http, name, chunks):
    fast, slow = await _pair(upstream, start_edge, http)
    t, t2 = tok("t1"), tok("t2")
    chunks = [c.replace(b"{t}", t.encode()).replace(b"{t2}", t2.encode()) for c in chunks]
    a = await _exchange(_port(fast), chunks)
    b = await _exchange(_port(slow), chunks)
    assert a, "no answer"
    _same(a, b)


async def test_a_request_split_at_every_byte(upstream, start_edge, http):
    fast, slow = await _pair(upstream, start_edge, http)
    t = tok("t1")
    raw = _req("GET", f"/t/{t}/{SEGMENT}", "Accept: */*") + _req("GET", f"/t/{t}/{PLAYLIST}", "Range: bytes=0-3")
    for cut in (1, 5, len(raw) // 3, len(raw) - 1):
        pieces = [raw[i:i + cut] for i in range(0, len(raw), cut)]
        a = await _exchange(_port(fast), pieces, settle_s=0.2)
        b = await _exchange(_port(slow), pieces, settle_s=0.2)
        assert a.count(b"HTTP/1.1 200 OK") == 1 and a.count(b"HTTP/1.1 206") == 1
        _same(a, b)


HEADER_NAMES = st.sampled_from(["Accept", "User-Agent", "Range", "If-None-Match", "If-Range", "Connection",
                                "X-Other", "Content-Length", "Transfer-Encoding", "Expect", "Upgrade",
                                "RANGE", "if-modified-since", "X-Vodstack-Edge", "Server", "Etag"])
HEADER_VALUES = st.sampled_from(["*/*", "bytes=0-9", "bytes=5-", "close", "keep-alive", '"x"', "0", "chunked",
                                 "Tue, 01 Jan 2030 00:00:00 GMT", "100-continue", "h2c", "", "a b"])


async def _one_by_one(port: int, requests: list[tuple[str, bytes]], cut: int) -> bytes:
    """Send each request (split in two writes at ``cut``) after the previous answer has been read whole."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    out = b""
    try:
        for method, raw in requests:
            try:
                for piece in ([raw[:cut], raw[cut:]] if 0 < cut < len(raw) else [raw]):
                    writer.write(piece)
                    await writer.drain()
                    await asyncio.sleep(0)
            except ConnectionError:
                break  # closed by the server after the previous answer
            try:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 1)
            except (asyncio.IncompleteReadError, ConnectionError):
                break  # closed (after an answer or without one)
            except asyncio.TimeoutError:  # e.g. waiting for the body a Transfer-Encoding promised
                out += b"<no answer>"
                break
            while head.startswith(b"HTTP/1.1 100 "):  # Expect: 100-continue
                out += head
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 1)
            out += head
            m = re.search(rb"\r\nContent-Length: (\d+)", head)
            status = int(head.split(b" ", 2)[1])
            if m and method != "HEAD" and status not in (204, 304):
                out += await asyncio.wait_for(reader.readexactly(int(m.group(1))), 5)
            if b"\r\nConnection: close" in head:
                break
        return out
    finally:
        writer.close()


@settings(max_examples=int(os.environ.get("FASTPATH_EXAMPLES", "60")), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(requests=st.lists(st.tuples(st.sampled_from(["GET", "HEAD", "GET"]),
                                   st.sampled_from([SEGMENT, PLAYLIST, BIG, MEDIUM, "t1/v/00098.m4s"]),
                                   st.lists(st.tuples(HEADER_NAMES, HEADER_VALUES), max_size=3)),
                         min_size=1, max_size=4),
       cut=st.integers(min_value=0, max_value=300))
async def test_random_requests_get_the_same_answers(upstream, start_edge, http, pairs, requests, cut):
    """One request at a time (pipelining is covered above: aiohttp drops the requests parsed in the same
    read as a malformed one, which the fast path, answering the earlier ones first, does not copy)."""
    if not pairs:
        pairs["edges"] = await _pair(upstream, start_edge, http)
    fast, slow = pairs["edges"]
    t = tok("t1")
    raws = [(m, _req(m, f"/t/{t}/{k}", *(f"{n}: {v}" for n, v in hs))) for m, k, hs in requests]
    a = await _one_by_one(_port(fast), raws, cut)
    b = await _one_by_one(_port(slow), raws, cut)
    _same(a, b)


async def test_log_line_and_counters_as_aiohttps_path_keeps_them(upstream, start_edge, http, caplog):
    caplog.set_level(logging.INFO, logger="edge.access")
    fast, slow = await _pair(upstream, start_edge, http, access_log=True)
    t = tok("t1")
    lines = []
    for e in (fast, slow):
        e.runner.app[ACCESS_LOG_KEY].flush()  # the warm-up's lines go to stderr
        stream = io.StringIO()
        e.runner.app[ACCESS_LOG_KEY].stream = stream
        before = await (await http.get(f"{e.url}/_/metrics")).text()
        await _exchange(_port(e), [_req("GET", f"/t/{t}/{SEGMENT}") + _req("HEAD", f"/t/{t}/{SEGMENT}")])
        after = await (await http.get(f"{e.url}/_/metrics")).text()
        for name, labels in (("vodstack_edge_requests_total", {"status": "200", "cache": "ram_hit"}),
                             ("vodstack_edge_served_bytes_total", {"tier": "ram"})):
            assert metric(after, name, **labels) - metric(before, name, **labels) == (2 if "requests" in name else 5120)
        e.runner.app[ACCESS_LOG_KEY].flush()
        lines.append([re.sub(r"^\S+ | ms=\S+", "", line) for line in stream.getvalue().splitlines()])
    assert len(lines[0]) == 2
    assert lines[0] == lines[1]
    assert "GET /t/" in lines[0][0] and "status=200 cache=ram_hit tier=ram bytes=5120 " in lines[0][0]
    assert "HEAD /t/" in lines[0][1] and " bytes=0 " in lines[0][1]


async def test_fast_answers_keep_an_idle_connection_alive(upstream, start_edge, http):
    """aiohttp closes a connection idle for keepalive_timeout; a connection busy with fast answers is not idle."""
    fast, _ = await _pair(upstream, start_edge, http)
    fast.runner.server._kwargs["keepalive_timeout"] = 0.4  # noqa: SLF001 - new connections take it
    reader, writer = await asyncio.open_connection("127.0.0.1", _port(fast))
    t = tok("t1")
    try:
        for _ in range(8):  # 8 x 0.15 s: three keep-alive periods
            writer.write(_req("HEAD", f"/t/{t}/{SEGMENT}"))
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 2)
            assert head.startswith(b"HTTP/1.1 200 OK")
            await asyncio.sleep(0.15)
        assert await asyncio.wait_for(reader.read(1), 1.5) == b""  # then idle: closed by aiohttp
    finally:
        writer.close()


async def test_a_draining_edge_leaves_every_request_to_aiohttp_which_answers_503(upstream, start_edge, http):
    fast, slow = await _pair(upstream, start_edge, http)
    t = tok("t1")
    for e in (fast, slow):
        e.edge.draining = True
    before = _aiohttp_requests(fast)
    a = await _exchange(_port(fast), [_req("GET", f"/t/{t}/{SEGMENT}")])
    assert a.startswith(b"HTTP/1.1 503") and _aiohttp_requests(fast) == before + 1
    _same(a, await _exchange(_port(slow), [_req("GET", f"/t/{t}/{SEGMENT}")]))


async def test_a_client_that_does_not_read_gets_back_pressure(upstream, start_edge, http):
    """Pipelined requests from a client that reads nothing: once the socket's buffer holds an answer the
    rest go to aiohttp, which waits for the buffer to drain; the edge never queues every answer."""
    fast, _ = await _pair(upstream, start_edge, http)
    t = tok("t1")
    size = len(upstream.objects[MEDIUM])
    reader, writer = await asyncio.open_connection("127.0.0.1", _port(fast))
    try:
        writer.write(_req("GET", f"/t/{t}/{MEDIUM}") * 300)  # 300 x 65 kB, far over the socket buffers
        await writer.drain()

        def buffered() -> int:
            return sum(tr.get_write_buffer_size() for tr in fast.runner.server._connections.values())  # noqa: SLF001

        await wait_for(lambda: buffered() > 0)  # the socket is full and an answer waits in the buffer
        for _ in range(100):  # and however many turns the edge gets, it holds at most a few answers
            await asyncio.sleep(0)
        assert 0 < buffered() < 4 * size
        got = 0
        while got < 300 * size:  # and every answer arrives once the client reads
            data = await asyncio.wait_for(reader.read(1 << 20), 5)
            assert data
            got += len(data)
    finally:
        writer.close()

