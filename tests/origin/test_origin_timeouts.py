"""Deadlines on what clients send (``serverkit/deadlines.py``), on real origins on 127.0.0.1.

A head that does not arrive whole within ``header_timeout_s`` gets 408 and the connection is closed;
so does a body that does not arrive within ``body_timeout_s``; an idle connection is closed after
``keepalive_timeout_s``; a response being written is never cut. Tiny timeouts; assertions are on what
the client reads (a 408, then EOF), never on how long it took: the long waits are hang guards only.
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

from origin.server.config import OriginConfig
from serverkit.deadlines import Action, ConnectionState, Phase, RequestDeadlines, decide
from tests.procs import REPO, Server

from origin_helpers import title_files

HANG_GUARD_S = 30.0  # far past every timeout below: only a server that never closes reaches it
FAST = dict(header_timeout_s=0.2, body_timeout_s=0.2, keepalive_timeout_s=0.3)
SEGMENT = "t1/video/r1/00001.m4s"


def _is_408_then_eof(data: bytes) -> bool:
    return data.startswith(b"HTTP/1.1 408 Request Timeout\r\n") and b"\r\nConnection: close\r\n" in data \
        and data.endswith(b"\r\n\r\nrequest timeout\n")


async def _send_then_read_to_eof(port: int, *chunks: bytes) -> bytes:
    """Write ``chunks``, then read until the server closes (EOF)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for c in chunks:
            writer.write(c)
            await writer.drain()
        return await asyncio.wait_for(reader.read(), HANG_GUARD_S)
    finally:
        writer.close()


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def _get(path: str, *headers: str) -> bytes:
    return (f"GET /{path} HTTP/1.1\r\nHost: origin\r\n" + "".join(h + "\r\n" for h in headers) + "\r\n").encode()


# -- the pure decision ------------------------------------------------------------------------------

LIMITS = RequestDeadlines(header_timeout_s=10.0, body_timeout_s=20.0, keepalive_timeout_s=30.0)


@pytest.mark.parametrize("state,now_s,action,at_s", [
    (ConnectionState(phase=Phase.HEAD, since_s=100.0), 105.0, Action.WAIT, 110.0),
    (ConnectionState(phase=Phase.HEAD, since_s=100.0), 110.0, Action.ANSWER_408, 0.0),
    (ConnectionState(phase=Phase.HEAD, since_s=100.0), 500.0, Action.ANSWER_408, 0.0),
    (ConnectionState(phase=Phase.BODY, since_s=100.0), 110.0, Action.WAIT, 120.0),
    (ConnectionState(phase=Phase.BODY, since_s=100.0), 120.0, Action.ANSWER_408, 0.0),
    (ConnectionState(phase=Phase.IDLE), 1e9, Action.NONE, 0.0),  # aiohttp's keep-alive timer closes it
    (ConnectionState(phase=Phase.BUSY), 1e9, Action.NONE, 0.0),  # an answer is never cut
    (ConnectionState(phase=Phase.BUSY, next_waiting=True), 200.0, Action.WAIT, 210.0),  # the earlier of the two
])
def test_decide(state, now_s, action, at_s):
    verdict = decide(state, LIMITS, now_s)
    assert (verdict.action, verdict.at_s) == (action, at_s)
    if action is Action.ANSWER_408:
        assert verdict.timed_out is state.phase


@pytest.mark.parametrize("field", ["header_timeout_s", "body_timeout_s", "keepalive_timeout_s"])
@pytest.mark.parametrize("value", [0, -1.0])
def test_deadlines_must_be_positive(field, value):
    with pytest.raises(ValueError, match=field):
        RequestDeadlines(**{field: value})
    with pytest.raises(ValueError, match=field):
        OriginConfig(storage_url="memory://", **{field: value})


# -- an origin in this process -----------------------------------------------------------------------

@pytest.fixture
async def origin(start_origin, title_root):
    return _port(await start_origin(OriginConfig(storage_url=str(title_root), port=0, admin_key="k", **FAST)))


