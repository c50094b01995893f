"""Property: whatever the Range header, a real origin answers 200/206/416/400 (never 5xx), and the
bytes it sends are exactly the object's bytes (the slice named by Content-Range for a 206).

The origin runs in a background thread with its own loop (``origin.server.serve``); requests go
through ``http.client`` so that any header bytes reach the server as they are.
"""
from __future__ import annotations

import asyncio
import http.client
import random
import re
import threading
from typing import Iterator

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from origin.server.config import OriginConfig
from origin.server.serve import serve

SIZE_BYTES = 5000
DATA = random.Random(11).randbytes(SIZE_BYTES)
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+)")


class OriginThread:
    """``serve()`` on a private loop in a daemon thread; ``stop()`` shuts it down gracefully."""

    def __init__(self, cfg: OriginConfig) -> None:
        self.cfg = cfg
        self.port = 0
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()
        if not self._ready.wait(20) or not self.port:
            raise RuntimeError("origin thread did not start")

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()

        def listening(url: str) -> None:
            self.port = int(url.rsplit(":", 1)[1])
            self._ready.set()

        try:
            await serve(self.cfg, on_listening=listening, stop=self._stop)
        finally:
            self._ready.set()

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)


@pytest.fixture(scope="module")
def origin_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    root = tmp_path_factory.mktemp("range-root")
    (root / "t1").mkdir()
    (root / "t1" / "obj.m4s").write_bytes(DATA)
    (root / "t1" / "small.m4s").write_bytes(DATA[:10])
    server = OriginThread(OriginConfig(storage_url=str(root), port=0, sendfile_min_bytes=1000))
    server.start()
    yield server.port
    server.stop()


def fetch(port: int, path: str, range_value: bytes) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.putrequest("GET", path, skip_accept_encoding=True)
        conn.putheader("Range", range_value)
        conn.endheaders()
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def check_answer(port: int, range_value: bytes, path: str = "/t1/obj.m4s", data: bytes = DATA) -> None:
    status, headers, body = fetch(port, path, range_value)
    assert status in (200, 206, 416, 400), (status, range_value)
    event(f"status {status}")
    if status == 200:
        assert body == data
    elif status == 206:
        m = _CONTENT_RANGE.fullmatch(headers["content-range"])
        assert m, headers["content-range"]
        first, last, size = map(int, m.groups())
        assert size == len(data) and 0 <= first <= last < size
        assert body == data[first:last + 1]
    elif status == 416:
        assert headers["content-range"] == f"bytes */{len(data)}"


def header_bytes(text: str) -> bytes:
    """What a client can put on the wire as one header value (no CR/LF: they would end it)."""
    return text.replace("\r", "").replace("\n", "").encode("utf-8")


_position = st.one_of(st.integers(0, SIZE_BYTES + 10).map(str), st.just(""))
_number = st.one_of(
    _position,
    st.integers(0, 10**40).map(str),
    st.sampled_from(["-1", "0x10", " 5", "007", "\u0663", "1e3", "+3", "5 ", "18446744073709551616"]),
)
_spec = st.builds(lambda a, b, dash: f"{a}{dash}{b}", _number, _number, st.sampled_from(["-", "-", "--", " - ", ""]))
#: ``bytes=a-b`` with positions around the object's size: mostly 206s and 416s.
WELL_FORMED_RANGES = st.builds(lambda a, b: f"bytes={a}-{b}", _position, _position)
#: Near misses: other units, separators, several ranges, odd numbers.
MESSY_RANGES = st.builds(
    lambda unit, eq, specs, sep: f"{unit}{eq}{sep.join(specs)}",
    st.sampled_from(["bytes", "bytes", "Bytes", "BYTES", " bytes", "byte", "items", ""]),
    st.sampled_from(["=", "=", " = ", "", "=="]),
    st.lists(_spec, min_size=1, max_size=3),
    st.sampled_from([",", ", ", ";", " "]),
)
NEAR_VALID_RANGES = st.one_of(WELL_FORMED_RANGES, MESSY_RANGES)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(range_value=st.text(max_size=40))
def test_any_text_range_header(origin_port: int, range_value: str):
    check_answer(origin_port, header_bytes(range_value))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(range_value=NEAR_VALID_RANGES, small=st.booleans())
def test_near_valid_range_header(origin_port: int, range_value: str, small: bool):
    if small:
        check_answer(origin_port, header_bytes(range_value), "/t1/small.m4s", DATA[:10])
    else:
        check_answer(origin_port, header_bytes(range_value))


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(max_size=30))
def test_raw_header_bytes(origin_port: int, raw: bytes):
    check_answer(origin_port, raw.replace(b"\r", b"").replace(b"\n", b""))
