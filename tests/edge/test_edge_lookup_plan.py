"""The edge's lookup as values (``edge/lookup.py``): the pure lookup plan, table-driven on a clock passed in,
the cache-result and tier enums against the labels dashboards read, and the tier chain behind one protocol
(real RAM and disk tiers, a real fill tier)."""
from __future__ import annotations

import socket

import pytest

from edge.config import EdgeConfig
from edge.lookup import CacheResult, Found, LookupPlan, StaleDefaults, TierName, plan_lookup
from edge.metrics import CACHE_RESULTS, TIERS
from edge.node import Edge
from edge.objects import CachedPart, ObjectMeta

NOW_S = 1000.0
EDGE_DEFAULTS = StaleDefaults(stale_if_error_s=10.0, stale_while_revalidate_s=0.0)


def _part(age_s: float, max_age_s: float = 2.0, swr_s: float | None = None, sie_s: float | None = None) -> CachedPart:
    meta = ObjectMeta(key="t1/v/seg1.m4s", size_bytes=3, etag="e", last_modified_s=0.0, max_age_s=max_age_s,
                      stale_while_revalidate_s=swr_s, stale_if_error_s=sie_s)
    return CachedPart(meta=meta, base_bytes=0, body=b"abc", fetched_at_s=NOW_S - age_s)


NOTHING = None  # looked in the tiers, found nothing
# name -> (negative status, sliced, looked in tiers, part, cache-only, ranged media, plan)
ROWS: dict[str, tuple[int | None, bool, bool, CachedPart | None, bool, bool, LookupPlan]] = {
    "a remembered 4xx wins over everything": (410, True, True, _part(0), False, True, LookupPlan.NEGATIVE),
    "a remembered 4xx to a peer is 'not here'": (403, False, False, None, True, False, LookupPlan.NEGATIVE_TO_PEER),
    "a sliced object: slice by slice": (None, True, False, None, False, True, LookupPlan.SLICED),
    "a sliced object to a peer: slice by slice too": (None, True, False, None, True, False, LookupPlan.SLICED),
    "neither: the tiers are needed": (None, False, False, None, False, False, LookupPlan.LOOK_IN_TIERS),
    "neither, a peer: the tiers are needed": (None, False, False, None, True, True, LookupPlan.LOOK_IN_TIERS),
    "fresh": (None, False, True, _part(1.99), False, False, LookupPlan.SERVE_FRESH),
    "fresh, a peer": (None, False, True, _part(0), True, False, LookupPlan.SERVE_FRESH),
    "stale, a peer: served as it is": (None, False, True, _part(5), True, False, LookupPlan.SERVE_TO_PEER),
    "expired, a peer: served as it is": (None, False, True, _part(500), True, True, LookupPlan.SERVE_TO_PEER),
    "within the upstream's swr": (None, False, True, _part(2.0, swr_s=3.0), False, False,
                                  LookupPlan.SERVE_STALE_AND_REVALIDATE),
    "past the upstream's swr, within sie": (None, False, True, _part(5.0, swr_s=3.0), False, False,
                                            LookupPlan.REVALIDATE_WITHIN_DEADLINE),
    "no swr anywhere: stale is revalidated first": (None, False, True, _part(2.0), False, False,
                                                    LookupPlan.REVALIDATE_WITHIN_DEADLINE),
    "within the edge's stale-if-error": (None, False, True, _part(11.99), False, True,
                                         LookupPlan.REVALIDATE_WITHIN_DEADLINE),
    "past the edge's stale-if-error": (None, False, True, _part(12.0), False, False,
                                       LookupPlan.REVALIDATE_THEN_SERVE),
    "must-revalidate (windows 0): never stale": (None, False, True, _part(2.0, swr_s=0.0, sie_s=0.0), False, False,
                                                 LookupPlan.REVALIDATE_THEN_SERVE),
    "the upstream's sie beats the edge's": (None, False, True, _part(30.0, sie_s=60.0), False, False,
                                            LookupPlan.REVALIDATE_WITHIN_DEADLINE),
    "not cached, a peer: 404, no fill": (None, False, True, NOTHING, True, True, LookupPlan.NOT_CACHED_CACHE_ONLY),
    "not cached": (None, False, True, NOTHING, False, False, LookupPlan.FILL),
    "not cached, a range of a media object: probe": (None, False, True, NOTHING, False, True, LookupPlan.FILL_PROBE),
}


