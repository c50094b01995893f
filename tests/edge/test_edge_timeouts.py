"""Deadlines on what clients send, on the edge with its RAM-hit fast path and without it.

The fast path holds incomplete heads in its own buffer and aiohttp's parser holds them in its; either
way a head that does not arrive whole within ``header_timeout_s`` gets 408 and the connection is
closed, a slow admin body likewise (``body_timeout_s``), an idle connection is closed after
``keepalive_timeout_s``, and an answer being received is never cut. The same raw bytes go to an edge
with and one without the fast path and must get the same answers (``Date`` aside), as in
``test_edge_fast_path.py``. Assertions are on what the client reads (408, EOF), never on how long it
took; the long waits are hang guards only.
"""
from __future__ import annotations

import asyncio
import hashlib
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from edge.config import EdgeConfig
from edge_helpers import comparable, tok
from tests.procs import REPO, Server

HANG_GUARD_S = 30.0
FAST = dict(header_timeout_s=0.2, body_timeout_s=0.2, keepalive_timeout_s=0.3)
SEGMENT = "t1/v/00001.m4s"
HUGE = "t1/v/huge.m4s"  # larger than every socket buffer between the edge and a slow client
TIMED_OUT = b"HTTP/1.1 408 Request Timeout\r\n"


def _is_408_then_eof(data: bytes) -> bool:
    return data.startswith(TIMED_OUT) and b"\r\nConnection: close\r\n" in data and data.endswith(b"request timeout\n")


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def _req(method: str, target: str, *headers: str) -> bytes:
    return (f"{method} {target} HTTP/1.1\r\nHost: edge\r\n" + "".join(h + "\r\n" for h in headers) + "\r\n").encode()


