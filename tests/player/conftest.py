"""Fixtures for the player tests: real aiohttp servers on 127.0.0.1 port 0 and a client session.
(Async tests run on asyncio's loop; the CLI tests run ``vodstack play`` itself, on uvloop.)

    serve               async factory: ``base_url = await serve(app)`` runs an aiohttp app until the test ends
    http                an aiohttp.ClientSession (closed after the test)
"""
from __future__ import annotations

import aiohttp
import pytest
from aiohttp import web


@pytest.fixture
async def serve():
    runners: list[web.AppRunner] = []

    async def start(app: web.Application) -> str:
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=0.2)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return f"http://127.0.0.1:{port}"

    yield start
    for runner in runners:
        await runner.cleanup()


@pytest.fixture
async def http():
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture(scope="session")
def player_store(tmp_path_factory):
    """A storage folder holding the synthetic title ``demo`` (60 s, 4 s segments, full ladder)."""
    from vodstack.sample import build_synthetic_title

    root = tmp_path_factory.mktemp("player-store")
    build_synthetic_title(root, "demo")
    return root


@pytest.fixture(scope="session")
def origin_url(player_store, tmp_path_factory):
    """A real ``vodstack origin`` process over ``player_store``."""
    from player_helpers import Server

    server = Server("origin", ["origin", "--storage", str(player_store), "--port", "0"],
                    tmp_path_factory.mktemp("player-origin-logs"))
    yield server.url
    server.stop()


@pytest.fixture(scope="session")
def player_stack(player_store, tmp_path_factory):
    """A real topology started by ``vodstack up``: 2 regions, 3 edges, 2 origins, steering (all on
    127.0.0.1, ports chosen at start) over ``player_store``. Yields a `player_helpers.Stack`."""
    from player_helpers import Stack

    stack = Stack(tmp_path_factory.mktemp("player-stack"), player_store)
    yield stack
    stack.stop()
