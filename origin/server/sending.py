"""Sending a decided response: headers only, a local file by sendfile, or a storage stream.

The decision (status, headers, byte range) is :class:`~httpsem.semantics.ResponsePlan`'s;
this module only writes. Every function records the body bytes it sent in
``request[BODY_BYTES]`` (also when the client goes away half-way) for the access log and metrics.

Local files go out by sendfile once the headers are written: ``os.sendfile`` into the socket
while it takes the bytes at once, ``loop.sendfile(transport, file, offset, count)`` for the rest
(zero copy on asyncio's loop). A loop without ``sendfile`` (uvloop 0.23) falls back to ``os.pread`` in a
worker thread, one ``chunk_bytes`` at a time. So does a TLS connection: its bytes must go through
the TLS layer, which encrypts in user space (an ``os.sendfile`` into the socket beneath would put
clear text into the TLS stream). Files are opened and stat-ed in worker threads
(``local_files.py``), which also keeps them open for the next requests.

A failure after the headers are out cannot become a 503 any more. A storage failure (or a file
that shrank) is logged as a warning, a client that went away at debug level; either way the
connection is closed (the client sees a short body, never a wrong one), the request is marked
``ABORTED`` for the access log, and the handler returns normally so that aiohttp does not log
a traceback for it.
"""
from __future__ import annotations

import asyncio
import logging
import os
import socket
from typing import IO, Any, AsyncIterator, Callable

from aiohttp import web

from origin.storage import Storage, StorageError, StorageUnavailable

from .metrics import OriginMetrics
from httpsem.semantics import ResponsePlan

log = logging.getLogger(__name__)

#: Keys in the aiohttp request mapping: body bytes sent so far; True when the body was cut short.
BODY_BYTES: Any = (web.RequestKey("origin_body_bytes", int) if hasattr(web, "RequestKey")
                   else "origin_body_bytes")
ABORTED: Any = (web.RequestKey("origin_aborted", bool) if hasattr(web, "RequestKey")
                else "origin_aborted")


class CutShort(Exception):
    """The body cannot be completed (storage failed or the object shrank); the connection is dropped."""


async def send_headers_only(request: web.Request, plan: ResponsePlan) -> web.StreamResponse:
    """HEAD, 304, 412 and 416: status and headers, no body."""
    headers = dict(plan.headers)
    if plan.status != 304 and "Content-Length" not in headers:
        headers["Content-Length"] = "0"
    request[BODY_BYTES] = 0
    return web.Response(status=plan.status, headers=headers)


# ---------------------------------------------------------------- local files
async def send_bytes(request: web.Request, plan: ResponsePlan, data: bytes) -> web.StreamResponse:
    """A small body already in memory: headers and body leave in one write."""
    if len(data) != plan.length:
        raise StorageUnavailable("file changed while reading")  # truncated in place: nothing sent yet
    request[BODY_BYTES] = len(data)
    return web.Response(status=plan.status, headers=plan.headers, body=data)


async def send_file(request: web.Request, plan: ResponsePlan, fd: int, *, chunk_bytes: int,
                    reopen: Callable[[], IO[bytes]]) -> web.StreamResponse:
    """Write the headers, then bytes ``[plan.start, plan.end)`` of the open file ``fd``.

    The caller keeps ``fd`` open until this returns (and closes it, if it is its to close).
    ``reopen()`` gives a file of the same object with a position of its own, for what the
    socket does not take at once; it is closed here.
    """
    request[BODY_BYTES] = 0
    response = web.StreamResponse(status=plan.status, headers=plan.headers)
    file: IO[bytes] | None = None
    try:
        transport = request.transport
        if transport is None or transport.is_closing():
            raise ConnectionResetError("client went away before the body")
        tls = is_tls(transport)
        sock = None if tls else transport.get_extra_info("socket")
        corked = _cork(sock, True)
        try:
            await response.prepare(request)
            if plan.length > 0 and sock is not None:
                request[BODY_BYTES] = _sendfile_now(transport, sock, fd, plan)
        finally:
            if corked:
                _cork(sock, False)
        if plan.length > 0:
            if request[BODY_BYTES] < plan.length:
                file = reopen()
                if tls:  # through the TLS layer: never a sendfile beneath it
                    await _send_by_reads(request, response, file, plan, chunk_bytes)
                else:
                    try:
                        await _sendfile_rest(request, transport, file, plan)
                    except NotImplementedError:  # uvloop: no loop.sendfile; read what the socket did not take
                        await _send_by_reads(request, response, file, plan, chunk_bytes)
        await response.write_eof()
    except (ConnectionError, CutShort) as e:
        drop_connection(request, e)
    finally:
        if file is not None:
            file.close()  # another descriptor of the file stays open meanwhile: nothing to block on
    return response


def is_tls(transport: asyncio.BaseTransport) -> bool:
    """Whether ``transport`` is a TLS transport (asyncio's and uvloop's both say so in their extras)."""
    return (transport.get_extra_info("sslcontext") is not None
            or transport.get_extra_info("ssl_object") is not None)


def _cork(sock: Any, on: bool) -> bool:
    """Set or clear ``TCP_CORK``; False where there is none (not TCP, not Linux).

    nginx's ``tcp_nopush`` with sendfile: while corked, the headers wait and leave in the same
    full-sized segments as the file's first bytes instead of in a little segment of their own.
    On loopback that alone took the origin from ~1550 to ~2100 one-megabyte responses a second
    (``bench/origin_vs_nginx``): the client reads one burst per response, not two. Clearing
    the cork pushes out whatever is still held, so nothing waits for the kernel's 200 ms timer.
    """
    cork = getattr(socket, "TCP_CORK", None)
    if cork is None or sock is None:
        return False
    try:
        sock.setsockopt(socket.IPPROTO_TCP, cork, 1 if on else 0)
    except (OSError, AttributeError, TypeError):
        return False
    return True


