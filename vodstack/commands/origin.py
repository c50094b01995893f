"""``vodstack origin``: serve titles from storage over HTTP (GET/HEAD, ranges, validators).

    vodstack origin --storage ./titles --port 0
    vodstack origin --storage 's3://titles?endpoint=http://127.0.0.1:9000' --region eu-west

Prints ``origin listening on http://HOST:PORT`` on stdout once the socket is bound (the real
port when ``--port 0``; ``https://`` with ``--tls-cert``/``--tls-key``, then `` and http://...``
with ``--http-port``), serves until SIGTERM/SIGINT, finishes in-flight responses, exits 0.
"""
from __future__ import annotations

import argparse
import logging
import os
from typing import TYPE_CHECKING

from origin.server.config import OriginConfig
from origin.server.serve import run_origin
from serverkit.listen import ListenError, check_plain_port, http_url
from serverkit.run import LOOPS
from serverkit.tls import server_context
from serverkit.workers import MasterSpec, reuseport_group, run_master, worker_argv, worker_role

if TYPE_CHECKING:
    from edge.config import EdgeConfig

from ..config import load_config
from ..errors import UsageError


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "origin", help="serve titles from storage over HTTP",
        description="Serve titles from storage over HTTP: GET/HEAD /{title}/{path} with Range, "
                    "ETag and conditional requests; /_/health and /_/metrics; /_/delay (admin) for chaos tests.")
    p.add_argument("--storage", metavar="URL",
                   help="storage: a folder, file:///path, s3://bucket?endpoint=URL, memory://name")
    p.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, help="port to listen on; 0 picks a free one (default 8080)")
    p.add_argument("--region", help="region name reported by /_/health (default local)")
    p.add_argument("--config", metavar="FILE", help="TOML file with an [origin] table")
    p.add_argument("--loop", choices=LOOPS, help="event loop (default asyncio: zero-copy sendfile)")
    p.add_argument("--admin-key", metavar="K",
                   help="X-Admin-Key for admin calls (POST /_/delay); default none: they are refused")
    add_deadline_flags(p)
    add_tls_flags(p)
    add_worker_flag(p)
    p.set_defaults(run=run)


def add_deadline_flags(p: argparse.ArgumentParser) -> None:
    """``--header-timeout``, ``--body-timeout``, ``--keepalive-timeout`` (``vodstack edge`` has them too)."""
    p.add_argument("--header-timeout", type=float, metavar="S", dest="header_timeout_s",
                   help="a request head must arrive whole within S seconds of its first byte, else "
                        "408 and the connection is closed (default 60)")
    p.add_argument("--body-timeout", type=float, metavar="S", dest="body_timeout_s",
                   help="a request body must arrive whole within S seconds of its head, else 408 and "
                        "the connection is closed (default 60)")
    p.add_argument("--keepalive-timeout", type=float, metavar="S", dest="keepalive_timeout_s",
                   help="close a connection idle (between requests) for S seconds (default 75)")


#: The config fields the deadline flags set.
DEADLINE_FIELDS = ("header_timeout_s", "body_timeout_s", "keepalive_timeout_s")


def add_tls_flags(p: argparse.ArgumentParser, *, upstream: str | None = None) -> None:
    """``--tls-cert``, ``--tls-key``, ``--http-port`` (every server), and ``--upstream-ca`` when the
    server has HTTPS upstreams (``upstream`` names them)."""
    g = p.add_argument_group("TLS (see docs/deploy.md)")
    g.add_argument("--tls-cert", metavar="FILE", help="PEM certificate chain, leaf first: serve HTTPS on --port")
    g.add_argument("--tls-key", metavar="FILE", help="the certificate's PEM private key (unencrypted)")
    g.add_argument("--http-port", type=int, metavar="N",
                   help="with TLS, serve plain HTTP on this port too (0: any free one)")
    if upstream is not None:
        g.add_argument("--upstream-ca", metavar="FILE",
                       help=f"PEM CA certificates to verify HTTPS {upstream} with (default: the system's store)")


def add_worker_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--workers", type=int, metavar="N",
                   help="worker processes on the port (default 0: one per core; 1: one process, no master): a "
                        "master restarts a dead one, and SIGHUP reloads the config and certificates without "
                        "dropping a request (docs/deploy.md)")


def worker_count(n: int) -> int:
    """``--workers`` (the config has refused a negative one): 0 is one per core."""
    return n or os.cpu_count() or 1


def run_master_of(label: str, cfg: OriginConfig | EdgeConfig, count: int, *, backlog: int,
                  drain_timeout_s: float) -> int:
    """Run ``cfg``'s server as a master of ``count`` workers (``serverkit/workers.py``): the TLS files
    are checked and the sockets bound here, before any worker starts, so a bad certificate or a busy
    port is one line."""
    tls = cfg.tls
    check_plain_port(cfg.http_port, tls)
    if tls is not None:
        server_context(tls)
    try:
        groups = [reuseport_group(cfg.host, cfg.port, count, backlog=backlog)]
        if cfg.http_port is not None:
            groups.append(reuseport_group(cfg.host, cfg.http_port, count, backlog=backlog))
    except ListenError as e:
        raise UsageError(str(e)) from None
    urls = [http_url(cfg.host, groups[0][0].getsockname()[1], tls=tls is not None)]
    if len(groups) > 1:
        urls.append(http_url(cfg.host, groups[1][0].getsockname()[1]))
    text = " and ".join(urls)
    spec = MasterSpec(name=label, argv=worker_argv(), count=count, groups=groups, drain_timeout_s=drain_timeout_s,
                      announce=lambda: print(f"{label} listening on {text} ({count} workers)", flush=True))
    return run_master(spec)


#: The config fields the TLS flags set (``upstream_ca`` only where the server has the flag).
TLS_FIELDS = ("tls_cert", "tls_key", "http_port", "upstream_ca")


def tls_flags(args: argparse.Namespace) -> dict[str, object]:
    return {k: getattr(args, k, None) for k in TLS_FIELDS}


#: Chatty third-party loggers: "Found credentials in environment variables." is not news.
QUIET_LOGGERS = ("aiobotocore.credentials", "botocore.credentials")


def run(args: argparse.Namespace) -> int:
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    cfg = load_config(OriginConfig, section="origin", file=args.config, flags={
        "storage_url": args.storage, "host": args.host, "port": args.port,
        "region": args.region, "loop": args.loop, "admin_key": args.admin_key, "workers": args.workers,
        **{k: getattr(args, k) for k in DEADLINE_FIELDS}, **tls_flags(args)})
    role = worker_role()
    count = worker_count(cfg.workers)
    if role is None and count > 1:
        return run_master_of("origin", cfg, count, backlog=cfg.backlog, drain_timeout_s=cfg.shutdown_timeout_s)
    try:
        run_origin(cfg, on_listening=_announce, role=role)
    except ListenError as e:
        raise UsageError(str(e)) from None
    return 0


def _announce(url: str) -> None:
    print(f"origin listening on {url}", flush=True)
