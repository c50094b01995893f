"""Fixtures of the origin tests: a title folder, and real origins on 127.0.0.1 port 0.

    title_root     a storage root holding title ``t1`` (segments, playlists, subtitles, a 3 MB
                   object) with ``secret.txt`` *next to* the root, for traversal tests
    start_origin   async factory: ``await start_origin(cfg)`` runs ``origin.server.serve`` in
                   the test's loop (storage check, bind, graceful stop) and returns its base URL
    start_app      async factory: ``await start_app(cfg, storage)`` serves ``build_app`` with a
                   storage the test built itself (no start-up check), returns the base URL
"""
from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp import web

from origin.server.config import OriginConfig
from origin.server.app import build_app
from origin.server.serve import serve
from origin.storage import Storage

from origin_helpers import SECRET, title_files

@pytest.fixture
def title_root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    for key, data in title_files().items():
        path = root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    (tmp_path / "secret.txt").write_bytes(SECRET)
    (tmp_path / "rootsecret.m4s").write_bytes(SECRET)  # shares the root's name prefix
    os.symlink(tmp_path / "secret.txt", root / "t1" / "link.m4s")
    return root


StartOrigin = Callable[[OriginConfig], Awaitable[str]]


@pytest.fixture
async def start_origin() -> AsyncIterator[StartOrigin]:
    running: list[tuple[asyncio.Event, asyncio.Task[None]]] = []

    async def start(cfg: OriginConfig) -> str:
        stop = asyncio.Event()
        listening: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        task = asyncio.create_task(serve(cfg, on_listening=listening.set_result, stop=stop))
        running.append((stop, task))
        await asyncio.wait({task, listening}, timeout=20, return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            task.result()  # raises the start-up error
        return listening.result()

    yield start
    for stop, task in running:
        stop.set()
        if not task.done():
            await asyncio.wait_for(task, 30)


StartApp = Callable[[OriginConfig, Storage], Awaitable[str]]


@pytest.fixture
async def start_app() -> AsyncIterator[StartApp]:
    runners: list[web.AppRunner] = []

    async def start(cfg: OriginConfig, storage: Storage) -> str:
        runner = web.AppRunner(build_app(cfg, storage), access_log=None, shutdown_timeout=5)
        await runner.setup()
        runners.append(runner)
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        return f"http://127.0.0.1:{site.port}"

    yield start
    for runner in runners:
        await runner.cleanup()
