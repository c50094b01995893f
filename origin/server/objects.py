"""``GET``/``HEAD /{title}/{path}``: stat the object, plan the answer, send it.

    key   = key_for_request_path(raw path)          400 / 404 for hostile or short paths
    info  = storage.stat(key)   (≤ storage_timeout_s) 404 missing, 503 unavailable or slow
    plan  = semantics.plan_response(...)            200 / 206 / 304 / 412 / 416 and headers
    send  = headers only | storage.read stream

Storages with local files (``open_fd``) are opened in a worker thread and kept open for a
second (``local_files.py``: an open-file cache after nginx's); the body goes by sendfile, or in
one write for small objects.

Storage errors map through their ``status_hint``: 400, 404, and anything 5xx becomes
503 with ``Retry-After`` (the backend may come back; the origin stays up meanwhile).
"""
from __future__ import annotations

import asyncio
import functools
import logging

from aiohttp import web

from origin.storage import InvalidKey, Storage, StorageError

from .config import OriginConfig
from .faults import InjectedFaults
from .metrics import OriginMetrics
from .request_paths import key_for_request_path
from .local_files import OpenFiles, OpenObject, open_local_object
from httpsem.semantics import CORS_HEADERS, PREFLIGHT_HEADERS, plan_response
from .sending import close_in_thread, send_bytes, send_file, send_headers_only, send_stream

log = logging.getLogger(__name__)

ALLOWED_METHODS = ("GET", "HEAD")
#: Paths under ``/_/`` are the server's own (health, metrics), never objects.
RESERVED_PREFIX = "_/"


class ObjectHandler:
    """The aiohttp handler serving objects of one storage under one config."""

    def __init__(self, cfg: OriginConfig, storage: Storage, metrics: OriginMetrics,
                 faults: InjectedFaults | None = None) -> None:
        self.cfg = cfg
        self.storage = storage
        self.metrics = metrics
        self.faults = faults or InjectedFaults()
        self.sends_files = cfg.sendfile and callable(getattr(storage, "open_fd", None))
        self.open_files = OpenFiles(max_files=cfg.open_file_cache_files, valid_s=cfg.open_file_cache_valid_s,
                                    media_valid_s=cfg.open_file_cache_media_valid_s)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if request.method == "OPTIONS":  # a CORS preflight: a page on another origin plays from this one
            return web.Response(status=204, headers=PREFLIGHT_HEADERS)
        if request.method not in ALLOWED_METHODS:
            return method_not_allowed()
        if self.faults.delay_ms:
            await asyncio.sleep(self.faults.delay_s)  # injected by POST /_/delay (faults.py)
        try:
            key = key_for_request_path(request.raw_path)
            if key.startswith(RESERVED_PREFIX):
                return error_response(404, "not found")
            return await self._serve(request, key)
        except (StorageError, InvalidKey) as e:
            return storage_error_response(e, self.cfg.retry_after_s)
        except TimeoutError:
            log.warning("storage timed out", extra={"kv": {
                "path": request.path, "timeout_s": self.cfg.storage_timeout_s}})
            return unavailable_response(self.cfg.retry_after_s)

    async def _serve(self, request: web.Request, key: str) -> web.StreamResponse:
        if self.sends_files:
            return await self._serve_local_file(request, key)
        with self.metrics.time_storage("stat"):
            async with asyncio.timeout(self.cfg.storage_timeout_s):
                info = await self.storage.stat(key)
        plan = plan_response(request.method, request.headers, path=key, size_bytes=info.size_bytes,
                             etag=info.etag, last_modified_s=info.last_modified_s,
                             playlist_max_age_s=self.cfg.playlist_max_age_s,
                             media_max_age_s=self.cfg.media_max_age_s)
        if not plan.send_body:
            return await send_headers_only(request, plan)
        return await send_stream(request, plan, self.storage, key, chunk_bytes=self.cfg.chunk_bytes,
                                 timeout_s=self.cfg.storage_timeout_s, metrics=self.metrics)

    async def _serve_local_file(self, request: web.Request, key: str) -> web.StreamResponse:
        """From the open-file cache when it holds ``key`` (no thread), else one thread hop opens it."""
        obj = self.open_files.get(key)
        cached = obj is not None
        if obj is None:
            obj = await self._open_local_object(key)
            cached = self.open_files.put(obj)
        try:
            plan = plan_response(request.method, request.headers, path=key, size_bytes=obj.info.size_bytes,
                                 etag=obj.info.etag, last_modified_s=obj.info.last_modified_s,
                                 playlist_max_age_s=self.cfg.playlist_max_age_s,
                                 media_max_age_s=self.cfg.media_max_age_s)
            if not plan.send_body:
                return await send_headers_only(request, plan)
            if obj.data is not None:
                return await send_bytes(request, plan, obj.data[plan.start:plan.end])
            with obj.in_use() as fd:
                return await send_file(request, plan, fd, chunk_bytes=self.cfg.chunk_bytes, reopen=obj.file)
        finally:
            if not cached and obj.fd is not None:  # the cache is off: this response owned the descriptor
                close_in_thread(obj.close)

    async def _open_local_object(self, key: str) -> OpenObject:
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(None, functools.partial(
            open_local_object, self.storage, key, read_below_bytes=self.cfg.sendfile_min_bytes))
        with self.metrics.time_storage("open"):
            try:
                async with asyncio.timeout(self.cfg.storage_timeout_s):
                    return await asyncio.shield(future)
            except (TimeoutError, asyncio.CancelledError):
                future.add_done_callback(_close_late_object)  # the thread still runs: close what it opens
                raise


def _close_late_object(future: asyncio.Future[OpenObject]) -> None:
    if not future.cancelled() and future.exception() is None:
        future.result().close()


def error_response(status: int, text: str, headers: dict[str, str] | None = None) -> web.Response:
    """A short plain-text error answer."""
    return web.Response(status=status, text=text + "\n", headers=headers)


def method_not_allowed() -> web.Response:
    return error_response(405, "method not allowed", {"Allow": ", ".join((*ALLOWED_METHODS, "OPTIONS"))})


async def add_cors_headers(request: web.Request, response: web.StreamResponse) -> None:
    """On every answer for an object (errors too, so a player can tell a 404 from a network error),
    the edge's CORS headers: titles are public, and a page may play from an origin directly."""
    if not request.path.startswith("/" + RESERVED_PREFIX):
        response.headers.update(CORS_HEADERS)


def unavailable_response(retry_after_s: int) -> web.Response:
    return error_response(503, "storage unavailable", {"Retry-After": str(retry_after_s)})


def storage_error_response(err: StorageError | InvalidKey, retry_after_s: int) -> web.Response:
    """400 for bad keys, 404 for missing objects, 503 + Retry-After for everything else."""
    if err.status_hint == 400:
        return error_response(400, "bad request path")
    if err.status_hint == 404:
        return error_response(404, "not found")
    log.warning("storage failed", extra={"kv": {"error": f"{type(err).__name__}: {err}"}})
    return unavailable_response(retry_after_s)
