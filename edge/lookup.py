"""The edge's lookup, as values: tier names, cache results, the tier protocol and the lookup plan. Pure.

A request for a cache key is answered by the first of these that applies (``plan_lookup``)::

    the negative cache holds an upstream's 4xx   NEGATIVE (a peer asking: NEGATIVE_TO_PEER, 404)
    the key is a sliced object                    SLICED: answered slice by slice (``serve.py``)
    -- otherwise the store tiers are looked in, in chain order (RAM, then disk) --
    a part fresh                                  SERVE_FRESH
    a part, a peer asking (cache-only)            SERVE_TO_PEER: as it is, never revalidated
    a part within stale-while-revalidate          SERVE_STALE_AND_REVALIDATE
    a part within the stale window                REVALIDATE_WITHIN_DEADLINE: wait stale_deadline_s
                                                  at most, then (or on a failure) serve the stale copy
    a part past every stale window                REVALIDATE_THEN_SERVE
    nothing, a peer asking                        NOT_CACHED_CACHE_ONLY (404, nothing filled)
    nothing, a byte range of a media object       FILL_PROBE: fill, asking first for one slice
    nothing                                       FILL

The plan is computed twice per lookup at most: first without the tiers (``LOOK_IN_TIERS`` says they
are needed: the negative cache and the slice table are dict lookups, the tiers may read the disk),
then with what they held. The RAM-hit fast path (``Edge.fresh_in_ram``) is the ``SERVE_FRESH`` row
taken early, before any of this, for a part in RAM.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Callable, Protocol

from .freshness import Freshness, freshness
from .objects import CachedPart

if TYPE_CHECKING:
    from .inflight import Fill


class TierName(enum.StrEnum):
    """Where the bytes of an answer came from: the ``tier`` of the access log and of
    ``vodstack_edge_served_bytes_total{tier}`` (a ``str``: the label is the value itself)."""

    RAM = "ram"
    DISK = "disk"
    FILL = "fill"
    STALE = "stale"  # a stale copy (from RAM or disk) served as it was

    @property
    def hit(self) -> CacheResult:
        """The cache result of a hit in this tier."""
        return _HITS[self]


class CacheResult(enum.StrEnum):
    """What one request came to: the ``cache`` of the access log and of
    ``vodstack_edge_requests_total{cache}``. A refused token's reason (``tokens.py``) takes its place."""

    NONE = "none"              # answered before any lookup (draining, a bad path)
    RAM_HIT = "ram_hit"
    DISK_HIT = "disk_hit"
    COALESCED = "coalesced"    # joined a fill in flight
    MISS = "miss"              # started a fill (or, a peer asking: not here)
    REVALIDATED = "revalidated"
    STALE = "stale"
    NEGATIVE = "negative"      # an upstream's 4xx, remembered

    @property
    def rank(self) -> int:
        """For a response made of several parts (slices): the worst part's result is the request's."""
        return _RANK.get(self, 0)


_HITS = MappingProxyType({TierName.RAM: CacheResult.RAM_HIT, TierName.DISK: CacheResult.DISK_HIT})
_RANK = MappingProxyType({CacheResult.NONE: 0, CacheResult.RAM_HIT: 1, CacheResult.DISK_HIT: 2,
                          CacheResult.COALESCED: 3, CacheResult.MISS: 4})


@dataclass
class Found:
    """A part found in a store tier (``part``), or a fill to read from (``fill``; ``started``: by this request)."""

    tier: TierName
    part: CachedPart | None = None
    fill: Fill | None = None
    started: bool = False

    @property
    def result(self) -> CacheResult:
        if self.tier is TierName.FILL:
            return CacheResult.MISS if self.started else CacheResult.COALESCED
        return self.tier.hit