@pytest.mark.parametrize("name", list(ROWS))
def test_lookup_plan_table(name: str) -> None:
    negative, sliced, looked, part, cache_only, ranged, want = ROWS[name]
    got = plan_lookup(negative_status=negative, sliced=sliced, looked_in_tiers=looked, part=part, now_s=NOW_S,
                      defaults=EDGE_DEFAULTS, cache_only=cache_only, ranged_media=ranged)
    assert got is want, name


def test_every_plan_has_a_row() -> None:
    assert {row[-1] for row in ROWS.values()} == set(LookupPlan)


def test_the_clock_moves_a_part_through_the_plans() -> None:
    part = _part(0.0, max_age_s=2.0, swr_s=3.0, sie_s=10.0)
    defaults = StaleDefaults(stale_if_error_s=0.0, stale_while_revalidate_s=0.0)
    seen = [plan_lookup(negative_status=None, sliced=False, looked_in_tiers=True, part=part, now_s=NOW_S + dt,
                        defaults=defaults, cache_only=False, ranged_media=False) for dt in (0, 2, 4.9, 5, 11.9, 12)]
    assert seen == [LookupPlan.SERVE_FRESH, LookupPlan.SERVE_STALE_AND_REVALIDATE,
                    LookupPlan.SERVE_STALE_AND_REVALIDATE, LookupPlan.REVALIDATE_WITHIN_DEADLINE,
                    LookupPlan.REVALIDATE_WITHIN_DEADLINE, LookupPlan.REVALIDATE_THEN_SERVE]


def test_enum_values_are_the_labels_dashboards_read() -> None:
    assert {c.value for c in CacheResult} == set(CACHE_RESULTS)
    assert {t.value for t in TierName} == set(TIERS)
    assert f"cache={CacheResult.RAM_HIT} tier={TierName.RAM}" == "cache=ram_hit tier=ram"  # the access log
    assert TierName.RAM.hit is CacheResult.RAM_HIT and TierName.DISK.hit is CacheResult.DISK_HIT
    assert [r for r in CacheResult if r.rank] == [CacheResult.RAM_HIT, CacheResult.DISK_HIT, CacheResult.COALESCED,
                                                 CacheResult.MISS]  # a sliced answer reports its worst part
    assert Found(TierName.FILL, started=True).result is CacheResult.MISS
    assert Found(TierName.FILL).result is CacheResult.COALESCED


async def test_tier_chain_behind_one_protocol(tmp_path) -> None:
    """The chain is built once from config: RAM, disk, then the fill tier. A disk hit is offered to RAM; a purge
    goes through every tier's ``purge``, the fill tier's included (a fill in flight stores nothing)."""
    silent = socket.socket()  # an origin that takes the connection and never answers: the fill stays in flight
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    cfg = EdgeConfig(name="e1", cache_dir=tmp_path, origin=f"http://127.0.0.1:{silent.getsockname()[1]}",
                     ram_mb=1, disk_mb=1, ram_policy="lru")
    edge = Edge(cfg, clock=lambda: NOW_S)
    await edge.start()
    try:
        assert [t.name for t in edge.tiers] == [TierName.RAM, TierName.DISK, TierName.FILL]
        assert list(edge.stores) == [edge.ram, edge.disk] and edge.tiers[-1] is edge.fills
        part = _part(0.0, max_age_s=60.0)
        key = part.meta.key
        assert edge.disk.admit(key, part)
        await edge.disk.flush()
        assert await edge.cached(key) is not None and key in edge.ram  # found on disk, offered to RAM
        assert (await edge.cached(key)).tier is TierName.RAM  # type: ignore[union-attr]
        assert edge.holds(key) and await edge.fills.lookup(key) is None and key not in edge.fills
        fill, started = edge.fills.get_or_start(_spec("t1/v/seg2.m4s"))
        assert started and (await edge.fills.lookup("t1/v/seg2.m4s")).fill is fill  # type: ignore[union-attr]
        assert await edge.purge(prefix="t1/") == 2  # RAM's part and disk's part; the fill holds none
        assert fill.purged and not edge.holds(key) and await edge.cached(key) is None
    finally:
        await edge.close()
        silent.close()


def _spec(key: str):  # the fill tier's own request type
    from edge.inflight import FillSpec
    return FillSpec(object_key=key, cache_key=key)
