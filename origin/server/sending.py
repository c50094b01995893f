"""Sending a decided response: headers only, a local file by sendfile, or a storage stream.

The decision (status, headers, byte range) is :class:`~origin.server.semantics.ResponsePlan`'s;
this module only writes. Every function records the body bytes it sent in
``request[BODY_BYTES]`` (also when the client goes away half-way) for the access log and metrics.

Local files go out the way aiohttp's ``web_fileresponse.py`` sends them: the headers are written,
then ``loop.sendfile(transport, file, offset, count)`` hands the range to the kernel (zero copy
on asyncio's loop). A loop without ``sendfile`` (uvloop 0.23) falls back to ``os.pread`` in a
worker thread, one ``chunk_bytes`` at a time. Files are opened, stat-ed (``local_files.py``)
and closed in worker threads.

A failure of storage after the headers are out cannot become a 503 any more: it is logged and
the connection is dropped (raised as ``ConnectionResetError``, which aiohttp closes quietly), so
the client sees a short body, never a wrong one.
"""
from __future__ import annotations

import asyncio
import logging
import os
from typing import IO, Any, AsyncIterator

from aiohttp import web

from origin.storage import Storage, StorageError, StorageUnavailable

from .metrics import OriginMetrics
from .semantics import ResponsePlan

log = logging.getLogger(__name__)

#: Key in the aiohttp request mapping holding the body bytes sent so far.
BODY_BYTES: Any = (web.RequestKey("origin_body_bytes", int) if hasattr(web, "RequestKey")
                   else "origin_body_bytes")

_CLOSING: set[asyncio.Future[None]] = set()


async def send_headers_only(request: web.Request, plan: ResponsePlan) -> web.StreamResponse:
    """HEAD, 304, 412 and 416: status and headers, no body."""
    headers = dict(plan.headers)
    if plan.status != 304 and "Content-Length" not in headers:
        headers["Content-Length"] = "0"
    response = web.StreamResponse(status=plan.status, headers=headers)
    request[BODY_BYTES] = 0
    await response.prepare(request)
    await response.write_eof()
    return response


# ---------------------------------------------------------------- local files
async def send_bytes(request: web.Request, plan: ResponsePlan, data: bytes) -> web.StreamResponse:
    """A small body already in memory: headers and body leave in one write."""
    if len(data) != plan.length:
        log.warning("file shrank while reading", extra={"kv": {"path": request.path}})
        raise StorageUnavailable("file changed while reading")
    request[BODY_BYTES] = len(data)
    return web.Response(status=plan.status, headers=plan.headers, body=data)


async def send_file(request: web.Request, plan: ResponsePlan, file: IO[bytes], *,
                    chunk_bytes: int) -> web.StreamResponse:
    """Write the headers, then bytes ``[plan.start, plan.end)`` of ``file`` (closed afterwards)."""
    request[BODY_BYTES] = 0
    try:
        response = web.StreamResponse(status=plan.status, headers=plan.headers)
        await response.prepare(request)
        transport = request.transport
        if transport is None or transport.is_closing():
            raise ConnectionResetError("client went away before the body")
        if plan.length == 0:  # loop.sendfile refuses a count of 0
            await response.write_eof()
            return response
        loop = asyncio.get_running_loop()
        try:
            try:
                await loop.sendfile(transport, file, plan.start, plan.length)
            finally:
                request[BODY_BYTES] = max(0, file.tell() - plan.start)
        except NotImplementedError:  # uvloop: no sendfile at all
            await _send_by_reads(request, response, file, plan.start, plan.length, chunk_bytes)
        except RuntimeError as e:  # "Transport is closing": the client left meanwhile
            raise ConnectionResetError(str(e)) from None
        await response.write_eof()
        return response
    finally:
        _close_in_thread(file)


async def _send_by_reads(request: web.Request, response: web.StreamResponse, file: IO[bytes],
                         start: int, count: int, chunk_bytes: int) -> None:
    """The fallback: ``os.pread`` one chunk at a time in a worker thread, then write it."""
    fd = file.fileno()
    pos, end = start, start + count
    request[BODY_BYTES] = 0
    while pos < end:
        chunk = await asyncio.to_thread(os.pread, fd, min(chunk_bytes, end - pos), pos)
        if not chunk:
            log.warning("file shrank while sending", extra={"kv": {"path": request.path, "sent_bytes": pos - start}})
            raise ConnectionResetError("file shrank while sending")
        await response.write(chunk)
        pos += len(chunk)
        request[BODY_BYTES] = pos - start


def _close_in_thread(file: IO[bytes]) -> None:
    """Close without blocking the loop and without waiting (as aiohttp's FileResponse does)."""
    future = asyncio.get_running_loop().run_in_executor(None, file.close)
    _CLOSING.add(future)
    future.add_done_callback(_CLOSING.discard)


# ---------------------------------------------------------------- storage streams
async def send_stream(request: web.Request, plan: ResponsePlan, storage: Storage, key: str, *,
                      chunk_bytes: int, timeout_s: float, metrics: OriginMetrics) -> web.StreamResponse:
    """Stream ``storage.read(key, start, end)`` chunks; each chunk is awaited at most ``timeout_s``.

    The first chunk is fetched before the headers go out, so a storage failure at that point
    still raises (and becomes a 503 upstream of here).
    """
    request[BODY_BYTES] = 0
    chunks = storage.read(key, plan.start, plan.end, chunk_bytes=chunk_bytes)
    try:
        with metrics.time_storage("read"):
            first = await _next_chunk(chunks, timeout_s)
        response = web.StreamResponse(status=plan.status, headers=plan.headers)
        await response.prepare(request)
        sent = 0
        chunk = first
        while chunk is not None and sent < plan.length:
            chunk = chunk[:plan.length - sent]
            await response.write(chunk)
            sent += len(chunk)
            request[BODY_BYTES] = sent
            if sent < plan.length:
                try:
                    chunk = await _next_chunk(chunks, timeout_s)
                except (StorageError, TimeoutError) as e:
                    _log_cut(request, key, sent, plan.length, e)
                    raise ConnectionResetError("storage failed mid-response") from None
        if sent < plan.length:
            _log_cut(request, key, sent, plan.length, "object shorter than planned")
            raise ConnectionResetError("storage object shorter than planned")
        await response.write_eof()
        return response
    finally:
        aclose = getattr(chunks, "aclose", None)
        if aclose is not None:
            try:
                await aclose()
            except Exception:  # noqa: BLE001 - a broken stream must not hide the answer
                log.debug("closing a storage stream failed", exc_info=True)


async def _next_chunk(chunks: AsyncIterator[bytes], timeout_s: float) -> bytes | None:
    async with asyncio.timeout(timeout_s):
        return await anext(chunks, None)


def _log_cut(request: web.Request, key: str, sent: int, planned: int, why: object) -> None:
    log.warning("response cut short", extra={"kv": {
        "key": key, "sent_bytes": sent, "planned_bytes": planned,
        "error": why if isinstance(why, str) else f"{type(why).__name__}: {why}"}})
