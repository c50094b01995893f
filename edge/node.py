"""One edge appliance's state and cache logic: tiers, fills, negative cache, purge, stats.

The HTTP handlers (``serve.py``, ``admin.py``) call into :class:`Edge`; it owns no sockets of its own
besides the upstream client session. Lookup order for a cache key: negative cache, sliced-object
metadata, RAM, disk (verified, then offered to RAM), then a fill (joined if one is in flight).
"""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any, Callable

import cachetools

from .config import EdgeConfig
from .disk import DiskTier
from .fill import Fill, FillManager, FillSpec
from .freshness import Freshness, freshness
from .health import RateMeter, ratio
from .metrics import EdgeMetrics
from .objects import CachedPart, ObjectMeta, object_key_of, slice_key
from .ram import RamTier
from .slices import slice_bounds
from .tokens import verify_token

log = logging.getLogger(__name__)


@dataclass
class Found:
    """A part found in a tier (``tier`` ram|disk) or a fill to read from (``tier`` fill)."""

    tier: str
    part: CachedPart | None = None
    fill: Fill | None = None
    started: bool = False


class Edge:
    def __init__(self, cfg: EdgeConfig, clock: Callable[[], float] = time.time) -> None:
        self.cfg = cfg
        self.clock = clock
        self.metrics = EdgeMetrics()
        self.ram = RamTier(cfg.ram_limit_bytes, cfg.ram_policy, on_evict=self._ram_evicted)
        self.disk = DiskTier(cfg.cache_dir, cfg.disk_limit_bytes, cfg.disk_policy, on_evict=self._disk_evicted,
                             on_corrupt=lambda key: self.metrics.corrupt.inc())
        self.fills = FillManager(cfg, self.metrics, self._filled, self._sliced_found, clock)
        self.negative: cachetools.TTLCache[str, int] = cachetools.TTLCache(  # key -> an upstream's 4xx status
            maxsize=100_000, ttl=max(cfg.negative_ttl_s, 1e-9), timer=clock)
        self.sliced: cachetools.LRUCache[str, ObjectMeta] = cachetools.LRUCache(maxsize=100_000)
        self.out_meter = RateMeter()
        self.started_at_s = clock()
        self.draining = False
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
    def _ram_evicted(self, key: str, part: Any) -> None:
        self.metrics.evictions.labels("ram").inc()

    def _disk_evicted(self, key: str) -> None:
        self.metrics.evictions.labels("disk").inc()  # a part hot in RAM stays there until evicted there

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
        """The part from RAM or disk (a disk hit is offered to RAM), or None."""
        part = self.ram.get(cache_key)
        if part is not None:
            return Found("ram", part)
        part = await self.disk.get(cache_key)
        if part is None:
            return None
        self.ram.put(cache_key, part)
        return Found("disk", part)

    async def find_slice(self, meta: ObjectMeta, n: int, cache_only: bool = False,
                         prefill: bool = False, pace: Any = None) -> Found | None:
        ck = slice_key(meta.key, self.cfg.slice_bytes, n)
        found = await self.cached(ck)
        if found is not None or cache_only:
            return found
        bounds = slice_bounds(n, meta.size_bytes, self.cfg.slice_bytes)
        fill, started = self.fills.get_or_start(FillSpec(object_key=meta.key, cache_key=ck, range=bounds,
                                                         expect=meta, prefill=prefill, pace=pace))
        return Found("fill", fill=fill, started=started)

    # ------------------------------------------------------------ purge
    async def purge(self, keys: list[str] | None = None, prefix: str | None = None) -> int:
        """Drop objects (all their slices too) by key, or every object under ``prefix``; returns parts dropped."""
        dropped = 0

        def matches(k: str) -> bool:
            ok = object_key_of(k)
            return (prefix is not None and ok.startswith(prefix)) or (keys is not None and ok in keys)

        for k in [k for k in self.ram.keys() if matches(k)]:
            dropped += self.ram.delete(k)
        for k in [k for k in self.disk.keys() if matches(k)]:
            dropped += await self.disk.delete(k)
        for table in (self.negative, self.sliced):
            for k in [k for k in list(table.keys()) if matches(k)]:
                table.pop(k, None)
        for fill in self.fills.fills.values():
            if matches(fill.cache_key):
                fill.purged = True
        log.info("purged", extra={"kv": {"keys": len(keys or []), "prefix": prefix, "parts": dropped}})
        return dropped

    # ------------------------------------------------------------ health
    def served_stats(self) -> dict[str, float]:
        served = self.metrics.served_totals()
        total = sum(served.values())
        requests = self.metrics.request_totals()
        hits = sum(requests.get(c, 0.0) for c in ("ram_hit", "disk_hit", "stale"))
        lookups = hits + sum(requests.get(c, 0.0) for c in ("miss", "coalesced", "revalidated"))
        return {"byte_hit_ratio": ratio(served["ram"] + served["disk"] + served["stale"], total),
                "hit_ratio": ratio(hits, lookups), "bytes_served": total}

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
            "fills_in_flight": len(self.fills.fills),
            "circuits": self.fills.circuit_phases(),  # upstream label -> closed | open | half_open
            "uptime_s": round(now - self.started_at_s, 1), "time_s": now,
        }

    def gauges(self) -> dict[str, float]:
        return {"ram_bytes": self.ram.used_bytes, "ram_limit_bytes": self.ram.limit_bytes,
                "disk_bytes": self.disk.used_bytes, "disk_limit_bytes": self.disk.limit_bytes,
                "byte_hit_ratio": self.served_stats()["byte_hit_ratio"], "active_requests": self.active_requests}
