"""The edge over TLS: fills from an HTTPS origin verified with ``upstream_ca``, a fill from an origin
whose CA it does not trust fails with the handshake's reason, and the RAM-hit fast path answers TLS
connections exactly as aiohttp's path does (a CA made in the test)."""
from __future__ import annotations

import asyncio
import logging
import ssl
from pathlib import Path
from typing import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from httpsem.cmsd import parse_dynamic
from edge_helpers import RealOrigin, _serve, comparable, metric, tok
from serverkit.tls import TlsFiles, client_context, server_context
from vodstack.devcerts import DevCA

SEGMENT = "t1/v/00001.m4s"
DATA = bytes(range(256)) * 20


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> DevCA:
    return DevCA(tmp_path_factory.mktemp("ca"))


@pytest.fixture
async def tls_origin(tmp_path: Path, ca: DevCA) -> AsyncIterator[RealOrigin]:
    """Our origin over HTTPS, with a certificate of ``ca``."""
    origin = RealOrigin(tmp_path / "origin", playlist_max_age_s=600)
    origin.put(SEGMENT, DATA)
    cert, key = ca.issue("origin")
    runners: list[web.AppRunner] = []
    origin.url = await _serve(origin.app(), runners, server_context(TlsFiles(cert, key)))
    yield origin
    for r in runners:
        await r.cleanup()


def _tls(ca: DevCA, name: str) -> dict[str, str]:
    cert, key = ca.issue(name)
    return {"tls_cert": str(cert), "tls_key": str(key)}


async def _exchange_tls(url: str, requests: list[bytes], ctx: ssl.SSLContext) -> list[bytes]:
    """Raw requests one after the other on one TLS connection; for each, all read until the server
    goes quiet."""
    host, port = url.removeprefix("https://").rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port), ssl=ctx)
    answers = []
    try:
        for request in requests:
            writer.write(request)
            await writer.drain()
            out = b""
            while True:
                try:
                    data = await asyncio.wait_for(reader.read(1 << 20), 0.3)
                except asyncio.TimeoutError:
                    break
                if not data:
                    break
                out += data
            answers.append(out)
        return answers
    finally:
        writer.close()


async def test_fills_over_https_and_fast_path_hits_on_tls_connections(tls_origin, start_edge, ca):
    client = client_context(ca.cert_path)
    fast = await start_edge(tls_origin.url, upstream_ca=str(ca.cert_path), **_tls(ca, "edge-fast"))
    slow = await start_edge(tls_origin.url, upstream_ca=str(ca.cert_path), fast_path=False, **_tls(ca, "edge-slow"))
    assert fast.url.startswith("https://") and tls_origin.url.startswith("https://")
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=client)) as http:
        for e in (fast, slow):
            for _ in range(3):  # lru+2hit admits to RAM on the second request
                async with http.get(e.obj_url(SEGMENT)) as r:
                    assert (r.status, await r.read()) == (200, DATA)
            await e.edge.disk.flush()
            assert e.edge.ram.peek(SEGMENT) is not None
    assert tls_origin.requests[SEGMENT] == 2  # one fill per edge, over HTTPS

    request = f"GET /t/{tok('t1')}/{SEGMENT} HTTP/1.1\r\nHost: edge\r\n\r\n".encode()
    before = fast.runner.server.requests_count
    answers = [await _exchange_tls(e.url, [request] * 3, client) for e in (fast, slow)]
    # the first request may come in the read that ends the handshake, before aiohttp's connection task
    # has started: aiohttp answers it; every later one on the connection is the fast path's
    assert fast.runner.server.requests_count - before <= 1, "the fast path left TLS RAM hits to aiohttp"
    for fast_answer, slow_answer in zip(*answers):
        assert fast_answer.startswith(b"HTTP/1.1 200 OK\r\n") and fast_answer.endswith(DATA)
        assert comparable(fast_answer) == comparable(slow_answer)  # what aiohttp's path answers


async def test_a_fill_from_an_origin_signed_by_another_ca_fails_with_the_reason(tls_origin, start_edge, http,
                                                                                tmp_path, caplog):
    stranger = DevCA(tmp_path / "stranger", name="a CA the origin does not use")
    e = await start_edge(tls_origin.url, upstream_ca=str(stranger.cert_path))
    with caplog.at_level(logging.WARNING, logger="edge.fill"):
        async with http.get(e.obj_url(SEGMENT)) as r:
            assert r.status == 502
    assert tls_origin.requests[SEGMENT] == 0  # the handshake failed: no request reached it
    body = await (await http.get(f"{e.url}/_/metrics")).text()
    assert metric(body, "vodstack_edge_fill_errors_total", reason="tls") == 1
    lines = [r.getMessage() + " " + str(getattr(r, "kv", "")) for r in caplog.records if r.name == "edge.fill"]
    assert any("certificate verify failed: self-signed certificate in certificate chain" in line for line in lines), lines


async def test_cmcd_in_and_cmsd_out_over_https_on_both_paths(tls_origin, start_edge, ca):
    """CMCD is read and CMSD answered on TLS connections too: the fast path (a RAM hit) and aiohttp's;
    the TCP estimate comes from the socket under the TLS layer."""
    client = client_context(ca.cert_path)
    query = "?CMCD=" + "ot%3Dv%2Csid%3D%22tls-1%22%2Cbl%3D1200"
    for fast_path in (True, False):
        e = await start_edge(tls_origin.url, upstream_ca=str(ca.cert_path), fast_path=fast_path,
                             cmsd_max_bitrate_kbps=900, **_tls(ca, f"edge-cmcd-{fast_path}"))
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=client)) as http:
            for _ in range(4):  # a miss, then RAM hits (lru+2hit)
                async with http.get(e.obj_url(SEGMENT) + query) as r:
                    assert (r.status, await r.read()) == (200, DATA)
                    (server, params), = parse_dynamic(r.headers["CMSD-Dynamic"])
                    assert server == e.cfg.name and params["mb"] == 900 and params["rtt"] >= 0
            text = await (await http.get(f"{e.url}/_/metrics")).text()
        assert metric(text, "vodstack_edge_cmcd_requests_total", ot="v") == 4
        assert e.edge.cmsd.viewers.count(e.edge.clock()) == 1  # the session's sid, read on every answer
