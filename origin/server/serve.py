"""Run one origin process: open and check storage, listen, serve until SIGTERM/SIGINT, drain.

Start-up fails fast with one clear error (the CLI prints it as one line):

* the storage URL is wrong or its bucket/credentials are (``StorageConfigError``),
* storage does not answer ``check()`` within ``storage_timeout_s`` (``StorageUnavailable``),
* the address cannot be bound (:class:`ListenError`, e.g. "port 8080 on 127.0.0.1 is in use").

Shutdown: the listening socket closes first, then in-flight responses get up to
``shutdown_timeout_s`` to finish (aiohttp's runner), then storage is closed.
"""
from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import signal
from typing import Callable, Iterator

from aiohttp import web

from origin.storage import Storage, StorageUnavailable, open_storage

from .admin import redact_url
from .app import build_app
from .config import OriginConfig
from .deadlines import DeadlineAppRunner

log = logging.getLogger(__name__)


class ListenError(Exception):
    """The server socket cannot be bound (port in use, address not available, no permission)."""


def run_origin(cfg: OriginConfig, *, on_listening: Callable[[str], None] | None = None) -> None:
    """Blocking: run the origin on the event loop ``cfg.loop`` names until a stop signal."""
    loop_factory = None
    if cfg.loop == "uvloop":
        import uvloop
        loop_factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(serve(cfg, on_listening=on_listening))


async def serve(cfg: OriginConfig, *, on_listening: Callable[[str], None] | None = None,
                stop: asyncio.Event | None = None) -> None:
    """Serve until ``stop`` is set (default: until SIGTERM or SIGINT), then shut down gracefully."""
    with _stop_on_signals(stop) as stop_event:
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
    site = web.TCPSite(runner, cfg.host, cfg.port, backlog=cfg.backlog)
    try:
        await site.start()
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            raise ListenError(f"port {cfg.port} on {cfg.host} is in use") from None
        raise ListenError(f"cannot listen on {cfg.host} port {cfg.port}: {e.strerror or e}") from None
    host = f"[{cfg.host}]" if ":" in cfg.host else cfg.host
    return f"http://{host}:{site.port}"


@contextlib.contextmanager
def _stop_on_signals(stop: asyncio.Event | None) -> Iterator[asyncio.Event]:
    """The caller's ``stop`` event, or one that SIGTERM/SIGINT set (handlers live for the whole
    serve, start-up included, so a signal never finds Python's default handlers)."""
    if stop is not None:
        yield stop
        return
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, _on_signal, sig, stop)
    try:
        yield stop
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


def _on_signal(sig: signal.Signals, stop: asyncio.Event) -> None:
    log.info("signal received", extra={"kv": {"signal": sig.name}})
    stop.set()
