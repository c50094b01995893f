"""The edge's aiohttp application: routes, start-up and clean-up of the tiers, fills and heartbeats."""
from __future__ import annotations

import asyncio
import os
import time
from typing import AsyncIterator

import aiohttp
from aiohttp import web

from . import admin
from .config import EdgeConfig
from .health import heartbeat_loop
from .node import Edge
from .prefill import PrefillManager
from httpsem.semantics import CORS_HEADERS, PREFLIGHT_HEADERS
from serverkit.tls import client_context
from serverkit.workers import WorkerRole, install_retire_hook

from .accesslog import AccessLog
from .cmcd import dynamic_header, static_header, tcp_estimate
from .serve import ACCESS_LOG_KEY, EDGE_KEY, OUTCOME, Outcome, handle_object
from httpsem.cmsd import DYNAMIC as CMSD_DYNAMIC, STATIC as CMSD_STATIC

HEARTBEAT_STOP_KEY: web.AppKey[asyncio.Event] = web.AppKey("heartbeat_stop", asyncio.Event)


def build_app(cfg: EdgeConfig, edge: Edge | None = None, role: WorkerRole | None = None) -> web.Application:
    """An application serving one edge (``role``: one worker of it); the tiers open on start-up
    (``edge.url`` is set by the runner)."""
    edge = edge or Edge(cfg, role=role)
    app = web.Application(client_max_size=1024 * 1024)
    app[EDGE_KEY] = edge
    app[ACCESS_LOG_KEY] = (AccessLog(AppendFile(cfg.access_log_file), always=True) if cfg.access_log_file
                           else AccessLog())
    app[admin.PREFILL_KEY] = PrefillManager(edge)
    app[HEARTBEAT_STOP_KEY] = asyncio.Event()
    app.router.add_get("/t/{token}/{title}/{path:.+}", handle_object)
    app.router.add_route("OPTIONS", "/t/{token}/{title}/{path:.+}", _preflight)
    app.on_response_prepare.append(_cors)
    app.router.add_get("/_/health", admin.handle_health)
    app.router.add_get("/_/metrics", admin.handle_metrics)
    app.router.add_post("/_/purge", admin.handle_purge)
    app.router.add_post("/_/prefill", admin.handle_prefill_post)
    app.router.add_get("/_/prefill", admin.handle_prefill_list)
    app.router.add_get("/_/prefill/{job}", admin.handle_prefill_get)
    app.cleanup_ctx.append(_lifecycle)
    install_retire_hook(app)  # a worker retiring at a reload says Connection: close (serverkit/workers.py)
    return app


async def _preflight(request: web.Request) -> web.Response:
    """CORS preflight for media paths (a page on another origin asking before a ranged GET)."""
    return web.Response(status=204, headers=PREFLIGHT_HEADERS)


async def _cors(request: web.Request, response: web.StreamResponse) -> None:
    """Every answer on a media path (errors too, so players can tell a 403 from a network error) gets
    the CORS headers, and with ``cmsd`` the CMSD pair (``edge/cmcd.py``)."""
    if request.path.startswith("/t/"):
        headers = response.headers
        headers.update(CORS_HEADERS)
        edge = request.app[EDGE_KEY]
        out = request.get(OUTCOME)
        if isinstance(out, Outcome) and response.status < 400:
            edge.cmsd.note_viewer(out.cmcd.keys, edge.clock())  # before the hint: this viewer counts
        if edge.cfg.cmsd and isinstance(out, Outcome):
            headers[CMSD_STATIC] = static_header(request.match_info.get("path", ""), edge.cfg.name)
            transport = request.transport
            sock = transport.get_extra_info("socket") if transport is not None else None
            headers[CMSD_DYNAMIC] = dynamic_header(
                edge.cfg.name, hint=edge.cmsd.hint(edge.clock(), edge.out_meter.rate, edge.draining),
                estimate=tcp_estimate(sock), rd_ms=(time.perf_counter() - out.started) * 1000)


class AppendFile:
    """A text stream appending to a file with one ``write(2)`` per block of whole lines (``O_APPEND``), so
    the workers of one edge can share one access-log file without cutting each other's lines."""

    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)

    def write(self, text: str) -> int:
        data = text.encode()
        written = os.write(self.fd, data)
        while written < len(data):  # a regular file takes it all at once; a full disk or a pipe may not
            written += os.write(self.fd, data[written:])
        return len(text)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        os.close(self.fd)


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    edge = app[EDGE_KEY]
    await edge.start()
    beat: asyncio.Task[None] | None = None
    stop = app[HEARTBEAT_STOP_KEY]
    if edge.cfg.steering and (edge.role is None or edge.role.slot == 0):  # one edge: worker 0 speaks for all
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=client_context(edge.cfg.upstream_ca)))
        snapshot = edge.health if edge.siblings is None else (lambda: admin.whole_health(app))
        beat = asyncio.get_running_loop().create_task(
            heartbeat_loop(edge.cfg.steering, edge.cfg.heartbeat_interval_s, snapshot, session, stop))
    yield
    stop.set()
    if beat is not None:
        try:
            await asyncio.wait_for(beat, 5)
        except (asyncio.TimeoutError, asyncio.CancelledError):
            pass
        await session.close()
    await app[admin.PREFILL_KEY].close()
    await edge.close()
    app[ACCESS_LOG_KEY].close()
    stream = app[ACCESS_LOG_KEY].stream
    if isinstance(stream, AppendFile):
        stream.close()
