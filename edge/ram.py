"""The RAM tier: cached parts in a cachetools cache bounded in bytes, behind an optional admission filter.

Policies are chosen by name from :data:`RAM_POLICIES` (bench/edge_policy measures them on a Zipf
trace; docs/edge.md says which won). ``NAME+2hit`` admits an object only on its second request
seen within a recent-history window (one-hit wonders never push out popular objects). The disk tier
uses the same eviction classes without admission.
"""
from __future__ import annotations

from types import MappingProxyType
from typing import Any, Callable, Mapping, Protocol

import cachetools

from .lookup import Found, TierName
from .objects import CachedPart

#: Bytes counted per entry on top of the body (key, part object, cache bookkeeping).
ENTRY_OVERHEAD_BYTES = 256


class Sized(Protocol):
    @property
    def nbytes(self) -> int: ...


def _evicting(base: type) -> type:
    """A subclass of a cachetools class that reports every eviction to ``on_evict(key, value)``."""

    class Evicting(base):
        def __init__(self, maxsize: int, getsizeof: Callable[[Any], int],
                     on_evict: Callable[[Any, Any], None] | None = None) -> None:
            super().__init__(maxsize, getsizeof=getsizeof)
            self._on_evict = on_evict

        def popitem(self) -> tuple[Any, Any]:
            key, value = super().popitem()
            if self._on_evict is not None:
                self._on_evict(key, value)
            return key, value

    Evicting.__name__ = f"Evicting{base.__name__}"
    return Evicting


EVICTION_CLASSES: Mapping[str, type] = MappingProxyType({
    "lru": _evicting(cachetools.LRUCache),
    "lfu": _evicting(cachetools.LFUCache),
    "fifo": _evicting(cachetools.FIFOCache),
    "rr": _evicting(cachetools.RRCache),
})

#: name -> (eviction class name, requests needed before admission)
RAM_POLICIES: Mapping[str, tuple[str, int]] = MappingProxyType({
    "lru": ("lru", 1), "lfu": ("lfu", 1), "fifo": ("fifo", 1), "rr": ("rr", 1),
    "lru+2hit": ("lru", 2), "lfu+2hit": ("lfu", 2),
})


def admit(seen_count: int, size_bytes: int, limit_bytes: int, hits_needed: int) -> bool:
    """Admission decision. Plain policies (``hits_needed`` 1) admit everything; filtered ones admit an
    object requested ``hits_needed`` times and no larger than 1/8 of the tier (one object cannot flush it)."""
    if hits_needed <= 1:
        return True
    return seen_count >= hits_needed and size_bytes + ENTRY_OVERHEAD_BYTES <= max(limit_bytes // 8, 1)


class RamTier:
    """Parts by cache key, bounded to ``limit_bytes`` of bodies plus per-entry overhead (a ``lookup.Tier``)."""

    name = TierName.RAM

    def __init__(self, limit_bytes: int, policy: str = "lru",
                 on_evict: Callable[[str, Sized], None] | None = None, history_entries: int = 65536) -> None:
        eviction, self.hits_needed = RAM_POLICIES[policy]
        self.policy = policy
        self.limit_bytes = limit_bytes
        self.evictions = 0
        self._on_evict = on_evict
        self._cache = EVICTION_CLASSES[eviction](limit_bytes, getsizeof=self._size_of, on_evict=self._evicted)
        # recent request counts, for admission; bounded in entries
        self._seen: cachetools.LRUCache[str, int] = cachetools.LRUCache(history_entries)

    @staticmethod
    def _size_of(part: Sized) -> int:
        return part.nbytes + ENTRY_OVERHEAD_BYTES

    def _evicted(self, key: str, part: Sized) -> None:
        self.evictions += 1
        if self._on_evict is not None:
            self._on_evict(key, part)

    @property
    def used_bytes(self) -> int:
        return int(self._cache.currsize)

    def __len__(self) -> int:
        return len(self._cache)

    def __contains__(self, key: str) -> bool:
        return key in self._cache

    def get(self, key: str) -> CachedPart | None:
        """The part, or None; counts the request for admission."""
        part: CachedPart | None = self._cache.get(key)
        if part is None and self.hits_needed > 1:
            self._seen[key] = self._seen.get(key, 0) + 1
        return part

    def peek(self, key: str) -> CachedPart | None:
        """The part, or None, without counting a miss for admission (a hit still refreshes its rank)."""
        part: CachedPart | None = self._cache.get(key)
        return part

    def put(self, key: str, part: CachedPart, force: bool = False) -> bool:
        """Store ``part`` if admitted (``force``: skip the request-count test); True if stored."""
        seen = self.hits_needed if force else self._seen.get(key, 0) if self.hits_needed > 1 else 1
        if not admit(seen, part.nbytes, self.limit_bytes, self.hits_needed):
            return False
        try:
            self._cache[key] = part
        except ValueError:  # larger than the whole tier
            return False
        self._seen.pop(key, None)
        return True

    def delete(self, key: str) -> bool:
        return self._cache.pop(key, None) is not None

    # ------------------------------------------------------------ the Tier protocol (lookup.py)
    async def lookup(self, key: str) -> Found | None:
        part = self.get(key)
        return None if part is None else Found(TierName.RAM, part)

    def admit(self, key: str, part: CachedPart, *, force: bool = False) -> bool:
        return self.put(key, part, force=force)

    async def purge(self, matches: Callable[[str], bool]) -> int:
        return sum(self.delete(k) for k in [k for k in self._cache if matches(k)])

    def delete_prefix(self, prefix: str) -> int:
        keys = [k for k in self._cache if k.startswith(prefix)]
        for k in keys:
            self._cache.pop(k, None)
        return len(keys)

    def keys(self) -> list[str]:
        return list(self._cache)
