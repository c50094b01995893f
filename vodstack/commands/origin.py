"""``vodstack origin``: serve titles from storage over HTTP (GET/HEAD, ranges, validators).

    vodstack origin --storage ./titles --port 0
    vodstack origin --storage 's3://titles?endpoint=http://127.0.0.1:9000' --region eu-west

Prints ``origin listening on http://HOST:PORT`` on stdout once the socket is bound (the real
port when ``--port 0``), serves until SIGTERM/SIGINT, finishes in-flight responses, exits 0.
"""
from __future__ import annotations

import argparse
import logging

from origin.server.config import OriginConfig
from origin.server.serve import run_origin
from serverkit.listen import ListenError
from serverkit.run import LOOPS

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


#: Chatty third-party loggers: "Found credentials in environment variables." is not news.
QUIET_LOGGERS = ("aiobotocore.credentials", "botocore.credentials")


def run(args: argparse.Namespace) -> int:
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    cfg = load_config(OriginConfig, section="origin", file=args.config, flags={
        "storage_url": args.storage, "host": args.host, "port": args.port,
        "region": args.region, "loop": args.loop, "admin_key": args.admin_key,
        **{k: getattr(args, k) for k in DEADLINE_FIELDS}})
    try:
        run_origin(cfg, on_listening=_announce)
    except ListenError as e:
        raise UsageError(str(e)) from None
    return 0


def _announce(url: str) -> None:
    print(f"origin listening on {url}", flush=True)
