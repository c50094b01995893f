"""Assemble the aiohttp application of one origin: routes, middleware, metrics registry."""
from __future__ import annotations

from aiohttp import web

from origin.storage import Storage

from .access_log import access_log_middleware
from .admin import AdminHandlers
from .config import OriginConfig
from .metrics import OriginMetrics
from .objects import ObjectHandler

#: Where the app keeps its metrics (``app[METRICS_KEY]``), for tests and embedding.
METRICS_KEY = web.AppKey("origin_metrics", OriginMetrics)


def build_app(cfg: OriginConfig, storage: Storage) -> web.Application:
    """An app serving ``storage``; the caller owns the storage (opens, checks and closes it)."""
    metrics = OriginMetrics()
    app = web.Application(middlewares=[access_log_middleware(metrics)], client_max_size=64 * 1024)
    app[METRICS_KEY] = metrics
    admin = AdminHandlers(cfg, storage, metrics)
    app.router.add_route("*", "/_/health", admin.health)
    app.router.add_route("*", "/_/metrics", admin.metrics_text)
    app.router.add_route("*", "/{tail:.*}", ObjectHandler(cfg, storage, metrics).handle)
    return app