@pytest.mark.parametrize("partial", [
    b"G",
    b"GET /t1/master.m3u8",
    b"GET /t1/master.m3u8 HTTP/1.1\r\n",
    b"GET /t1/master.m3u8 HTTP/1.1\r\nHost: origin\r\n",
    b"GET /t1/master.m3u8 HTTP/1.1\r\nHost: origin\r\n\r",
])
async def test_a_half_sent_head_gets_408_then_eof(origin, partial):
    assert _is_408_then_eof(await _send_then_read_to_eof(origin, partial))


async def test_a_head_completed_in_time_is_answered(start_origin, title_root):
    port = _port(await start_origin(OriginConfig(storage_url=str(title_root), port=0, header_timeout_s=5.0,
                                                 keepalive_timeout_s=0.3)))
    raw = _get("t1/master.m3u8")
    data = await _send_then_read_to_eof(port, raw[:10], raw[10:30], raw[30:])
    assert data.startswith(b"HTTP/1.1 200 OK\r\n") and data.endswith(title_files()["t1/master.m3u8"])
    assert b"408" not in data  # then closed as idle, silently


async def test_an_idle_connection_is_closed_silently(origin):
    assert await _send_then_read_to_eof(origin) == b""  # never sent a byte
    data = await _send_then_read_to_eof(origin, _get("t1/master.m3u8"))  # one answer, then idle
    assert data.startswith(b"HTTP/1.1 200 OK\r\n") and data.endswith(title_files()["t1/master.m3u8"])


async def test_the_next_head_has_its_own_deadline(origin):
    """Answers on a kept-alive connection, then half a head: its deadline, not the first request's."""
    data = await _send_then_read_to_eof(origin, _get("t1/title.json") + _get("t1/master.m3u8") + b"GET /t1/ti")
    assert data.count(b"HTTP/1.1 200 OK\r\n") == 2
    assert _is_408_then_eof(data[data.rindex(b"HTTP/1.1 408"):])


async def test_a_slow_body_gets_408_then_eof_and_is_not_acted_on(origin):
    head = b"POST /_/delay HTTP/1.1\r\nHost: origin\r\nX-Admin-Key: k\r\nContent-Type: application/json\r\n"
    data = await _send_then_read_to_eof(origin, head + b"Content-Length: 40\r\n\r\n", b'{"ms": 5')
    assert _is_408_then_eof(data)
    data = await _send_then_read_to_eof(origin, b"GET /_/delay HTTP/1.1\r\nHost: o\r\nConnection: close\r\n\r\n")
    assert data.startswith(b"HTTP/1.1 200 OK\r\n") and b'"delay_ms": 0' in data
    whole = b'{"ms": 0}'  # a body sent whole is answered
    data = await _send_then_read_to_eof(origin, head + f"Content-Length: {len(whole)}\r\nConnection: close\r\n\r\n".encode() + whole)
    assert data.startswith(b"HTTP/1.1 200 OK\r\n")


async def test_a_head_begun_in_the_read_that_ends_a_body_is_still_bounded(origin):
    """aiohttp's parser does not tell where that body ended: the idle timer closes the connection."""
    body = b'{"ms": 0}'
    data = await _send_then_read_to_eof(origin, b"POST /_/delay HTTP/1.1\r\nHost: o\r\nX-Admin-Key: k\r\n"
                                                + f"Content-Length: {len(body)}\r\n\r\n".encode() + body + b"GET /t1/")
    assert data.startswith(b"HTTP/1.1 200 OK\r\n") and data.count(b"HTTP/1.1 ") <= 2  # then EOF


async def test_a_slow_body_after_100_continue_gets_408_then_eof(origin):
    data = await _send_then_read_to_eof(origin, b"POST /_/delay HTTP/1.1\r\nHost: o\r\nX-Admin-Key: k\r\n"
                                                b"Expect: 100-continue\r\nContent-Length: 9\r\n\r\n", b"{")
    assert data.startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
    assert _is_408_then_eof(data.removeprefix(b"HTTP/1.1 100 Continue\r\n\r\n"))


