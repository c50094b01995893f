"""Prometheus metrics of one edge, in a registry of its own (several edges can live in one process).

Cache results: ram_hit, disk_hit, miss (this request started the fill), coalesced (joined a fill in
flight), stale (served past freshness: while a revalidation runs behind, or because it failed or was
slow; ``vodstack_edge_stale_served_total{reason}`` says which), revalidated (a stale playlist
confirmed or replaced upstream), negative (a remembered upstream 4xx), none (refused before the cache).
"""
from __future__ import annotations

from typing import Callable, Mapping

from httpsem.cmcd import OBJECT_TYPES

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import CONTENT_TYPE_LATEST as CONTENT_TYPE_LATEST  # re-exported for the handler

CACHE_RESULTS = ("ram_hit", "disk_hit", "miss", "coalesced", "stale", "revalidated", "negative", "none")
#: Where served bytes came from.
TIERS = ("ram", "disk", "fill", "stale")
_OBJECT_TYPES = frozenset(OBJECT_TYPES)


class EdgeMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("vodstack_edge_requests", "Client requests by status and cache result",
                                ["status", "cache"], registry=r)
        self.served_bytes = Counter("vodstack_edge_served_bytes", "Body bytes sent to clients, by tier",
                                    ["tier"], registry=r)
        self.fill_bytes = Counter("vodstack_edge_fill_bytes", "Bytes received from upstreams",
                                  ["upstream"], registry=r)
        self.fill_seconds = Histogram("vodstack_edge_fill_seconds", "Time to fill one part from one upstream",
                                      ["upstream"], registry=r,
                                      buckets=(.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30))
        self.fill_errors = Counter("vodstack_edge_fill_errors", "Failed upstream attempts",
                                   ["upstream", "reason"], registry=r)
        self.upstream_attempts = Counter("vodstack_edge_upstream_attempts", "Requests sent to an upstream",
                                         ["upstream"], registry=r)
        self.upstream_skipped = Counter("vodstack_edge_upstream_skipped",
                                        "Upstreams not asked because their circuit was open", ["upstream"], registry=r)
        self.upstream_refused = Counter("vodstack_edge_upstream_refused",
                                        "Authoritative 4xx answers from upstreams (passed through)",
                                        ["upstream", "status"], registry=r)
        self.breaker_transitions = Counter("vodstack_edge_breaker_transitions",
                                           "Circuit breaker phase changes (closed, open, half_open)",
                                           ["upstream", "phase"], registry=r)
        self.stale_served = Counter("vodstack_edge_stale_served",
                                    "Requests answered from a stale copy, by reason "
                                    "(revalidating, deadline, upstream_error, circuit_open)", ["reason"], registry=r)
        self.evictions = Counter("vodstack_edge_evictions", "Parts evicted, by tier", ["tier"], registry=r)
        self.corrupt = Counter("vodstack_edge_corrupt_parts", "Disk parts that failed their checksum", registry=r)
        self.cache_bytes = Gauge("vodstack_edge_cache_bytes", "Bytes held, by tier", ["tier"], registry=r)
        self.cache_limit_bytes = Gauge("vodstack_edge_cache_limit_bytes", "Bound, by tier", ["tier"], registry=r)
        self.byte_hit_ratio = Gauge("vodstack_edge_byte_hit_ratio",
                                    "Bytes served from cache (ram, disk, stale) / all bytes served", registry=r)
        self.active_requests = Gauge("vodstack_edge_active_requests", "Requests in progress", registry=r)
        self.prefill_bytes = Counter("vodstack_edge_prefill_bytes", "Bytes filled by prefill jobs", registry=r)
        self.cmcd_requests = Counter("vodstack_edge_cmcd_requests",
                                     "Requests carrying CMCD, by object type (ot; none when not said)", ["ot"],
                                     registry=r)
        self.cmcd_starved = Counter("vodstack_edge_cmcd_buffer_starvation",
                                    "Requests whose CMCD says the player's buffer ran dry since its last request (bs)",
                                    registry=r)
        self.cmcd_malformed = Counter("vodstack_edge_cmcd_malformed",
                                      "Requests whose CMCD could not be parsed (served all the same)", registry=r)
        self._served_children = {t: self.served_bytes.labels(t) for t in TIERS}
        self._counts: dict[tuple[int, str], Counter] = {}
        # The serving path counts into plain dicts (a prometheus_client inc takes a lock and two checks,
        # ~1.5 µs, twice per request); _sync() adds them to the counters before anything reads those.
        self._pending_requests: dict[tuple[int, str], int] = {}
        self._pending_served: dict[str, int] = dict.fromkeys(TIERS, 0)
        self._pending_cmcd: dict[str, int] = {}
        self._pending_starved = 0
        self._pending_malformed = 0

    def count_request(self, status: int, cache: str) -> None:
        key = (status, cache)
        self._pending_requests[key] = self._pending_requests.get(key, 0) + 1

    def count_served(self, tier: str, nbytes: int) -> None:
        self._pending_served[tier] += nbytes

    def count_cmcd(self, keys: Mapping[str, object]) -> None:
        """A request with CMCD: by its ``ot`` (``none`` when it does not say), and its ``bs`` flag."""
        ot = keys.get("ot")
        label = ot if ot in _OBJECT_TYPES else "none" if ot is None else "other"
        self._pending_cmcd[label] = self._pending_cmcd.get(label, 0) + 1
        if keys.get("bs") is True:
            self._pending_starved += 1

    def count_cmcd_malformed(self) -> None:
        self._pending_malformed += 1

    def _sync(self) -> None:
        """Move the pending counts into the Prometheus counters."""
        cmcd, self._pending_cmcd = self._pending_cmcd, {}
        for label, n in cmcd.items():
            self.cmcd_requests.labels(label).inc(n)
        if self._pending_starved:
            self.cmcd_starved.inc(self._pending_starved)
            self._pending_starved = 0
        if self._pending_malformed:
            self.cmcd_malformed.inc(self._pending_malformed)
            self._pending_malformed = 0
        pending, self._pending_requests = self._pending_requests, {}
        for key, n in pending.items():
            child = self._counts.get(key)
            if child is None:
                child = self._counts[key] = self.requests.labels(str(key[0]), key[1])
            child.inc(n)
        for tier, nbytes in self._pending_served.items():
            if nbytes:
                self._served_children[tier].inc(nbytes)
                self._pending_served[tier] = 0

    def served_totals(self) -> dict[str, float]:
        self._sync()
        return {t: c._value.get() for t, c in self._served_children.items()}  # noqa: SLF001

    def request_totals(self) -> dict[str, float]:
        """Requests by cache result (summed over statuses)."""
        self._sync()
        out: dict[str, float] = {}
        for (_, cache), child in self._counts.items():
            out[cache] = out.get(cache, 0.0) + child._value.get()  # noqa: SLF001
        return out

    def set_gauges(self, gauges: Callable[[], dict[str, float]]) -> None:
        """Refresh the tier gauges from ``gauges()`` (called before each scrape)."""
        g = gauges()
        for tier in ("ram", "disk"):
            self.cache_bytes.labels(tier).set(g[f"{tier}_bytes"])
            self.cache_limit_bytes.labels(tier).set(g[f"{tier}_limit_bytes"])
        self.byte_hit_ratio.set(g["byte_hit_ratio"])
        self.active_requests.set(g["active_requests"])

    def render(self) -> bytes:
        self._sync()
        return generate_latest(self.registry)
