"""Run one origin process: open and check storage, listen, serve until SIGTERM/SIGINT, drain.

Start-up fails fast with one clear error (the CLI prints it as one line):

* the storage URL is wrong or its bucket/credentials are (``StorageConfigError``),
* storage does not answer ``check()`` within ``storage_timeout_s`` (``StorageUnavailable``),
* the address cannot be bound (``serverkit.listen.ListenError``, e.g. "cannot listen: port 8080 on
  127.0.0.1 is in use").

Binding, the stop signals and the event loop are ``serverkit``'s, as for the edge and steering.

Shutdown: the listening socket closes first, then in-flight responses get up to
``shutdown_timeout_s`` to finish (aiohttp's runner), then storage is closed.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Callable

from aiohttp import web

from origin.storage import Storage, StorageUnavailable, open_storage
from serverkit.deadlines import DeadlineAppRunner
from serverkit.listen import bind, http_url
from serverkit.run import run_on_loop, stop_on_signals

from .admin import redact_url
from .app import build_app
from .config import OriginConfig

log = logging.getLogger(__name__)


def run_origin(cfg: OriginConfig, *, on_listening: Callable[[str], None] | None = None) -> None:
    """Blocking: run the origin on the event loop ``cfg.loop`` names until a stop signal."""
    run_on_loop(lambda: serve(cfg, on_listening=on_listening), cfg.loop)


async def serve(cfg: OriginConfig, *, on_listening: Callable[[str], None] | None = None,
                stop: asyncio.Event | None = None) -> None:
    """Serve until ``stop`` is set (default: until SIGTERM or SIGINT), then shut down gracefully."""
    with stop_on_signals(stop) as stop_event:
        await _serve_until(cfg, stop_event, on_listening)
    log.info("origin stopped")


async def _serve_until(cfg: OriginConfig, stop: asyncio.Event,
                       on_listening: Callable[[str], None] | None) -> None:
    storage = open_storage(cfg.storage_url)
    try:
        await check_storage_at_start(storage, cfg.storage_timeout_s)
        runner = DeadlineAppRunner(build_app(cfg, storage), deadlines=cfg.deadlines, access_log=None,
                                   handle_signals=False, shutdown_timeout=cfg.shutdown_timeout_s)
        await runner.setup()
        try:
            url = await _listen(runner, cfg)
            log.info("origin listening", extra={"kv": {
                "url": url, "region": cfg.region, "storage": redact_url(storage.url), "loop": cfg.loop}})
            if on_listening is not None:
                on_listening(url)
            await stop.wait()
            log.info("origin stopping", extra={"kv": {"shutdown_timeout_s": cfg.shutdown_timeout_s}})
        finally:
            await runner.cleanup()
    finally:
        await storage.close()


async def check_storage_at_start(storage: Storage, timeout_s: float) -> None:
    """Raise the backend's StorageError (its message names the storage) if it cannot serve now."""
    try:
        async with asyncio.timeout(timeout_s):
            await storage.check()
    except TimeoutError:
        raise StorageUnavailable(
            f"storage {redact_url(storage.url)} did not answer within {timeout_s:g} s") from None


async def _listen(runner: web.AppRunner, cfg: OriginConfig) -> str:
    sock = bind(cfg.host, cfg.port, backlog=cfg.backlog)
    try:
        await web.SockSite(runner, sock, backlog=cfg.backlog).start()
    except BaseException:
        sock.close()
        raise
    return http_url(cfg.host, sock.getsockname()[1])