class Tier(Protocol):
    """One tier of the edge's chain (``Edge.tiers``: RAM, disk, then the fill tier, built once from config).

    ``lookup`` gives what the tier holds for a cache key (a store tier: a part; the fill tier: the fill in
    flight, joined), ``admit`` offers it a part (a store may refuse; the fill tier holds none), ``purge``
    drops every key ``matches`` selects (the fill tier: fills in flight will not store what they bring)
    and returns the parts dropped. ``in`` asks without counting a request."""

    name: TierName

    async def lookup(self, key: str) -> Found | None: ...

    def admit(self, key: str, part: CachedPart, *, force: bool = False) -> bool: ...

    async def purge(self, matches: Callable[[str], bool]) -> int: ...

    def __contains__(self, key: str) -> bool: ...


class LookupPlan(enum.Enum):
    """What ``serve.py`` does with one request for one cache key (the table in this module's docstring)."""

    LOOK_IN_TIERS = "look_in_tiers"
    NEGATIVE = "negative"
    NEGATIVE_TO_PEER = "negative_to_peer"
    SLICED = "sliced"
    SERVE_FRESH = "serve_fresh"
    SERVE_TO_PEER = "serve_to_peer"
    SERVE_STALE_AND_REVALIDATE = "serve_stale_and_revalidate"
    REVALIDATE_WITHIN_DEADLINE = "revalidate_within_deadline"
    REVALIDATE_THEN_SERVE = "revalidate_then_serve"
    NOT_CACHED_CACHE_ONLY = "not_cached_cache_only"
    FILL_PROBE = "fill_probe"
    FILL = "fill"


@dataclass(frozen=True, kw_only=True)
class StaleDefaults:
    """The edge's stale windows, for parts whose upstream named none (``EdgeConfig``)."""

    stale_if_error_s: float
    stale_while_revalidate_s: float


def part_freshness(part: CachedPart, now_s: float, defaults: StaleDefaults) -> Freshness:
    """Where a cached part stands (``freshness.py``): the upstream's stale windows, else the edge's."""
    meta = part.meta
    swr_s, sie_s = meta.stale_while_revalidate_s, meta.stale_if_error_s
    return freshness(part.fetched_at_s, meta.max_age_s, now_s,
                     defaults.stale_if_error_s if sie_s is None else sie_s,
                     defaults.stale_while_revalidate_s if swr_s is None else swr_s)


_BY_FRESHNESS = MappingProxyType({Freshness.FRESH: LookupPlan.SERVE_FRESH,
                                  Freshness.REVALIDATING: LookupPlan.SERVE_STALE_AND_REVALIDATE,
                                  Freshness.STALE: LookupPlan.REVALIDATE_WITHIN_DEADLINE,
                                  Freshness.EXPIRED: LookupPlan.REVALIDATE_THEN_SERVE})


def plan_lookup(*, negative_status: int | None, sliced: bool, looked_in_tiers: bool, part: CachedPart | None,
                now_s: float, defaults: StaleDefaults, cache_only: bool, ranged_media: bool) -> LookupPlan:
    """The plan for one request (see the module docstring). ``negative_status``: the negative cache's entry;
    ``sliced``: the key is a sliced object; ``looked_in_tiers``/``part``: what the store tiers held (not
    looked in yet: ``LOOK_IN_TIERS`` when they are needed); ``cache_only``: a peer's cache-only request;
    ``ranged_media``: a ``Range`` request for an object that is not a playlist."""
    if negative_status is not None:
        return LookupPlan.NEGATIVE_TO_PEER if cache_only else LookupPlan.NEGATIVE
    if sliced:
        return LookupPlan.SLICED
    if not looked_in_tiers:
        return LookupPlan.LOOK_IN_TIERS
    if part is not None:
        state = part_freshness(part, now_s, defaults)
        if cache_only and state is not Freshness.FRESH:
            return LookupPlan.SERVE_TO_PEER
        return _BY_FRESHNESS[state]
    if cache_only:
        return LookupPlan.NOT_CACHED_CACHE_ONLY
    return LookupPlan.FILL_PROBE if ranged_media else LookupPlan.FILL
