"""Fixtures of the edge tests: upstreams and edges as real aiohttp apps on 127.0.0.1 port 0.

    upstream       our real origin over a LocalStorage folder (``RealOrigin``): ``put`` objects, read the
                   requests it was asked per key and the headers it saw
    fake_upstream  a fake origin (``TestUpstream``) for what a real one cannot do on demand: fail with a
                   chosen status, hang, cut a body, trickle chunks, wait on a gate
    start_edge     async factory: ``await start_edge(upstream_url, **config, clock=FakeClock())`` -> RunningEdge
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
from edge.fastpath import EdgeRunner  # noqa: E402
from serverkit.tls import server_context  # noqa: E402
from edge.node import Edge  # noqa: E402
from edge.serve import EDGE_KEY  # noqa: E402
from edge_helpers import KEYS, RealOrigin, TestUpstream, _serve, tok  # noqa: E402,F401


@pytest.fixture
async def upstream(tmp_path: Path) -> AsyncIterator[RealOrigin]:
    origin = RealOrigin(tmp_path / "origin")
    runners: list[web.AppRunner] = []
    origin.url = await _serve(origin.app(), runners)
    yield origin
    for r in runners:
        await r.cleanup()


@pytest.fixture
async def fake_upstream() -> AsyncIterator[TestUpstream]:
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
        clock = overrides.pop("clock", None)  # a FakeClock: freshness, breakers, negative cache move with it
        fields.update(overrides)
        cfg = EdgeConfig(**fields)
        app = build_app(cfg, Edge(cfg, clock) if clock is not None else None)
        runner = EdgeRunner(app, access_log=None, shutdown_timeout=0.5)  # as edge.server runs it
        await runner.setup()
        tls = server_context(cfg.tls) if cfg.tls is not None else None  # as edge.server serves it
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=tls)
        await site.start()
        url = f"{'https' if tls else 'http'}://127.0.0.1:{runner.addresses[0][1]}"
        app[EDGE_KEY].url = url
        r = RunningEdge(url, app[EDGE_KEY], cfg, runner)
        running.append(r)
        return r

    yield start
    for r in running:
        await r.stop()


@pytest.fixture
async def start_origin_app() -> AsyncIterator[Callable[[dict[str, bytes]], Awaitable[str]]]:
    from origin.server.config import OriginConfig
    from origin.server.app import build_app as build_origin
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