async def _slow_reader(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A client with a tiny receive buffer that reads nothing until told: the server's answer stalls."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    return await asyncio.open_connection(sock=sock, limit=4096)


@pytest.fixture
async def big_origin(start_origin, tmp_path):
    """An origin holding a 32 MiB object, far more than every socket buffer between it and a client."""
    root = tmp_path / "big"
    (root / "t1").mkdir(parents=True)
    body = os.urandom(32 * 1024 * 1024)
    (root / "t1" / "huge.m4s").write_bytes(body)
    port = _port(await start_origin(OriginConfig(storage_url=str(root), port=0, admin_key="k", **FAST)))
    return port, body


@pytest.mark.parametrize("then", [
    b"", b"GET /t1/huge.m4s HT", b"POST /_/delay HTTP/1.1\r\nHost: o\r\nX-Admin-Key: k\r\nContent-Length: 9\r\n\r\n{"],
    ids=["alone", "half a head behind it", "half a body behind it"])
async def test_a_response_being_received_is_not_cut(big_origin, then):
    """A slow reader stalls the answer far past every timeout; it still gets every byte. Half a head
    (or a head and half its body) sent behind it times out only after the answer: the whole answer,
    then the 408."""
    port, body = big_origin
    reader, writer = await _slow_reader(port)
    try:
        writer.write(_get("t1/huge.m4s") + then)
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), HANG_GUARD_S)
        assert head.startswith(b"HTTP/1.1 200 OK\r\n")
        for _ in range(3):  # stalled: 3 x 0.5 s, past the header (0.2 s) and idle (0.3 s) timeouts
            await asyncio.sleep(0.5)
            await asyncio.wait_for(reader.readexactly(4096), HANG_GUARD_S)
        await asyncio.sleep(0.5)
        rest = await asyncio.wait_for(reader.read(), HANG_GUARD_S)
    finally:
        writer.close()
    got = 3 * 4096
    tail = rest[len(body) - got:]
    assert hashlib.sha256(rest[:len(body) - got]).digest() == hashlib.sha256(body[got:]).digest()
    if then:
        assert _is_408_then_eof(tail)
    else:
        assert tail == b""


# -- a real `vodstack origin` process ----------------------------------------------------------------

@pytest.fixture(params=["asyncio", "uvloop"])
def origin_process(request, title_root, tmp_path):
    server = Server("origin-timeouts", ["origin", "--storage", str(title_root), "--port", "0",
                                        "--header-timeout", "0.3", "--body-timeout", "0.3",
                                        "--keepalive-timeout", "0.5", "--admin-key", "k",
                                        "--loop", request.param], tmp_path)
    yield _port(server.url)
    server.stop()


async def test_a_real_origin_closes_half_sent_heads_and_idle_connections(origin_process):
    port = origin_process
    assert _is_408_then_eof(await _send_then_read_to_eof(port, b"GET /t1/master.m3u8 HTTP/1.1\r\nHost: o\r\n"))
    assert _is_408_then_eof(await _send_then_read_to_eof(
        port, b"POST /_/delay HTTP/1.1\r\nHost: o\r\nX-Admin-Key: k\r\nContent-Length: 9\r\n\r\n{"))
    assert await _send_then_read_to_eof(port) == b""
    data = await _send_then_read_to_eof(port, _get(SEGMENT))
    assert data.startswith(b"HTTP/1.1 200 OK\r\n") and data.endswith(title_files()[SEGMENT])


@pytest.mark.parametrize("flag", ["--header-timeout", "--body-timeout", "--keepalive-timeout"])
def test_a_bad_timeout_flag_is_one_line_and_a_non_zero_exit(flag, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "vodstack", "origin", "--storage", str(tmp_path), "--port", "0",
                           flag, "0"], capture_output=True, text=True, timeout=60, cwd=REPO,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and flag.removeprefix("--").replace("-", "_") in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr


def test_help_names_the_timeouts():
    out = subprocess.run([sys.executable, "-m", "vodstack", "origin", "--help"], capture_output=True, text=True,
                         timeout=60, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}).stdout
    for flag in ("--header-timeout S", "--body-timeout S", "--keepalive-timeout S"):
        assert flag in out