def _sendfile_now(transport: asyncio.Transport, sock: Any, fd: int, plan: ResponsePlan) -> int:
    """As much of the body as the socket takes right now, by one ``os.sendfile``; 0 if none.

    The transport's buffer is empty once the headers have gone out (the usual case), and then
    one ``os.sendfile`` straight into its socket usually takes the whole body: the socket buffer
    takes a megabyte on a fast link. Only what it does not take goes through ``loop.sendfile``
    (:func:`_sendfile_rest`), whose machinery (pausing the transport, futures, a writer
    callback, an ``fstat`` and an ``lseek`` per call) cost the origin more CPU per segment than
    everything else it does for a request. Writing to the socket directly keeps the byte order:
    the transport's buffer is empty and this handler is the only writer of its response. The
    offset is explicit, so ``fd`` may be shared by other responses.
    """
    if sock is None or transport.get_write_buffer_size():
        return 0
    try:
        sent = os.sendfile(sock.fileno(), fd, plan.start, plan.length)
    except (BlockingIOError, InterruptedError):
        return 0
    except ConnectionError:
        raise
    except OSError:  # not sendfile-able after all: the slower ways will say why, or manage
        return 0
    if sent == 0:
        raise CutShort("file shrank while sending")
    return sent


async def _sendfile_rest(request: web.Request, transport: asyncio.Transport, file: IO[bytes],
                         plan: ResponsePlan) -> None:
    """The rest of the body, from ``request[BODY_BYTES]`` on, by ``loop.sendfile``."""
    start = plan.start + request[BODY_BYTES]
    file.seek(start)
    try:
        sent = await asyncio.get_running_loop().sendfile(transport, file, start, plan.end - start)
    except NotImplementedError:  # a RuntimeError too, but the caller's business
        raise
    except RuntimeError as e:  # "Transport is closing": the client left meanwhile
        raise ConnectionResetError(str(e)) from None
    finally:
        # asyncio leaves the file's position after the bytes it sent, on failure too
        request[BODY_BYTES] = file.tell() - plan.start
    if start + sent < plan.end:
        raise CutShort("file shrank while sending")


async def _send_by_reads(request: web.Request, response: web.StreamResponse, file: IO[bytes],
                         plan: ResponsePlan, chunk_bytes: int) -> None:
    """The fallback: ``os.pread`` one chunk at a time in a worker thread, then write it, from
    where sendfile left off (``request[BODY_BYTES]``)."""
    fd = file.fileno()
    pos, end = plan.start + request[BODY_BYTES], plan.end
    while pos < end:
        chunk = await asyncio.to_thread(os.pread, fd, min(chunk_bytes, end - pos), pos)
        if not chunk:
            raise CutShort("file shrank while sending")
        await response.write(chunk)
        pos += len(chunk)
        request[BODY_BYTES] = pos - plan.start


def close_in_thread(close: Callable[[], None]) -> None:
    """Close without blocking the loop and without waiting (as aiohttp's FileResponse does)."""
    # No reference to keep: the executor's work item holds the future until the close has run.
    asyncio.get_running_loop().run_in_executor(None, close)


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
        try:
            await response.prepare(request)
            await _stream_body(request, response, chunks, first, plan.length, timeout_s)
            await response.write_eof()
        except (ConnectionError, CutShort) as e:
            drop_connection(request, e)
        return response
    finally:
        aclose = getattr(chunks, "aclose", None)
        if aclose is not None:
            try:
                await aclose()
            except Exception:  # noqa: BLE001 - a broken stream must not hide the answer
                log.debug("closing a storage stream failed", exc_info=True)


async def _stream_body(request: web.Request, response: web.StreamResponse, chunks: AsyncIterator[bytes],
                       first: bytes | None, length: int, timeout_s: float) -> None:
    sent = 0
    chunk = first
    while chunk is not None and sent < length:
        chunk = chunk[:length - sent]
        await response.write(chunk)
        sent += len(chunk)
        request[BODY_BYTES] = sent
        if sent < length:
            try:
                chunk = await _next_chunk(chunks, timeout_s)
            except (StorageError, TimeoutError) as e:
                raise CutShort(f"storage failed: {type(e).__name__}: {e}") from None
    if sent < length:
        raise CutShort("storage object shorter than planned")


async def _next_chunk(chunks: AsyncIterator[bytes], timeout_s: float) -> bytes | None:
    async with asyncio.timeout(timeout_s):
        return await anext(chunks, None)


def drop_connection(request: web.Request, why: BaseException) -> None:
    """End a response that cannot be completed: close the connection (the client sees a short
    body, never a wrong one) and mark the request aborted for the access log. A client that went
    away is routine (debug); a cut on our side is a warning."""
    request[ABORTED] = True
    if isinstance(why, CutShort):
        log.warning("response cut short", extra={"kv": {
            "path": request.raw_path, "sent_bytes": request.get(BODY_BYTES, 0), "error": str(why)}})
    else:
        log.debug("client went away", extra={"kv": {"path": request.raw_path, "error": repr(why)}})
    transport = request.transport
    if transport is not None:
        transport.close()
