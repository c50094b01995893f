"""Run one origin process: open and check storage, listen, serve until SIGTERM/SIGINT, drain.

Start-up fails fast with one clear error (the CLI prints it as one line):

* the storage URL is wrong or its bucket/credentials are (``StorageConfigError``),
* storage does not answer ``check()`` within ``storage_timeout_s`` (``StorageUnavailable``),
* the address cannot be bound (``serverkit.listen.ListenError``, e.g. "cannot listen: port 8080 on
  127.0.0.1 is in use"),
* the TLS certificate or key cannot serve (``serverkit.tls.TlsError``: missing, not PEM, expired,
  a key that does not match), checked before storage is opened.

With TLS the origin serves HTTPS on ``port`` (and plain HTTP on ``http_port`` if set); asyncio's
zero-copy ``sendfile`` does not apply to a TLS transport, which encrypts in user space, so large
bodies are read and written in ``chunk_bytes`` pieces there.

Binding, the stop signals and the event loop are ``serverkit``'s, as for the edge and steering.

Shutdown: the listening socket closes first, then in-flight responses get up to
``shutdown_timeout_s`` to finish (aiohttp's runner), then storage is closed.
"""
from __future__ import annotations

import asyncio
import logging
import ssl
from typing import Callable

from aiohttp import web

from origin.storage import Storage, StorageUnavailable, open_storage
from serverkit.deadlines import DeadlineAppRunner
from serverkit.listen import Listeners, inherited_listeners, open_listeners
from serverkit.tls import server_context
from serverkit.workers import RETIRE_IDLE_GRACE_S, WorkerRole, retire_on_signal, retire_runner, stop_or_retire
from serverkit.run import run_on_loop, stop_on_signals

from .admin import redact_url
from .app import build_app
from .config import OriginConfig

log = logging.getLogger(__name__)


def run_origin(cfg: OriginConfig, *, on_listening: Callable[[str], None] | None = None,
               role: WorkerRole | None = None) -> None:
    """Blocking: run the origin on the event loop ``cfg.loop`` names until a stop signal."""
    run_on_loop(lambda: serve(cfg, on_listening=on_listening, role=role), cfg.loop)


async def serve(cfg: OriginConfig, *, on_listening: Callable[[str], None] | None = None,
                stop: asyncio.Event | None = None, role: WorkerRole | None = None) -> None:
    """Serve until ``stop`` is set (default: until SIGTERM or SIGINT), then shut down gracefully.
    ``role``: a worker of a master (``--workers``): serve its inherited sockets, retire on SIGUSR2."""
    with stop_on_signals(stop) as stop_event:
        await _serve_until(cfg, stop_event, on_listening, role)
    log.info("origin stopped")


async def _serve_until(cfg: OriginConfig, stop: asyncio.Event,
                       on_listening: Callable[[str], None] | None, role: WorkerRole | None) -> None:
    tls = server_context(cfg.tls) if cfg.tls is not None else None  # a bad certificate fails first
    storage = open_storage(cfg.storage_url)
    try:
        await check_storage_at_start(storage, cfg.storage_timeout_s)
        runner = DeadlineAppRunner(build_app(cfg, storage), deadlines=cfg.deadlines, access_log=None,
                                   handle_signals=False, shutdown_timeout=cfg.shutdown_timeout_s)
        await runner.setup()
        try:
            listeners = await _listen(runner, cfg, tls, role)
            log.info("origin listening", extra={"kv": {
                "url": listeners.url, "plain_url": listeners.plain_url, "region": cfg.region,
                "storage": redact_url(storage.url), "loop": cfg.loop,
                "worker": None if role is None else f"{role.slot}/{role.count}"}})
            if on_listening is not None:
                on_listening(listeners.announce)
            if role is None:
                await stop.wait()
            else:
                with retire_on_signal(asyncio.Event()) as retire:
                    if await stop_or_retire(stop, retire):
                        await retire_runner(runner, idle_grace_s=RETIRE_IDLE_GRACE_S,
                                            deadline_s=cfg.shutdown_timeout_s)
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


async def _listen(runner: web.AppRunner, cfg: OriginConfig, tls: ssl.SSLContext | None,
                  role: WorkerRole | None) -> Listeners:
    if role is not None:
        listeners = inherited_listeners(cfg.host, role.sockets(), tls=cfg.tls, context=tls)
    else:
        listeners = open_listeners(cfg.host, cfg.port, backlog=cfg.backlog, http_port=cfg.http_port,
                                   tls=cfg.tls, context=tls)
    try:
        await listeners.start(runner, backlog=cfg.backlog)
    except BaseException:
        listeners.close()
        raise
    return listeners

