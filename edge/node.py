"""One edge appliance's state and cache logic: tiers, fills, negative cache, purge, stats.

The HTTP handlers (``serve.py``, ``admin.py``) call into :class:`Edge`; it owns no sockets of its own
besides the upstream client session. The tiers are one chain behind one protocol (``lookup.Tier``),
built once from the config: the store tiers (RAM, then disk: a hit in one is offered to those above
it) and last the fill tier. What a request does with what they hold is ``lookup.plan_lookup``'s
decision, which ``serve.py`` carries out.
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Callable, Sequence

import cachetools

from .config import EdgeConfig
from .disk import DiskTier
from .fill import FillManager
from .inflight import Fill, FillSpec, Pace
from .freshness import Freshness, freshness
from .health import RateMeter, ratio
from .lookup import CacheResult, Found, StaleDefaults, Tier, TierName
from .metrics import EdgeMetrics
from .objects import CachedPart, ObjectMeta, object_key_of, slice_key
from .ram import RamTier
from .slices import slice_bounds
from .tokens import verify_token
from .cmcd import CmsdState
from .workers import FillLock, Siblings
from serverkit.workers import WorkerRole

log = logging.getLogger(__name__)


class Edge:
    """One edge; with ``role`` (a worker of ``--workers N``), one worker of it: RAM and disk bounds are
    this worker's share (``ram_mb / N``, ``disk_mb / N``), the disk folder and the fill lock are shared
    with its siblings (``edge/workers.py``)."""

    def __init__(self, cfg: EdgeConfig, clock: Callable[[], float] = time.time,
                 role: WorkerRole | None = None) -> None:
        self.cfg = cfg
        self.clock = clock
        self.role = role
        count, slot = (role.count, role.slot) if role is not None else (1, 0)
        self.metrics = EdgeMetrics()
        self.ram = RamTier(cfg.ram_limit_bytes // count, cfg.ram_policy, on_evict=self._ram_evicted)
        self.disk = DiskTier(cfg.cache_dir, cfg.disk_limit_bytes // count, cfg.disk_policy,
                             on_evict=self._disk_evicted, on_corrupt=lambda key: self.metrics.corrupt.inc(),
                             slot=slot, count=count)
        self.fills = FillManager(cfg, self.metrics, self._filled, self._sliced_found, clock)
        self.siblings: Siblings | None = None
        if role is not None and role.count > 1:
            self.siblings = Siblings(role)
            self.fills.lock = FillLock(cfg.cache_dir, self.disk, cfg.fill_lock_timeout_s)
        self.stores: Sequence[Tier] = (self.ram, self.disk)  # looked in, in this order
        self.tiers: Sequence[Tier] = (*self.stores, self.fills)  # purged, all of them
        self.stale_defaults = StaleDefaults(stale_if_error_s=cfg.stale_if_error_s,
                                            stale_while_revalidate_s=cfg.stale_while_revalidate_s)
        self.negative: cachetools.TTLCache[str, int] = cachetools.TTLCache(  # key -> an upstream's 4xx status
            maxsize=100_000, ttl=max(cfg.negative_ttl_s, 1e-9), timer=clock)
        self.sliced: cachetools.LRUCache[str, ObjectMeta] = cachetools.LRUCache(maxsize=100_000)
        self.out_meter = RateMeter()
        self.cmsd = CmsdState(cap_kbps=cfg.cmsd_max_bitrate_kbps, capacity_mbps=cfg.capacity_mbps, share=1 / count)
        self.started_at_s = clock()
        self.draining = False
        self.retiring = False  # a worker replaced at a reload: answers close their connections
        self.active_requests = 0
        self.url = ""
        self.open_connections: Callable[[], int] | None = None  # set by the runner (server.py)
        self._tokens_ok: dict[str, tuple[str, int]] = {}

    async def start(self) -> None:
        await self.disk.open()
        await self.fills.start()

    async def close(self) -> None:
        await self.fills.close()
        await self.disk.flush()

    # ------------------------------------------------------------ tokens
    def token_ok(self, token: str, title: str) -> str:
        """'' if ``token`` grants ``title`` now, else the refusal reason (HMAC checked once per token)."""
        now = self.clock()
        memo = self._tokens_ok.get(token)
        if memo is not None:
            granted, expires = memo
            if now < expires and granted == title:
                return ""
        verdict = verify_token(token, self.cfg.token_keys, title, now)
        if not verdict.ok:
            return verdict.reason
        if len(self._tokens_ok) >= 50_000:
            self._tokens_ok.clear()
        self._tokens_ok[token] = (verdict.title, verdict.expires_at_s)
        return ""

    # ------------------------------------------------------------ tier callbacks
    def _ram_evicted(self, key: str, part: object) -> None:
        self.metrics.evictions.labels(TierName.RAM).inc()

    def _disk_evicted(self, key: str) -> None:
        self.metrics.evictions.labels(TierName.DISK).inc()  # a part hot in RAM stays there until evicted there

    def _sliced_found(self, meta: ObjectMeta) -> None:
        self.sliced[meta.key] = meta

    def _filled(self, fill: Fill, part: CachedPart) -> None:
        key = fill.cache_key
        if fill.not_modified:
            if key in self.ram:
                self.ram.put(key, part, force=True)
            asyncio.get_running_loop().create_task(self.disk.refresh(key, part.meta, part.fetched_at_s))
            return
        if key in self.ram:  # a newer copy (a revalidation's 200) replaces the one RAM holds, admitted or not
            self.ram.put(key, part, force=True)
        elif not fill.spec.prefill:
            self.ram.put(key, part)
        if not fill.borrowed:  # answered from this edge's disk (a sibling's copy, or its own): on disk already
            self.disk.put_behind(key, part)

    # ------------------------------------------------------------ lookups
    def fresh_in_ram(self, key: str) -> CachedPart | None:
        """The part under ``key`` if RAM holds it and it is fresh: the hit answered without a look
        upstream (RAM holds only keys that were validated on their way in)."""
        part = self.ram.peek(key)
        if part is not None and freshness(part.fetched_at_s, part.meta.max_age_s, self.clock(),
                                          self.cfg.stale_if_error_s) is Freshness.FRESH:
            return part
        return None

    def sliced_meta(self, key: str) -> ObjectMeta | None:
        meta = self.sliced.get(key)
        if meta is None:
            meta = self.disk.sliced_meta(key)
            if meta is not None:
                self.sliced[key] = meta
        return meta

    async def cached(self, cache_key: str) -> Found | None:
        """The part from the first store tier holding it (offered to the tiers above that one), or None."""
        stores = self.stores
        for i, tier in enumerate(stores):
            found = await tier.lookup(cache_key)
            if found is not None:
                assert found.part is not None
                for upper in stores[:i]:
                    upper.admit(cache_key, found.part)
                return found
        return None

    def holds(self, cache_key: str) -> bool:
        """Whether a store tier holds ``cache_key`` (asked without counting a request), or a sibling
        worker's disk does."""
        return any(cache_key in tier for tier in self.stores) or self.disk.sibling_holds(cache_key)

    async def find_slice(self, meta: ObjectMeta, n: int, cache_only: bool = False,
                         prefill: bool = False, pace: Pace | None = None) -> Found | None:
        ck = slice_key(meta.key, self.cfg.slice_bytes, n)
        found = await self.cached(ck)
        if found is not None or cache_only:
            return found
        bounds = slice_bounds(n, meta.size_bytes, self.cfg.slice_bytes)
        fill, started = self.fills.get_or_start(FillSpec(object_key=meta.key, cache_key=ck, range=bounds,
                                                         expect=meta, prefill=prefill, pace=pace))
        return Found(TierName.FILL, fill=fill, started=started)

    # ------------------------------------------------------------ purge
    async def purge(self, keys: list[str] | None = None, prefix: str | None = None) -> int:
        """Drop objects (all their slices too) by key, or every object under ``prefix``; returns parts dropped."""
        dropped = 0

        def matches(k: str) -> bool:
            ok = object_key_of(k)
            return (prefix is not None and ok.startswith(prefix)) or (keys is not None and ok in keys)

        for tier in self.tiers:  # the fill tier: fills in flight store nothing
            dropped += await tier.purge(matches)
        for table in (self.negative, self.sliced):
            for k in [k for k in list(table.keys()) if matches(k)]:
                table.pop(k, None)
        log.info("purged", extra={"kv": {"keys": len(keys or []), "prefix": prefix, "parts": dropped}})
        return dropped

    # ------------------------------------------------------------ health
    def served_stats(self) -> dict[str, float]:
        served = self.metrics.served_totals()
        total = sum(served.values())
        requests = self.metrics.request_totals()
        hits = sum(requests.get(c, 0.0) for c in (CacheResult.RAM_HIT, CacheResult.DISK_HIT, CacheResult.STALE))
        lookups = hits + sum(requests.get(c, 0.0)
                             for c in (CacheResult.MISS, CacheResult.COALESCED, CacheResult.REVALIDATED))
        return {"byte_hit_ratio": ratio(served[TierName.RAM] + served[TierName.DISK] + served[TierName.STALE], total),
                "hit_ratio": ratio(hits, lookups), "bytes_served": total, "requests": sum(requests.values())}

    def health(self) -> dict[str, Any]:
        now = self.clock()
        stats = self.served_stats()
        return {
            "status": "draining" if self.draining else "ok",
            "name": self.cfg.name, "region": self.cfg.region, "url": self.url,
            "active_connections": self.open_connections() if self.open_connections else self.active_requests,
            "active_requests": self.active_requests,
            "bytes_out_per_s": round(self.out_meter.rate(now)),
            "ram_fullness": ratio(self.ram.used_bytes, self.ram.limit_bytes),
            "disk_fullness": ratio(self.disk.used_bytes, self.disk.limit_bytes),
            "ram_bytes": self.ram.used_bytes, "ram_limit_bytes": self.ram.limit_bytes,
            "disk_bytes": self.disk.used_bytes, "disk_limit_bytes": self.disk.limit_bytes,
            "hit_ratio": stats["hit_ratio"], "byte_hit_ratio": stats["byte_hit_ratio"],
            "fills_in_flight": self.fills.in_flight,
            "circuits": self.fills.circuit_phases(),  # upstream label -> closed | open | half_open
            "uptime_s": round(now - self.started_at_s, 1), "time_s": now,
            "bytes_served": stats["bytes_served"],
            "requests": stats["requests"],
            **({} if self.fills.lock is None else {"fill_lock": self.fills.lock.stats()}),
        }

    def gauges(self) -> dict[str, float]:
        return {"ram_bytes": self.ram.used_bytes, "ram_limit_bytes": self.ram.limit_bytes,
                "disk_bytes": self.disk.used_bytes, "disk_limit_bytes": self.disk.limit_bytes,
                "byte_hit_ratio": self.served_stats()["byte_hit_ratio"], "active_requests": self.active_requests}
