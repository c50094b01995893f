"""Running an edge as a server process: bind, announce, drain on SIGTERM, exit.

Binding (``serverkit.listen.ListenError`` for a busy port), the stop signals and the event loop
are ``serverkit``'s, shared with the origin and the steering service.

On SIGTERM (or SIGINT) the edge starts draining: ``/_/health`` says ``draining`` (503), a last
heartbeat tells the steering service, new object requests get 503 with ``Retry-After``, responses
in flight are allowed to finish (up to ``drain_timeout_s``), then the server stops and
:func:`serve` returns 0.
"""
from __future__ import annotations

import asyncio
import logging
import os
import time
from pathlib import Path
from typing import Callable

from aiohttp import web

from serverkit.listen import bind
from serverkit.run import run_on_loop, stop_on_signals

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
    sock = bind(cfg.host, cfg.port, backlog=2048)  # bind first: a busy port fails before anything else starts
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
    with stop_on_signals(stop) as stop_event:
        try:
            await _drain_after(stop_event, cfg, app)
        finally:
            await runner.cleanup()
    log.info("edge stopped", extra={"kv": {"name": cfg.name}})
    return 0


async def _drain_after(stop: asyncio.Event, cfg: EdgeConfig, app: web.Application) -> None:
    """Wait for ``stop``, then drain: health says draining, a last heartbeat, in-flight requests
    get up to ``drain_timeout_s``."""
    edge = app[EDGE_KEY]
    await stop.wait()
    edge.draining = True
    app[HEARTBEAT_STOP_KEY].set()
    log.info("draining", extra={"kv": {"active": edge.active_requests}})
    deadline = time.monotonic() + cfg.drain_timeout_s
    while edge.active_requests > 0 and time.monotonic() < deadline:
        await asyncio.sleep(0.05)


def run(cfg: EdgeConfig, ready: Callable[[str], None] = lambda url: None) -> int:
    """Run :func:`serve` on the event loop ``cfg.event_loop`` names."""
    return run_on_loop(lambda: serve(cfg, ready), cfg.event_loop)
