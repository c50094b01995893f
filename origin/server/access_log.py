"""One access-log line and the request metrics per request, as an aiohttp middleware.

Logger ``origin.access`` at INFO, key=value, written in batches (``buffered_log.py``)::

    ... INFO origin.access request method=GET path=/t1/video/r1/00001.m4s status=206 bytes=1024
        duration_ms=0.41 range=bytes=0-1023

``bytes`` counts body bytes actually sent; a client that left half-way is logged with
``aborted=true`` and the bytes it got. aiohttp's own access log is switched off by the runner.
"""
from __future__ import annotations

import asyncio
import time
from typing import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware

from httpsem.buffered_log import BufferedLog, quote
from .metrics import OriginMetrics
from .sending import ABORTED, BODY_BYTES

LOGGER_NAME = "origin.access"

#: Longest path or Range value written to the log (the raw path, still percent-encoded).
MAX_FIELD_CHARS = 300

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def access_log_middleware(metrics: OriginMetrics, access_log: BufferedLog) -> Middleware:
    """The middleware, bound to the app's metrics and access log."""

    @web.middleware
    async def log_and_count(request: web.Request, handler: Handler) -> web.StreamResponse:
        start_s = time.perf_counter()
        status = 500
        aborted = False
        response: web.StreamResponse | None = None
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as e:
            status = e.status
            raise
        except (ConnectionError, asyncio.CancelledError):
            aborted = True
            raise
        finally:
            aborted = aborted or bool(request.get(ABORTED))
            body_bytes = request.get(BODY_BYTES)
            if body_bytes is None:
                body_bytes = 0 if request.method == "HEAD" or aborted else _plain_body_bytes(response)
            metrics.count_request(request.method, status, body_bytes)
            if access_log.enabled:
                access_log.write(
                    f"request method={quote(request.method)} "
                    f"path={quote(request.raw_path.split('?', 1)[0][:MAX_FIELD_CHARS])} status={status} "
                    f"bytes={body_bytes} duration_ms={round((time.perf_counter() - start_s) * 1000, 2)} "
                    f"range={quote(request.headers.get('Range', '-')[:MAX_FIELD_CHARS])}"
                    + (" aborted=true" if aborted else ""))

    return log_and_count


def _plain_body_bytes(response: web.StreamResponse | None) -> int:
    """Body size of a ready-made ``web.Response`` (error pages, health, metrics)."""
    body = getattr(response, "body", None)
    return len(body) if isinstance(body, (bytes, bytearray)) else 0
