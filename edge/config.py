"""EdgeConfig: every setting of one edge appliance, with its default and meaning, in one frozen dataclass.

Built by ``vodstack.config.load_config(EdgeConfig, section="edge", file=, env=, flags=)`` (defaults <
TOML ``[edge]`` < ``VODSTACK_EDGE_*`` < flags); ``__post_init__`` checks values and raises ValueError
naming the key, which the loader turns into a ConfigError.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from serverkit.tls import TlsSettings

MIB = 1024 * 1024
_WINDOW_RE = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$")


@dataclass(frozen=True, kw_only=True)
class EdgeConfig(TlsSettings):
    """One edge appliance (an Open Connect-style cache)."""

    name: str = "edge"
    """Appears in health, heartbeats, logs and the ``X-Vodstack-Edge`` header."""
    region: str = "local"
    origin: str = ""
    """Base URL of the origin (``http://host:port``); objects are ``{origin}/{title}/{path}``. Required."""
    parents: tuple[str, ...] = ()
    """Base URLs of parent edges, asked (in order) after peers and before the origin; they fill on a miss."""
    peers: tuple[str, ...] = ()
    """Base URLs of same-region edges, asked first, cache-only: a peer that lacks an object says 404 at once."""
    cache_dir: Path = Path("edge-cache")
    ram_mb: float = 256.0
    """RAM tier bound (object bytes), MiB."""
    disk_mb: float = 4096.0
    """Disk tier bound (data + index bytes), MiB."""
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 0
    """Worker processes on the port (0, the default: one per core), under a master that restarts a
    dead one and reloads on SIGHUP (``serverkit/workers.py``); 1: this process serves, no master."""
    public_url: str = ""
    """URL announced in heartbeats; default ``http://{host}:{bound port}`` (``https://`` with TLS)."""
    steering: str = ""
    """Base URL of the steering service; heartbeats go to ``{steering}/edges/heartbeat``. Empty: none."""
    token_keys: dict[str, str] = field(default_factory=dict)
    """``kid -> secret`` for URL tokens (rotation: any is accepted; the first signs requests to other edges)."""
    admin_key: str = ""
    """Guards ``/_/purge`` and ``/_/prefill`` (header ``X-Admin-Key``); empty: admin calls are refused."""
    fill_rate_mbps: float = 100.0
    """Prefill rate limit, megabits per second (on-demand fills are never limited)."""
    prefill_window: str = ""
    """Default prefill time window, local ``HH:MM-HH:MM`` (may wrap midnight); empty: any time."""
    ram_policy: str = "lru+2hit"
    """RAM eviction/admission policy, a name from ``edge.ram.RAM_POLICIES`` (chosen by bench/edge_policy)."""
    disk_policy: str = "lru"
    """Disk eviction policy, a name from ``edge.ram.RAM_POLICIES`` without admission."""
    slice_bytes: int = 1 * MIB
    """Slice size for large objects (like nginx's slice module)."""
    large_object_bytes: int = 16 * MIB
    """Objects larger than this are fetched and cached in slices; smaller ones whole."""
    fill_lock_timeout_s: float = 10.0
    """With ``workers`` > 1: longest wait for another worker's fill of the same part (nginx's
    ``proxy_cache_lock_timeout``); then this worker fetches it too."""
    upstream_connect_timeout_s: float = 2.0
    upstream_read_timeout_s: float = 5.0
    """Longest wait for the next body bytes from one upstream; the response headers may take this plus
    ``upstream_connect_timeout_s`` (the edge's own timers, not aiohttp's ``sock_read``: see ``fill.py``)."""
    breaker_failures: int = 1
    """Failures in a row (timeout, refused connection, 5xx, broken body) that open an upstream's circuit
    breaker: fills then skip that upstream (the next one is asked, or the request is answered from a
    stale copy or with 502/504 at once) until ``breaker_open_s`` has passed (``edge/breaker.py``)."""
    breaker_open_s: float = 5.0
    """How long an open circuit skips its upstream; then one request is let through as a probe
    (half-open): its success closes the circuit, its failure opens it again for as long."""
    negative_ttl_s: float = 5.0
    """How long an authoritative upstream 4xx (404, 400, 403, 410...) is remembered and answered from
    memory with the same status (5xx, timeouts and connection errors are never remembered)."""
    playlist_ttl_s: float = 2.0
    """Freshness of playlists when the upstream sends no max-age."""
    stale_while_revalidate_s: float = 2.0
    """How long past its freshness a cached object is served at once, stale, while one revalidation
    (coalesced per object) runs behind; the upstream's ``Cache-Control: stale-while-revalidate=N``
    overrides it (``must-revalidate`` or ``no-cache`` turn it off)."""
    stale_if_error_s: float = 86400.0
    """How long past its freshness a cached object may still be served when its revalidation fails
    (5xx, timeout, connection error, open circuit) or is slow (``stale_deadline_s``); the upstream's
    ``Cache-Control: stale-if-error=N`` overrides it (RFC 5861)."""
    stale_deadline_s: float = 0.5
    """Longest wait a request for a stale object (past stale-while-revalidate, within stale-if-error)
    gives its revalidation before it is answered from the stale copy; the revalidation goes on behind,
    bounded by the upstream timeouts, and its result serves the requests after it."""
    heartbeat_interval_s: float = 1.0
    """Seconds between heartbeats (the steering service drops an edge silent for 3 s by default)."""
    drain_timeout_s: float = 30.0
    """On SIGTERM: the longest wait for in-flight responses before exiting."""
    header_timeout_s: float = 60.0
    """A request head must arrive whole within this of its first byte (or of the end of the answer it
    waited behind), else 408 and the connection is closed (nginx's ``client_header_timeout``)."""
    body_timeout_s: float = 60.0
    """A request body must arrive whole within this of the end of its head while no answer has started
    (admin POSTs), else 408 and the connection is closed (nginx's ``client_body_timeout``)."""
    keepalive_timeout_s: float = 75.0
    """A connection idle this long (no byte of a next request) is closed (nginx's ``keepalive_timeout``)."""
    access_log: bool = True
    access_log_file: str = ""
    """Append the access log to this file (every worker of the edge appends to the same file) instead of
    writing it to stderr with the other log lines, whatever the log level: what ``vodstack load --report``
    joins by CMCD ``sid``."""
    cmsd: bool = True
    """Answer ``CMSD-Static`` and ``CMSD-Dynamic`` (CTA-5006) on media paths (``edge/cmcd.py``)."""
    cmsd_max_bitrate_kbps: int = 0
    """An operator's cap on what players should play: sent as CMSD-Dynamic ``mb`` on every answer (0: none)."""
    capacity_mbps: float = 0.0
    """What this edge can send. Above 90 % of it the edge says it is under duress (CMSD ``du``) and suggests
    ``mb`` = 90 % of it shared among the viewers it served in the last 10 s (0: unknown, never)."""
    fast_path: bool = True
    """Answer plain fresh RAM hits from the connection's socket callback, before aiohttp (``edge/fastpath.py``);
    the answers are the same, at about a quarter of the CPU per 2 KB hit (bench/edge_vs_nginx)."""
    event_loop: str = "asyncio"
    """``asyncio`` or ``uvloop``: chosen by bench/edge_vs_nginx (see docs/edge.md). With the RAM-hit fast
    path the two are close; asyncio's loop spent less CPU per 2 KB hit in two runs of three (23.9 vs
    25.3, 23.8 vs 26.8, 24.7 vs 24.2 µs), and under uvloop aiohttp 3.14.5 re-arms read timers on
    pooled client connections (see ``fill.py``)."""
    fill_chunk_bytes: int = 64 * 1024

    def __post_init__(self) -> None:
        object.__setattr__(self, "cache_dir", Path(self.cache_dir))
        object.__setattr__(self, "parents", tuple(self.parents))
        object.__setattr__(self, "peers", tuple(self.peers))
        if not self.name or any(c.isspace() for c in self.name):
            raise ValueError(f"name: expected a word without spaces, got {self.name!r}")
        for key in ("origin", "steering", "public_url"):
            value = getattr(self, key)
            if (value or key == "origin") and not value.startswith(("http://", "https://")):
                raise ValueError(f"{key}: expected an http:// URL, got {value!r}")
        for key in ("parents", "peers"):
            for url in getattr(self, key):
                if not url.startswith(("http://", "https://")):
                    raise ValueError(f"{key}: expected http:// URLs, got {url!r}")
        if (self.parents or self.peers) and not self.token_keys:
            raise ValueError("token_keys: parents and peers are called with a token; give --token-key KID=SECRET")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port: expected 0..65535, got {self.port}")
        for key in ("ram_mb", "disk_mb", "fill_rate_mbps", "upstream_connect_timeout_s",
                    "upstream_read_timeout_s", "heartbeat_interval_s", "fill_lock_timeout_s"):
            if getattr(self, key) <= 0:
                raise ValueError(f"{key}: expected a positive number, got {getattr(self, key)}")
        if self.cmsd_max_bitrate_kbps < 0 or self.capacity_mbps < 0:
            raise ValueError("cmsd_max_bitrate_kbps, capacity_mbps: expected zero (none) or more")
        for key in ("negative_ttl_s", "playlist_ttl_s", "stale_if_error_s", "breaker_open_s", "drain_timeout_s",
                    "stale_while_revalidate_s", "stale_deadline_s"):
            if getattr(self, key) < 0:
                raise ValueError(f"{key}: expected zero or more, got {getattr(self, key)}")
        if self.workers < 0:
            raise ValueError(f"workers: expected 0 (one per core) or more, got {self.workers}")
        if self.breaker_failures < 1:
            raise ValueError(f"breaker_failures: expected 1 or more, got {self.breaker_failures}")
        for key in ("header_timeout_s", "body_timeout_s", "keepalive_timeout_s"):
            if not getattr(self, key) > 0:
                raise ValueError(f"{key}: expected a positive number of seconds, got {getattr(self, key)}")
        if self.slice_bytes < 4096 or self.large_object_bytes < self.slice_bytes:
            raise ValueError("slice_bytes: expected >= 4096 and <= large_object_bytes")
        if self.prefill_window and not _WINDOW_RE.match(self.prefill_window):
            raise ValueError(f"prefill_window: expected HH:MM-HH:MM, got {self.prefill_window!r}")
        if self.event_loop not in ("asyncio", "uvloop"):
            raise ValueError(f"event_loop: expected asyncio or uvloop, got {self.event_loop!r}")
        from .ram import RAM_POLICIES  # late: ram imports nothing from here
        for key in ("ram_policy", "disk_policy"):
            if getattr(self, key) not in RAM_POLICIES:
                raise ValueError(f"{key}: expected one of {', '.join(RAM_POLICIES)}, got {getattr(self, key)!r}")

    @property
    def ram_limit_bytes(self) -> int:
        return int(self.ram_mb * MIB)

    @property
    def disk_limit_bytes(self) -> int:
        return int(self.disk_mb * MIB)

    @property
    def fill_rate_bps(self) -> float:
        """Prefill rate in bits per second."""
        return self.fill_rate_mbps * 1_000_000


def parse_window(text: str) -> tuple[int, int] | None:
    """``HH:MM-HH:MM`` -> (start, end) minutes of the day; '' -> None (always open)."""
    if not text:
        return None
    m = _WINDOW_RE.match(text)
    if not m:
        raise ValueError(f"expected HH:MM-HH:MM, got {text!r}")
    h1, m1, h2, m2 = (int(g) for g in m.groups())
    return h1 * 60 + m1, h2 * 60 + m2
