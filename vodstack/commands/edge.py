"""``vodstack edge``: run one edge appliance (see docs/edge.md)."""
from __future__ import annotations

import argparse
import sys

from vodstack.commands.origin import (DEADLINE_FIELDS, add_deadline_flags, add_tls_flags, add_worker_flag,
                                      run_master_of, tls_flags, worker_count)
from vodstack.config import load_config
from vodstack.errors import ConfigError


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("edge", help="run an edge cache (RAM + disk tiers, fill from peers/parents/origin)",
                              description="Run an Open Connect-style edge cache serving /t/{token}/{title}/{path}.")
    p.add_argument("--config", metavar="FILE", help="TOML file with an [edge] table")
    p.add_argument("--name", help="edge name (health, heartbeats, logs)")
    p.add_argument("--region", help="region name")
    p.add_argument("--origin", metavar="URL", help="origin base URL")
    p.add_argument("--parent", metavar="URL", action="append", dest="parents", help="parent edge URL (repeatable)")
    p.add_argument("--peer", metavar="URL", action="append", dest="peers", help="same-region peer edge URL (repeatable)")
    p.add_argument("--cache-dir", metavar="DIR", help="disk tier folder")
    p.add_argument("--ram-mb", type=float, metavar="N", help="RAM tier size, MiB")
    p.add_argument("--disk-mb", type=float, metavar="N", help="disk tier size, MiB")
    p.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, metavar="N", help="port (0: any free one)")
    p.add_argument("--steering", metavar="URL", help="steering service URL for heartbeats")
    p.add_argument("--token-key", metavar="KID=SECRET", action="append", dest="token_keys",
                   help="URL token key (repeatable; the first signs requests to other edges)")
    p.add_argument("--admin-key", metavar="K", help="key guarding /_/purge and /_/prefill")
    p.add_argument("--fill-rate-mbps", type=float, metavar="X", help="prefill rate limit, Mbit/s")
    p.add_argument("--event-loop", choices=("asyncio", "uvloop"), help="event loop (default: by measurement)")
    p.add_argument("--no-access-log", dest="access_log", action="store_const", const=False, default=None,
                   help="do not log one line per request")
    p.add_argument("--access-log", dest="access_log_file", metavar="FILE",
                   help="append the access log to FILE instead of stderr (what `vodstack load --report` joins "
                        "by CMCD session id)")
    cm = p.add_argument_group("CMCD and CMSD (CTA-5004, CTA-5006; see docs/edge.md)")
    cm.add_argument("--no-cmsd", dest="cmsd", action="store_const", const=False, default=None,
                    help="do not answer CMSD-Static / CMSD-Dynamic headers")
    cm.add_argument("--cmsd-max-bitrate", dest="cmsd_max_bitrate_kbps", type=int, metavar="KBPS",
                    help="suggest players play at most KBPS (CMSD-Dynamic mb on every answer)")
    cm.add_argument("--capacity-mbps", dest="capacity_mbps", type=float, metavar="X",
                    help="what this edge can send: above 90%% of it, CMSD says duress (du) and suggests each "
                         "viewer its share (mb)")
    p.add_argument("--no-fast-path", dest="fast_path", action="store_const", const=False, default=None,
                   help="send every request through aiohttp's full handler, plain RAM hits too "
                        "(same answers, more CPU; see docs/edge.md)")
    add_deadline_flags(p)
    add_tls_flags(p, upstream="upstreams (origin, parents, peers, steering)")
    add_worker_flag(p)
    stale = p.add_argument_group("stale copies, negative cache and circuit breakers (see docs/edge.md)")
    stale.add_argument("--stale-while-revalidate", dest="stale_while_revalidate_s", type=float, metavar="S",
                       help="serve a stale copy at once for S seconds past its freshness while one revalidation "
                            "runs behind (default 2; the origin's Cache-Control stale-while-revalidate wins)")
    stale.add_argument("--stale-if-error", dest="stale_if_error_s", type=float, metavar="S",
                       help="serve a stale copy up to S seconds past its freshness when its revalidation fails "
                            "or is slow (default 86400; the origin's Cache-Control stale-if-error wins)")
    stale.add_argument("--stale-deadline", dest="stale_deadline_s", type=float, metavar="S",
                       help="longest wait for a stale copy's revalidation before answering from the copy "
                            "(default 0.5)")
    stale.add_argument("--negative-ttl", dest="negative_ttl_s", type=float, metavar="S",
                       help="remember an origin's 4xx for S seconds and answer it from memory (default 5)")
    stale.add_argument("--breaker-failures", dest="breaker_failures", type=int, metavar="N",
                       help="failures in a row (timeout, refused, 5xx) that open an upstream's circuit (default 1)")
    stale.add_argument("--breaker-open", dest="breaker_open_s", type=float, metavar="S",
                       help="an open circuit skips its upstream for S seconds, then lets one probe through "
                            "(default 5)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from edge.config import EdgeConfig
    from edge.server import check_cache_dir, run as run_edge
    from serverkit.workers import worker_role
    from edge.tokens import parse_token_key

    keys = None
    if args.token_keys:
        keys = {}
        for text in args.token_keys:
            try:
                kid, secret = parse_token_key(text)
            except ValueError as e:
                raise ConfigError(f"--token-key: {e}") from None
            keys[kid] = secret
    flags = {k: getattr(args, k) for k in (
        "name", "region", "origin", "parents", "peers", "cache_dir", "ram_mb", "disk_mb", "host", "port",
        "steering", "admin_key", "fill_rate_mbps", "event_loop", "access_log", "fast_path",
        "stale_while_revalidate_s", "stale_if_error_s", "stale_deadline_s", "negative_ttl_s", "breaker_failures",
        "breaker_open_s", "workers", "access_log_file", "cmsd", "cmsd_max_bitrate_kbps", "capacity_mbps")}
    flags["token_keys"] = keys
    flags.update({k: getattr(args, k) for k in DEADLINE_FIELDS})
    flags.update(tls_flags(args))
    cfg = load_config(EdgeConfig, section="edge", file=args.config, flags=flags)
    if cfg.access_log_file:
        try:
            with open(cfg.access_log_file, "a"):
                pass
        except OSError as e:
            raise ConfigError(f"--access-log: cannot append to {cfg.access_log_file}: {e.strerror}") from None

    def ready(url: str) -> None:
        print(f"edge {cfg.name} listening on {url}", flush=True)

    role = worker_role()
    count = worker_count(cfg.workers)
    if role is None and count > 1:
        check_cache_dir(cfg.cache_dir)
        return run_master_of(f"edge {cfg.name}", cfg, count, backlog=2048, drain_timeout_s=cfg.drain_timeout_s)
    return run_edge(cfg, ready, role=role)
