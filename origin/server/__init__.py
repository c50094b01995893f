"""The origin server: serves titles from storage over HTTP with ranges and validators.

Modules, from the pure core out to the process:

    semantics.py      RFC 9110 decisions (ranges, conditionals, caching headers), shared with the edge
    request_paths.py  raw request path -> storage key (decode once, refuse anything hostile)
    deadlines.py      header, body and idle deadlines on client connections (the edge's too)
    config.py         OriginConfig
    sending.py        write a decided response: headers only, sendfile, or a storage stream
    objects.py        GET/HEAD /{title}/{path}
    admin.py          /_/health and /_/metrics
    faults.py         /_/delay: an injected delay before every object response (chaos), admin key
    access_log.py     one log line and the request metrics per request
    metrics.py        the Prometheus registry of one app
    app.py            build_app(cfg, storage)
    serve.py          run_origin(cfg): storage check, listen, signals, graceful shutdown
"""
from .app import METRICS_KEY, build_app
from .config import OriginConfig
from .serve import ListenError, run_origin, serve

__all__ = ["METRICS_KEY", "ListenError", "OriginConfig", "build_app", "run_origin", "serve"]
