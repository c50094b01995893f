"""Range property test: against whole and sliced objects, cached and uncached, the body of every
answer equals the file's bytes and no answer is a 5xx."""
from __future__ import annotations

import asyncio
import json
import os
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings, strategies as st

from edge_helpers import RealOrigin
from edge.app import build_app
from edge.fastpath import EdgeRunner
from edge.config import EdgeConfig
from edge.serve import EDGE_KEY
from edge_helpers import KEYS, tok

SMALL = os.urandom(300_000)
LARGE = os.urandom(5_000_000 + 12345)  # > large_object_bytes: cached in 256 KiB slices
OBJECTS = {"t1/video/v1/00001.m4s": SMALL, "t1/video/v1/all.mp4": LARGE}


class Harness:
    """Our origin over a folder and an edge on a loop of their own (a thread), for blocking hypothesis tests."""

    def __init__(self, tmp: Path) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.tmp = tmp
        self.runners: list[web.AppRunner] = []
        self.upstream = RealOrigin(tmp / "origin")
        for k, v in OBJECTS.items():
            self.upstream.put(k, v)
        self.url = self.call(self._start())

    def call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)

    async def _serve(self, app: web.Application, runner_class: type[web.AppRunner] = EdgeRunner) -> str:
        runner = runner_class(app, access_log=None, shutdown_timeout=0.2)  # the edge as edge.server runs it
        await runner.setup()
        self.runners.append(runner)
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        return f"http://127.0.0.1:{runner.addresses[0][1]}"

    async def _start(self) -> str:
        self.upstream.url = await self._serve(self.upstream.app(), web.AppRunner)
        cfg = EdgeConfig(origin=self.upstream.url, cache_dir=self.tmp / "cache", ram_mb=4, disk_mb=64,
                         token_keys=dict(KEYS), admin_key="admin", access_log=False,
                         slice_bytes=256 * 1024, large_object_bytes=2 * 1024 * 1024)
        app = build_app(cfg)
        self.edge = app[EDGE_KEY]
        return await self._serve(app)

    def close(self) -> None:
        async def stop() -> None:
            for r in self.runners:
                await r.cleanup()
        self.call(stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)

    def get(self, key: str, headers: dict[str, str]) -> tuple[int, bytes, dict[str, str]]:
        req = urllib.request.Request(f"{self.url}/t/{tok('t1')}/{key}", headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=20) as r:
                return r.status, r.read(), dict(r.headers)
        except urllib.error.HTTPError as e:
            return e.code, e.read(), dict(e.headers)

    def purge(self, key: str) -> None:
        req = urllib.request.Request(f"{self.url}/_/purge", data=json.dumps({"keys": [key]}).encode(),
                                     headers={"X-Admin-Key": "admin", "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            assert r.status == 200
        self.call(self.edge.disk.flush())


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    h = Harness(tmp_path_factory.mktemp("ranges"))
    yield h
    h.close()


def expected(header: str | None, data: bytes) -> tuple[int, bytes]:
    """What RFC 9110 says, written independently of the code under test."""
    size = len(data)
    if header is None:
        return 200, data
    spec = header[len("bytes="):] if header.startswith("bytes=") else None
    if spec is None or "," in spec or spec.count("-") != 1:
        return 200, data
    first, last = spec.split("-")
    if not (first.isdigit() or first == "") or not (last.isdigit() or last == "") or (first == last == ""):
        return 200, data
    if first == "":
        n = int(last)
        return (416, b"") if n == 0 else (206, data[max(0, size - n):])
    a = int(first)
    if last != "" and int(last) < a:
        return 200, data
    if a >= size:
        return 416, b""
    b = size - 1 if last == "" else min(int(last), size - 1)
    return 206, data[a:b + 1]


def range_headers(size: int) -> st.SearchStrategy[str | None]:
    pos = st.integers(0, size + 10)
    edge_pos = st.sampled_from([0, 1, 255, 256 * 1024 - 1, 256 * 1024, 256 * 1024 + 1, size - 1, size, size + 1])
    p = st.one_of(pos, edge_pos)
    return st.one_of(
        st.none(),
        st.builds(lambda a, n: f"bytes={a}-{a + n}", p, st.integers(0, 700_000)),
        st.builds(lambda a: f"bytes={a}-", p),
        st.builds(lambda n: f"bytes=-{n}", st.integers(0, size + 5)),
        st.builds(lambda a, b: f"bytes={a}-{b}", p, p),
        st.sampled_from(["bytes=", "bytes=-", "bytes=5-2", "bytes=0-1,5-9", "items=0-9", "bytes=x-y"]),
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), which=st.sampled_from(sorted(OBJECTS)), purge_first=st.booleans())
def test_range_bodies_equal_file_bytes(harness: Harness, data: st.DataObject, which: str, purge_first: bool) -> None:
    body_bytes = OBJECTS[which]
    header = data.draw(range_headers(len(body_bytes)))
    if purge_first:
        harness.purge(which)
    status, body, headers = harness.get(which, {"Range": header} if header is not None else {})
    assert status < 500
    want_status, want_body = expected(header, body_bytes)
    assert status == want_status, (header, status)
    if status in (200, 206):
        assert body == want_body, header
        assert int(headers["Content-Length"]) == len(want_body)
