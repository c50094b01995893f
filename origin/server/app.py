"""Assemble the aiohttp application of one origin: routes, middleware, metrics registry, faults."""
from __future__ import annotations

from aiohttp import web

from origin.storage import Storage

from .access_log import LOGGER_NAME as ACCESS_LOGGER, access_log_middleware
from .admin import AdminHandlers
from httpsem.buffered_log import BufferedLog
from serverkit.workers import install_retire_hook
from .config import OriginConfig
from .faults import FaultHandlers, InjectedFaults
from .metrics import OriginMetrics
from .objects import ObjectHandler, add_cors_headers

#: Where the app keeps its metrics (``app[METRICS_KEY]``), for tests and embedding.
METRICS_KEY = web.AppKey("origin_metrics", OriginMetrics)
#: The app's access log (``app[ACCESS_LOG_KEY]``): tests may point its ``stream`` elsewhere.
ACCESS_LOG_KEY = web.AppKey("origin_access_log", BufferedLog)
#: The faults the app injects (``app[FAULTS_KEY]``), set over ``POST /_/delay``.
FAULTS_KEY = web.AppKey("origin_faults", InjectedFaults)


def build_app(cfg: OriginConfig, storage: Storage) -> web.Application:
    """An app serving ``storage``; the caller owns the storage (opens, checks and closes it)."""
    metrics = OriginMetrics()
    access_log = BufferedLog(ACCESS_LOGGER)
    app = web.Application(middlewares=[access_log_middleware(metrics, access_log)], client_max_size=64 * 1024)
    app[METRICS_KEY] = metrics
    app[ACCESS_LOG_KEY] = access_log
    faults = InjectedFaults()
    app[FAULTS_KEY] = faults
    admin = AdminHandlers(cfg, storage, metrics, faults)
    app.router.add_route("*", "/_/health", admin.health)
    app.router.add_route("*", "/_/metrics", admin.metrics_text)
    app.router.add_route("*", "/_/delay", FaultHandlers(cfg.admin_key, faults).delay)
    objects = ObjectHandler(cfg, storage, metrics, faults)
    app.router.add_route("*", "/{tail:.*}", objects.handle)
    app.on_response_prepare.append(add_cors_headers)
    install_retire_hook(app)  # a worker retiring at a reload says Connection: close (serverkit/workers.py)
    app.on_cleanup.append(lambda _app: _close(objects, access_log))
    return app


async def _close(objects: ObjectHandler, access_log: BufferedLog) -> None:
    objects.open_files.clear()
    access_log.close()