async def _send_then_read_to_eof(port: int, *chunks: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for c in chunks:
            writer.write(c)
            await writer.drain()
        return await asyncio.wait_for(reader.read(), HANG_GUARD_S)
    finally:
        writer.close()


@pytest.fixture
async def pair(upstream, start_edge, http):
    """Two edges with tiny timeouts and the segment in RAM: (fast path on, fast path off)."""
    upstream.put(SEGMENT, bytes(range(256)) * 20)
    edges = []
    for fast in (True, False):
        e = await start_edge(upstream.url, fast_path=fast, **FAST)
        for _ in range(3):  # lru+2hit admits to RAM on the second request (each on its own connection:
            async with http.get(e.obj_url(SEGMENT), headers={"Connection": "close"}) as r:  # idle ones close soon)
                assert r.status == 200
                await r.read()
        assert e.edge.ram.peek(SEGMENT) is not None
        edges.append(e)
    return edges


def _cases() -> list[tuple[str, list[bytes], str]]:
    """(name, chunks, what the client must read): ``408`` (after any answers), ``eof`` (answers, then closed)."""
    hit = _req("GET", "/t/{t}/" + SEGMENT)
    return [
        ("one byte", [b"G"], "408"),
        ("half a request line", [b"GET /t/{t}/t1/v/000"], "408"),
        ("fast-path head without its end", [hit[:-2]], "408"),
        ("fast-path head without its last byte", [hit[:-1]], "408"),
        ("other path", [b"GET /_/health HTTP/1.1\r\nHost: e\r\n"], "408"),
        ("a hit, then half a head in the same write", [hit + b"GET /t/{t}/"], "408"),
        ("a hit, then half a head", [hit, b"GET /t/{t}/" + SEGMENT.encode()], "408"),
        ("a range, then half a head", [_req("GET", "/t/{t}/" + SEGMENT, "Range: bytes=0-9") + b"HEAD /t/"], "408"),
        ("two hits, then half a head", [hit + hit, b"GET /_/he"], "408"),
        ("a slow admin body", [b"POST /_/purge HTTP/1.1\r\nHost: e\r\nX-Admin-Key: admin\r\nContent-Type: application/json\r\n"
                               b"Content-Length: 30\r\n\r\n{\"keys\": "], "408"),
        ("a slow admin body after 100 Continue", [b"POST /_/purge HTTP/1.1\r\nHost: e\r\nX-Admin-Key: admin\r\n"
                                                  b"Expect: 100-continue\r\nContent-Length: 30\r\n\r\n", b"{"], "408"),
        ("nothing at all", [], "eof"),
        ("a hit, then idle", [hit], "eof"),
        ("a range, then idle", [_req("GET", "/t/{t}/" + SEGMENT, "Range: bytes=0-9")], "eof"),
        ("a split hit, then idle", [hit[:7], hit[7:40], hit[40:]], "eof"),
    ]


CASES = _cases()


@pytest.mark.parametrize("name,chunks,outcome", CASES, ids=[c[0] for c in CASES])
async def test_same_deadlines_with_and_without_the_fast_path(pair, name, chunks, outcome):
    t = tok("t1")
    chunks = [c.replace(b"{t}", t.encode()) for c in chunks]
    answers = [await _send_then_read_to_eof(_port(e.url), *chunks) for e in pair]
    assert comparable(answers[0]) == comparable(answers[1])
    data = answers[0]
    answered = data.count(b"HTTP/1.1 200 OK\r\n") + data.count(b"HTTP/1.1 206 ")
    assert answered == sum(c.count(b"\r\n\r\n") for c in chunks if not c.startswith(b"POST"))
    if outcome == "408":
        assert _is_408_then_eof(data[data.index(TIMED_OUT):])
        assert data.index(TIMED_OUT) == len(data.rsplit(TIMED_OUT, 1)[0])  # one 408, the last thing sent
    else:
        assert TIMED_OUT not in data


async def test_a_slow_admin_body_is_not_acted_on(pair):
    e = pair[0]
    head = b"POST /_/purge HTTP/1.1\r\nHost: e\r\nX-Admin-Key: admin\r\nContent-Type: application/json\r\n"
    body = b'{"keys": ["' + SEGMENT.encode() + b'"]}'
    assert _is_408_then_eof(await _send_then_read_to_eof(
        _port(e.url), head + f"Content-Length: {len(body)}\r\n\r\n".encode(), body[:-3]))
    assert e.edge.ram.peek(SEGMENT) is not None  # the purge never ran
    data = await _send_then_read_to_eof(_port(e.url), head + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    assert data.startswith(b"HTTP/1.1 200 OK\r\n")  # sent whole, it is answered (then the idle close)
    assert e.edge.ram.peek(SEGMENT) is None


async def _slow_reader(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A client with a tiny receive buffer that reads nothing until told: the edge's answer stalls."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    return await asyncio.open_connection(sock=sock, limit=4096)


@pytest.mark.parametrize("fast_path", [True, False], ids=["fast path", "no fast path"])
@pytest.mark.parametrize("then", [b"", b"GET /t/"], ids=["alone", "half a head behind it"])
async def test_an_answer_being_received_is_not_cut(upstream, start_edge, fast_path, then):
    body = os.urandom(12 * 1024 * 1024)
    upstream.put(HUGE, body)
    e = await start_edge(upstream.url, fast_path=fast_path, ram_mb=64, **FAST)
    reader, writer = await _slow_reader(_port(e.url))
    try:
        writer.write(_req("GET", f"/t/{tok('t1')}/{HUGE}") + then)
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), HANG_GUARD_S)
        assert head.startswith(b"HTTP/1.1 200 OK\r\n")
        for _ in range(3):  # stalled: 3 x 0.5 s, past the header (0.2 s) and idle (0.3 s) timeouts
            await asyncio.sleep(0.5)
            await asyncio.wait_for(reader.readexactly(4096), HANG_GUARD_S)
        rest = await asyncio.wait_for(reader.read(), HANG_GUARD_S)
    finally:
        writer.close()
    got = 3 * 4096
    assert hashlib.sha256(rest[:len(body) - got]).digest() == hashlib.sha256(body[got:]).digest()
    tail = rest[len(body) - got:]
    assert _is_408_then_eof(tail) if then else tail == b""


def test_help_names_the_timeouts():
    out = subprocess.run([sys.executable, "-m", "vodstack", "edge", "--help"], capture_output=True, text=True,
                         timeout=60, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}).stdout
    for flag in ("--header-timeout S", "--body-timeout S", "--keepalive-timeout S"):
        assert flag in out


def test_edge_config_refuses_non_positive_timeouts():
    for key in FAST:
        with pytest.raises(ValueError, match=key):
            EdgeConfig(origin="http://o", **{key: 0})


@pytest.mark.parametrize("extra", [[], ["--no-fast-path"], ["--event-loop", "uvloop"]],
                         ids=["fast path", "no fast path", "uvloop"])
async def test_a_real_edge_closes_half_sent_heads_and_idle_connections(tmp_path: Path, extra):
    server = Server("edge-timeouts", ["edge", "--origin", "http://127.0.0.1:9", "--cache-dir", str(tmp_path / "cache"),
                                      "--port", "0", "--header-timeout", "0.3", "--body-timeout", "0.3",
                                      "--keepalive-timeout", "0.5", "--admin-key", "admin", *extra], tmp_path)
    try:
        port = _port(server.url)
        assert _is_408_then_eof(await _send_then_read_to_eof(port, b"GET /t/x/t1/a.m3u8 HTTP/1.1\r\nHost: e\r\n"))
        assert _is_408_then_eof(await _send_then_read_to_eof(
            port, b"POST /_/purge HTTP/1.1\r\nHost: e\r\nX-Admin-Key: admin\r\nContent-Length: 9\r\n\r\n{"))
        assert await _send_then_read_to_eof(port) == b""
        data = await _send_then_read_to_eof(port, _req("GET", "/_/health"))
        assert data.startswith(b"HTTP/1.1 200 OK\r\n") and TIMED_OUT not in data
    finally:
        server.stop()
