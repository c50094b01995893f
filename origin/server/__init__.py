"""The origin server: serves titles from storage over HTTP with ranges and validators.

A package of modules only (importing it loads no app): import what you need from its modules,
e.g. ``from origin.server.serve import run_origin``. From the pure core out to the process:

    request_paths.py  raw request path -> storage key (decode once, refuse anything hostile)
    config.py         OriginConfig
    sending.py        write a decided response: headers only, sendfile, or a storage stream
    local_files.py    open-file cache of a local storage (sendfile without a stat per request)
    objects.py        GET/HEAD /{title}/{path}
    admin.py          /_/health and /_/metrics
    faults.py         /_/delay: an injected delay before every object response (chaos), admin key
    access_log.py     one log line and the request metrics per request
    metrics.py        the Prometheus registry of one app
    app.py            build_app(cfg, storage)
    serve.py          run_origin(cfg): storage check, listen, signals, graceful shutdown

The HTTP decisions it serves by (ranges, validators, cache-control, CORS, key rule, batched access
log) are ``httpsem``'s, shared with the edge; binding, signals, the event loop and the connection
deadlines are ``serverkit``'s.
"""
