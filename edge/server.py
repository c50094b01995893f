"""Running an edge as a server process: bind, announce, drain on SIGTERM, exit.

Binding (``serverkit.listen.ListenError`` for a busy port), TLS (``--tls-cert``/``--tls-key``: HTTPS on
``port``, ``--http-port`` plain HTTP beside it; ``serverkit.tls.TlsError`` for a bad certificate or key),
the stop signals and the event loop are ``serverkit``'s, shared with the origin and the steering
service. The RAM-hit fast path runs on TLS connections too: it sits in the protocol, above the TLS
layer, and sees the decrypted bytes.

On SIGTERM (or SIGINT) the edge starts draining: ``/_/health`` says ``draining`` (503), a last
heartbeat tells the steering service, new object requests get 503 with ``Retry-After``, responses
in flight are allowed to finish (up to ``drain_timeout_s``), then the server stops and
:func:`serve` returns 0.

A worker of ``--workers N`` (``role``) serves the sockets its master bound, and on the master's
SIGUSR2 (a reload: its successor already listens) retires instead: it stops accepting, says
``Connection: close`` on every further answer, writes and deletes nothing more on disk, lets its
connections finish (up to ``drain_timeout_s``) and exits 0, with no draining heartbeat.
"""
from __future__ import annotations

import asyncio
import logging
import os
import time
from pathlib import Path
from typing import Callable

from aiohttp import web

from serverkit.listen import inherited_listeners, open_listeners
from serverkit.tls import client_context
from serverkit.run import run_on_loop, stop_on_signals
from serverkit.workers import (RETIRE_IDLE_GRACE_S, RETIRE_KEY, WorkerRole, retire_on_signal, retire_runner,
                               stop_or_retire)

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
                stop: asyncio.Event | None = None, role: WorkerRole | None = None) -> int:
    """Serve until SIGTERM/SIGINT (or ``stop`` is set); ``ready(text)`` is called once listening, with
    the URL (``https://`` with TLS), then `` and http://...`` when a plain port is served beside it.
    ``role``: one worker of a master (module docstring)."""
    check_cache_dir(cfg.cache_dir)
    client_context(cfg.upstream_ca)  # a bad --upstream-ca is one line now, not at the first fill
    # TLS and binding first: a bad certificate or a busy port fails before anything else starts
    if role is None:
        listeners = open_listeners(cfg.host, cfg.port, backlog=2048, tls=cfg.tls, http_port=cfg.http_port)
    else:
        listeners = inherited_listeners(cfg.host, role.sockets(), tls=cfg.tls)
    app = build_app(cfg, role=role)
    edge = app[EDGE_KEY]
    runner = EdgeRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
    try:
        await runner.setup()
        await listeners.start(runner, backlog=2048)
        if edge.siblings is not None:
            await edge.siblings.serve(runner)
    except BaseException:
        listeners.close()
        await runner.cleanup()
        raise
    server = runner.server
    if server is not None:
        edge.open_connections = lambda: len(server._connections)  # noqa: SLF001 - aiohttp keeps no public count
    edge.url = cfg.public_url or listeners.url
    log.info("edge listening", extra={"kv": {"name": cfg.name, "region": cfg.region, "url": listeners.url,
                                             "plain_url": listeners.plain_url, "origin": cfg.origin,
                                             "parents": len(cfg.parents), "peers": len(cfg.peers)}})
    ready(listeners.announce)
    with stop_on_signals(stop) as stop_event:
        try:
            if role is None:
                await _drain_after(stop_event, cfg, app)
            else:
                with retire_on_signal(asyncio.Event()) as retire:
                    if await stop_or_retire(stop_event, retire):
                        await _retire(runner, cfg, app)
                    else:
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


async def _retire(runner: EdgeRunner, cfg: EdgeConfig, app: web.Application) -> None:
    """Replaced at a reload: finish what is in flight, close every connection, no draining heartbeat."""
    edge = app[EDGE_KEY]
    edge.retiring = True
    app[RETIRE_KEY].retiring = True
    edge.disk.read_only = True
    log.info("retiring", extra={"kv": {"active": edge.active_requests}})
    await retire_runner(runner, idle_grace_s=RETIRE_IDLE_GRACE_S, deadline_s=cfg.drain_timeout_s)


def run(cfg: EdgeConfig, ready: Callable[[str], None] = lambda url: None, role: WorkerRole | None = None) -> int:
    """Run :func:`serve` on the event loop ``cfg.event_loop`` names."""
    return run_on_loop(lambda: serve(cfg, ready, role=role), cfg.event_loop)
