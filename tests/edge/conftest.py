"""Fixtures of the edge tests: upstreams and edges as real aiohttp apps on 127.0.0.1 port 0.

    upstream       a test-only origin (``TestUpstream``) serving objects from a dict with the shared
                   RFC 9110 core; counts requests per key; can be slowed, made to fail or to hang
    start_edge     async factory: ``await start_edge(upstream_url, **config)`` -> RunningEdge
    start_origin_app  async factory: the real origin (origin.server.build_app) on a MemoryStorage
    tok(title)     a valid token for ``title`` signed with KEYS
"""
from __future__ import annotations

import asyncio
import collections
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable

import aiohttp
import pytest
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent))

from edge.app import build_app  # noqa: E402
from edge.config import EdgeConfig  # noqa: E402
from edge.node import Edge  # noqa: E402
from edge.serve import EDGE_KEY  # noqa: E402
from edge_helpers import KEYS, tok  # noqa: E402,F401
from origin.server.semantics import plan_response  # noqa: E402


@dataclass
class TestUpstream:
    """An origin for tests: objects by key, the same HTTP semantics as the origin, and knobs."""

    __test__ = False
    objects: dict[str, bytes] = field(default_factory=dict)
    requests: collections.Counter = field(default_factory=collections.Counter)
    headers_seen: list[dict[str, str]] = field(default_factory=list)
    chunk_bytes: int = 64 * 1024
    delay_per_chunk_s: float = 0.0
    delay_headers_s: float = 0.0
    mode: str = "ok"  # ok | error (500) | hang (never answers) | cut (closes mid-body)
    etags: dict[str, str] = field(default_factory=dict)
    url: str = ""
    bytes_sent: int = 0
    playlist_max_age_s: int = 1
    finished_at: float = 0.0  # time.monotonic() when the last body finished

    def put(self, key: str, data: bytes) -> None:
        self.objects[key] = data
        self.etags[key] = f"v{abs(hash(data)) % 10**12:x}-{len(data)}"

    async def handle(self, request: web.Request) -> web.StreamResponse:
        key = request.match_info["key"]
        if key.startswith("t/") and key.count("/") >= 3:  # called as a parent edge: /t/{token}/{key}
            key = key.split("/", 2)[2]
        self.requests[key] += 1
        self.headers_seen.append(dict(request.headers))
        if self.mode == "error":
            return web.Response(status=500)
        if self.mode == "hang":
            await asyncio.sleep(3600)
        if self.delay_headers_s:
            await asyncio.sleep(self.delay_headers_s)
        data = self.objects.get(key)
        if data is None:
            return web.Response(status=404)
        plan = plan_response(request.method, request.headers, path=key, size_bytes=len(data),
                             etag=self.etags[key], last_modified_s=1_700_000_000,
                             playlist_max_age_s=self.playlist_max_age_s)
        if not plan.send_body:
            return web.Response(status=plan.status, headers=plan.headers)
        resp = web.StreamResponse(status=plan.status, headers=plan.headers)
        await resp.prepare(request)
        pos = plan.start
        while pos < plan.end:
            if self.mode == "cut" and pos - plan.start >= self.chunk_bytes:
                request.transport.close()  # type: ignore[union-attr]
                return resp
            stop = min(pos + self.chunk_bytes, plan.end)
            await resp.write(data[pos:stop])
            self.bytes_sent += stop - pos
            pos = stop
            if self.delay_per_chunk_s:
                await asyncio.sleep(self.delay_per_chunk_s)
        await resp.write_eof()
        self.finished_at = time.monotonic()
        return resp


async def _serve(app: web.Application, runners: list[web.AppRunner]) -> str:
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    runners.append(runner)
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return f"http://127.0.0.1:{runner.addresses[0][1]}"


@pytest.fixture
async def upstream() -> AsyncIterator[TestUpstream]:
    up = TestUpstream()
    app = web.Application()
    app.router.add_get("/{key:.+}", up.handle)
    runners: list[web.AppRunner] = []
    up.url = await _serve(app, runners)
    yield up
    up.mode = "ok"
    for r in runners:
        await r.cleanup()


@dataclass
class RunningEdge:
    url: str
    edge: Edge
    cfg: EdgeConfig
    runner: web.AppRunner

    def obj_url(self, key: str) -> str:
        title = key.split("/", 1)[0]
        return f"{self.url}/t/{tok(title)}/{key}"

    async def stop(self) -> None:
        await self.runner.cleanup()


StartEdge = Callable[..., Awaitable[RunningEdge]]


@pytest.fixture
async def start_edge(tmp_path: Path) -> AsyncIterator[StartEdge]:
    running: list[RunningEdge] = []
    counter = iter(range(1000))

    async def start(origin: str, **overrides: Any) -> RunningEdge:
        n = next(counter)
        fields = dict(name=f"e{n}", origin=origin, cache_dir=tmp_path / f"edge{n}", ram_mb=16, disk_mb=64,
                      token_keys=dict(KEYS), admin_key="admin", access_log=False,
                      upstream_connect_timeout_s=1.0, upstream_read_timeout_s=2.0)
        fields.update(overrides)
        cfg = EdgeConfig(**fields)
        app = build_app(cfg)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        url = f"http://127.0.0.1:{runner.addresses[0][1]}"
        app[EDGE_KEY].url = url
        r = RunningEdge(url, app[EDGE_KEY], cfg, runner)
        running.append(r)
        return r

    yield start
    for r in running:
        await r.stop()


@pytest.fixture
async def start_origin_app() -> AsyncIterator[Callable[[dict[str, bytes]], Awaitable[str]]]:
    from origin.server import OriginConfig
    from origin.server import build_app as build_origin
    from origin.storage.memory import MemoryStorage

    runners: list[web.AppRunner] = []

    async def start(objects: dict[str, bytes]) -> str:
        storage = MemoryStorage()
        for k, v in objects.items():
            await storage.write(k, v)
        app = build_origin(OriginConfig(storage_url="memory://"), storage)
        return await _serve(app, runners)

    yield start
    for r in runners:
        await r.cleanup()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(auto_decompress=False) as s:
        yield s


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text, 0 if absent."""
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    total = 0.0
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        head, _, value = line.rpartition(" ")
        n, _, rest = head.partition("{")
        if n != name:
            continue
        if all(f'{k}="{v}"' in rest for k, v in labels.items()) or not want:
            total += float(value)
    return total


def wait_for(pred: Callable[[], bool], timeout_s: float = 5.0) -> Awaitable[None]:
    async def _w() -> None:
        t0 = time.monotonic()
        while not pred():
            if time.monotonic() - t0 > timeout_s:
                raise AssertionError("condition not met in time")
            await asyncio.sleep(0.01)
    return _w()
