"""Running an edge as a server process: bind, announce, drain on SIGTERM, exit.

On SIGTERM (or SIGINT) the edge starts draining: ``/_/health`` says ``draining`` (503), a last
heartbeat tells the steering service, new object requests get 503 with ``Retry-After``, responses
in flight are allowed to finish (up to ``drain_timeout_s``), then the server stops and
:func:`serve` returns 0.
"""
from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import time
from pathlib import Path
from typing import Callable

from aiohttp import web

from .app import HEARTBEAT_STOP_KEY, build_app
from .config import EdgeConfig
from .errors import EdgeStartError
from .fastpath import EdgeRunner
from .serve import EDGE_KEY

log = logging.getLogger(__name__)


def check_cache_dir(path: Path) -> None:
    """Create ``path`` if needed and prove it writable, or raise EdgeStartError."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".probe-{os.getpid()}"
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as e:
        raise EdgeStartError(f"cache dir {path} is not writable: {e.strerror or e}") from None


async def serve(cfg: EdgeConfig, ready: Callable[[str], None] = lambda url: None,
                stop: asyncio.Event | None = None) -> int:
    """Serve until SIGTERM/SIGINT (or ``stop`` is set); ``ready(url)`` is called once listening."""
    check_cache_dir(cfg.cache_dir)
    try:  # bind first: a busy port fails before anything else starts
        sock = socket.create_server((cfg.host, cfg.port), backlog=2048)
    except OSError as e:
        raise EdgeStartError(f"cannot listen on {cfg.host}:{cfg.port}: {e.strerror or e}") from None
    app = build_app(cfg)
    edge = app[EDGE_KEY]
    runner = EdgeRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
    try:
        await runner.setup()
        site = web.SockSite(runner, sock)
        await site.start()
    except BaseException:
        sock.close()
        await runner.cleanup()
        raise
    host, port = sock.getsockname()[:2]
    server = runner.server
    if server is not None:
        edge.open_connections = lambda: len(server._connections)  # noqa: SLF001 - aiohttp keeps no public count
    listen_url = f"http://{host}:{port}"
    edge.url = cfg.public_url or listen_url
    log.info("edge listening", extra={"kv": {"name": cfg.name, "region": cfg.region, "url": listen_url,
                                             "origin": cfg.origin, "parents": len(cfg.parents), "peers": len(cfg.peers)}})
    ready(listen_url)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
        edge.draining = True
        app[HEARTBEAT_STOP_KEY].set()
        log.info("draining", extra={"kv": {"active": edge.active_requests}})
        deadline = time.monotonic() + cfg.drain_timeout_s
        while edge.active_requests > 0 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        await runner.cleanup()
    log.info("edge stopped", extra={"kv": {"name": cfg.name}})
    return 0


def run(cfg: EdgeConfig, ready: Callable[[str], None] = lambda url: None) -> int:
    """Run :func:`serve` on the event loop ``cfg.event_loop`` names."""
    factory = None
    if cfg.event_loop == "uvloop":
        import uvloop

        factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(serve(cfg, ready))
