"""Pure cores: the registry's rotation decisions and the ranking of pathways, no sockets."""
from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.steering.config import EdgeEntry, RegionEntry, SigningKeys, SteeringInputs
from edge.steering.ranking import rank_pathways, region_order
from edge.steering.registry import HeartbeatError, Registry, UnknownEdge, rotation

REGIONS = ("us-east-1", "us-west-2", "eu-west-1")
PREFERENCE = {"us-east-1": ("us-west-2", "eu-west-1"), "us-west-2": ("us-east-1", "eu-west-1"),
              "eu-west-1": ("us-east-1", "us-west-2")}


def make_inputs(edges_per_region: int = 2, capacity: dict[str, float] | None = None) -> SteeringInputs:
    edges = []
    port = 9000
    for region in REGIONS:
        for i in range(edges_per_region):
            name = f"edge-{region}{chr(ord('a') + i)}"
            port += 1
            edges.append(EdgeEntry(name=name, region=region, url=f"http://127.0.0.1:{port}",
                                   capacity_mbps=(capacity or {}).get(name, 1000.0)))
    regions = tuple(RegionEntry(name=r, origin_urls=("http://127.0.0.1:1",), preference=PREFERENCE[r])
                    for r in REGIONS)
    return SteeringInputs(regions=regions, edges=tuple(edges), keys=SigningKeys(active="k1", secrets={"k1": "s"}))


def all_up(registry: Registry, now_s: float) -> None:
    for name in registry.edges:
        registry.record_heartbeat({"name": name, "status": "ok"}, now_s)


@pytest.mark.parametrize("evacuated,last,now_s,expected", [
    (True, ("ok", 9.0), 10.0, (False, "region evacuated")),
    (False, None, 10.0, (False, "no heartbeat yet")),
    (False, ("ok", 9.0), 10.0, (True, "in rotation")),
    (False, ("ok", 7.0), 10.0, (True, "in rotation")),          # exactly the timeout: still in
    (False, ("ok", 6.9), 10.0, (False, "missed heartbeats")),
    (False, ("draining", 9.5), 10.0, (False, "draining")),
    (False, ("unhealthy", 9.5), 10.0, (False, "unhealthy")),
])
def test_rotation_table(evacuated, last, now_s, expected):
    from edge.steering.registry import Heartbeat
    entry = EdgeEntry(name="e1", region="r", url="http://x")
    beat = None if last is None else Heartbeat(name="e1", status=last[0], received_s=last[1])
    assert rotation(entry, beat, evacuated=evacuated, now_s=now_s, heartbeat_timeout_s=3.0) == expected


def test_missed_heartbeats_leave_and_return():
    reg = Registry(make_inputs(), heartbeat_timeout_s=3.0)
    all_up(reg, 100.0)
    assert len(reg.snapshot(100.0).in_rotation()) == 6
    for name in reg.edges:
        if name != "edge-us-east-1a":
            reg.record_heartbeat({"name": name, "status": "ok"}, 102.5)
    snap = reg.snapshot(103.5)
    out = {e.name: e.reason for e in snap.edges if not e.in_rotation}
    assert out == {"edge-us-east-1a": "missed heartbeats"}
    reg.record_heartbeat({"name": "edge-us-east-1a", "status": "ok"}, 104.0)
    assert len(reg.snapshot(104.0).in_rotation()) == 6


def test_cached_snapshot_expires_when_a_heartbeat_goes_stale():
    reg = Registry(make_inputs(1), heartbeat_timeout_s=3.0)
    all_up(reg, 10.0)
    first = reg.snapshot(10.0)
    assert reg.snapshot(12.9) is first
    assert len(reg.snapshot(13.01).in_rotation()) == 0


def test_heartbeat_errors_and_dynamic_edges():
    reg = Registry(make_inputs(1), heartbeat_timeout_s=3.0)
    with pytest.raises(HeartbeatError):
        reg.record_heartbeat({"name": "edge-us-east-1a", "status": "sleepy"}, 1.0)
    with pytest.raises(HeartbeatError):
        reg.record_heartbeat({"name": "edge-us-east-1a", "status": "ok", "region": "eu-west-1"}, 1.0)
    with pytest.raises(UnknownEdge):
        reg.record_heartbeat({"name": "edge-new", "status": "ok"}, 1.0)
    with pytest.raises(UnknownEdge):
        reg.record_heartbeat({"name": "edge-new", "status": "ok", "region": "mars-1", "url": "http://x"}, 1.0)
    entry = reg.record_heartbeat({"name": "edge-new", "status": "ok", "region": "eu-west-1",
                                  "url": "http://127.0.0.1:9999/", "load": {"egress_bps": 5e8}}, 1.0)
    assert entry.url == "http://127.0.0.1:9999"
    view = {e.name: e for e in reg.snapshot(1.0).edges}["edge-new"]
    assert view.in_rotation and view.load_fraction == pytest.approx(0.5)


def test_region_order_skips_evacuated_and_unknown():
    assert region_order("us-east-1", PREFERENCE, set()) == ("us-east-1", "us-west-2", "eu-west-1")
    assert region_order("us-east-1", PREFERENCE, {"us-east-1"}) == ("us-west-2", "eu-west-1")
    assert region_order("eu-west-1", PREFERENCE, {"us-east-1"}) == ("eu-west-1", "us-west-2")


