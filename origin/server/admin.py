"""The server's own paths: ``/_/health`` (JSON) and ``/_/metrics`` (Prometheus text).

``/_/health`` runs ``storage.check()`` (bounded by ``storage_timeout_s``) on every call and
answers 200 when storage is reachable, 503 otherwise::

    {"status": "ok" | "unavailable", "region": "eu-west",
     "storage": {"url": "s3://titles?endpoint=http://127.0.0.1:9000", "reachable": true, "error": null},
     "delay_ms": 0}

``delay_ms`` is the delay injected before every object response (``POST /_/delay``, faults.py).

The storage URL is shown without credentials (:func:`redact_url`).
"""
from __future__ import annotations

import asyncio
import json
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from aiohttp import web

from origin.storage import Storage, StorageError

from .config import OriginConfig
from .faults import InjectedFaults
from .metrics import OriginMetrics
from .objects import method_not_allowed

#: Query parameters of a storage URL that may carry secrets (matched as substrings, lower case).
SECRET_PARAM_WORDS = ("secret", "password", "token", "credential", "signature", "access_key", "key_id")


def redact_url(url: str) -> str:
    """``url`` without user info and without secret-looking query parameters (URL-valued
    parameters such as ``endpoint=`` lose their user info too)."""
    if "://" not in url:
        return url
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]
    query = [(k, redact_url(v)) for k, v in parse_qsl(parts.query, keep_blank_values=True)
             if not any(word in k.lower() for word in SECRET_PARAM_WORDS)]
    return urlunsplit((parts.scheme, netloc, parts.path, urlencode(query, safe=":/"), parts.fragment))


class AdminHandlers:
    """Health and metrics of one origin."""

    def __init__(self, cfg: OriginConfig, storage: Storage, metrics: OriginMetrics,
                 faults: InjectedFaults | None = None) -> None:
        self.cfg = cfg
        self.storage = storage
        self.metrics = metrics
        self.faults = faults or InjectedFaults()
        self.public_storage_url = redact_url(storage.url)

    async def health(self, request: web.Request) -> web.Response:
        if request.method not in ("GET", "HEAD"):
            return method_not_allowed()
        error = await self.storage_error()
        body = {
            "status": "ok" if error is None else "unavailable",
            "region": self.cfg.region,
            "storage": {"url": self.public_storage_url, "reachable": error is None, "error": error},
            "delay_ms": self.faults.delay_ms,
        }
        return web.Response(status=200 if error is None else 503, text=json.dumps(body),
                            content_type="application/json", headers={"Cache-Control": "no-store"})

    async def storage_error(self) -> str | None:
        """None if storage answers its check in time, else why not (one line)."""
        try:
            with self.metrics.time_storage("check"):
                async with asyncio.timeout(self.cfg.storage_timeout_s):
                    await self.storage.check()
        except StorageError as e:
            return f"{type(e).__name__}: {e}"
        except TimeoutError:
            return f"no answer within {self.cfg.storage_timeout_s:g} s"
        return None

    async def metrics_text(self, request: web.Request) -> web.Response:
        if request.method not in ("GET", "HEAD"):
            return method_not_allowed()
        body = await asyncio.to_thread(self.metrics.render)
        return web.Response(body=body, headers={"Content-Type": self.metrics.content_type,
                                                "Cache-Control": "no-store"})