def rank(reg: Registry, now_s: float, region: str, session: str, **kw):
    return rank_pathways(reg.snapshot(now_s), client_region=region, session=session,
                         preference=PREFERENCE, **kw)


def test_client_region_first_then_preference():
    reg = Registry(make_inputs(), heartbeat_timeout_s=3.0)
    all_up(reg, 0.0)
    ranked = rank(reg, 0.0, "eu-west-1", "s1")
    assert [p.region for p in ranked] == ["eu-west-1"] * 2 + ["us-east-1"] * 2 + ["us-west-2"] * 2
    assert rank(reg, 0.0, "eu-west-1", "s1") == ranked  # stable for a session


def test_sessions_spread_by_capacity():
    caps = {"edge-us-east-1a": 3000.0, "edge-us-east-1b": 1000.0}
    reg = Registry(make_inputs(capacity=caps), heartbeat_timeout_s=3.0)
    all_up(reg, 0.0)
    firsts = Counter(rank(reg, 0.0, "us-east-1", f"session-{i}")[0].id for i in range(4000))
    share = firsts["edge-us-east-1a"] / 4000
    assert 0.70 < share < 0.80, firsts  # 3:1 capacity -> about 75 %


def test_dead_edge_moves_only_its_sessions():
    reg = Registry(make_inputs(edges_per_region=4), heartbeat_timeout_s=3.0)
    all_up(reg, 0.0)
    before = {f"s{i}": rank(reg, 0.0, "us-west-2", f"s{i}")[0].id for i in range(500)}
    for name in reg.edges:
        if name != "edge-us-west-2b":
            reg.record_heartbeat({"name": name, "status": "ok"}, 2.0)
    after = {s: rank(reg, 4.0, "us-west-2", s)[0].id for s in before}
    moved = {s for s in before if before[s] != after[s]}
    assert moved == {s for s in before if before[s] == "edge-us-west-2b"}
    assert "edge-us-west-2b" not in {p.id for s in before for p in rank(reg, 4.0, "us-west-2", s)}


def test_evacuated_region_is_never_named():
    reg = Registry(make_inputs(), heartbeat_timeout_s=3.0)
    all_up(reg, 0.0)
    reg.evacuate("us-east-1")
    ranked = rank(reg, 0.0, "us-east-1", "s1")
    assert ranked and all(p.region != "us-east-1" for p in ranked)
    assert ranked[0].region == "us-west-2"
    reg.restore("us-east-1")
    assert rank(reg, 0.0, "us-east-1", "s1")[0].region == "us-east-1"


def test_overloaded_and_no_headroom_edges_go_last_in_their_region():
    reg = Registry(make_inputs(), heartbeat_timeout_s=3.0)
    all_up(reg, 0.0)
    reg.record_heartbeat({"name": "edge-us-east-1a", "status": "ok", "load_fraction": 0.95}, 0.0)
    for i in range(50):
        ranked = rank(reg, 0.0, "us-east-1", f"s{i}")
        assert ranked[0].id == "edge-us-east-1b" and ranked[1].demoted == "overloaded"
    reg.record_heartbeat({"name": "edge-us-east-1a", "status": "ok", "load_fraction": 0.5}, 0.0)
    # 1000 Mb/s at half load: 500 Mb/s spare; a client measuring 600 Mb/s does not fit
    ranked = rank(reg, 0.0, "us-east-1", "s1", throughput_bps=6e8)
    assert ranked[0].id == "edge-us-east-1b" and ranked[1].demoted == "no headroom"


def test_current_pathway_sticks_while_it_is_in_the_first_region():
    reg = Registry(make_inputs(), heartbeat_timeout_s=3.0)
    all_up(reg, 0.0)
    ranked = rank(reg, 0.0, "us-east-1", "s1")
    second = ranked[1].id
    assert rank(reg, 0.0, "us-east-1", "s1", current=second)[0].id == second
    foreign = [p.id for p in ranked if p.region == "eu-west-1"][0]
    assert rank(reg, 0.0, "us-east-1", "s1", current=foreign)[0].region == "us-east-1"


@settings(max_examples=200, deadline=None)
@given(session=st.text(min_size=0, max_size=40), region=st.sampled_from(REGIONS),
       alive=st.sets(st.sampled_from([f"edge-{r}{c}" for r in REGIONS for c in "ab"])),
       evacuated=st.sets(st.sampled_from(REGIONS)))
def test_ranking_names_exactly_the_edges_in_rotation(session, region, alive, evacuated):
    reg = Registry(make_inputs(), heartbeat_timeout_s=3.0)
    for name in alive:
        reg.record_heartbeat({"name": name, "status": "ok"}, 0.0)
    for r in evacuated:
        reg.evacuate(r)
    ranked = rank(reg, 1.0, region, session)
    expected = {n for n in alive if reg.edges[n].region not in evacuated}
    assert {p.id for p in ranked} == expected
    assert len({p.id for p in ranked}) == len(ranked)
