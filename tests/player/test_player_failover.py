"""Failover with real edges killed, steering followed: `vodstack up` runs 2 regions, 3 edges, 2
origins and the steering service; the player plays through steering and we kill what it uses."""
from __future__ import annotations

import asyncio
import json
import urllib.request

import pytest

from client.context import SessionConfig
from client.devices import get_device
from client.network import parse_network
from client.session import PlayerSession

pytestmark = pytest.mark.slow


@pytest.fixture
def stack(player_stack):
    player_stack.heal()
    yield player_stack
    player_stack.heal()


def session_for(http, stack, **config) -> PlayerSession:
    cfg = dict(duration_s=48.0, max_buffer_s=12.0)
    cfg.update(config)
    return PlayerSession(http, steering_url=stack.steering, title="demo", region="us-east-1",
                         device=get_device("tv-4k" if cfg.get("format") == "dash" else "iphone"), network=parse_network("4g"), speed=4.0,
                         config=SessionConfig(**cfg))


async def wait_until(predicate, timeout_s=60.0):
    async with asyncio.timeout(timeout_s):
        while not predicate():
            await asyncio.sleep(0.02)


def buffered(session: PlayerSession) -> float:
    st = session.state
    return st.level(session.clock.now_s()) if st and st.playing else 0.0


async def test_killing_the_serving_edge_with_4s_buffered_causes_no_stall(http, stack):
    session = session_for(http, stack)
    task = asyncio.create_task(session.run())
    await wait_until(lambda: len(session.segments) >= 3 and buffered(session) >= 4.0)
    victim = session.pathways.current
    at_kill = buffered(session)
    await asyncio.to_thread(stack.kill, victim)
    report = await asyncio.wait_for(task, 120)
    assert report.ok, report.error
    assert report.stall_count == 0, report.stalls
    assert at_kill >= 4.0
    assert [f.from_pathway for f in report.failovers] == [victim]
    failover = report.failovers[0]
    assert failover.to_pathway != victim and failover.gap_s < 2.0
    assert report.segments[-1].pathway == failover.to_pathway
    assert "cannot connect" in failover.error or "disconnected" in failover.error or "cut short" in failover.error


async def test_losing_a_whole_region_moves_to_the_next_region(http, stack):
    session = session_for(http, stack)
    task = asyncio.create_task(session.run())
    await wait_until(lambda: len(session.segments) >= 3 and buffered(session) >= 4.0)
    for edge in ("edge-us-east-1a", "edge-us-east-1b"):
        await asyncio.to_thread(stack.kill, edge)
    report = await asyncio.wait_for(task, 120)
    assert report.ok, report.error
    assert report.stall_count == 0
    assert report.segments[-1].pathway == "edge-eu-west-1a"


async def test_the_session_fails_only_when_every_pathway_failed(http, stack):
    session = session_for(http, stack, retry_rounds=1)
    task = asyncio.create_task(session.run())
    await wait_until(lambda: len(session.segments) >= 2)
    for edge in ("edge-us-east-1a", "edge-us-east-1b", "edge-eu-west-1a"):
        await asyncio.to_thread(stack.kill, edge)
    report = await asyncio.wait_for(task, 120)
    assert not report.ok and report.error.startswith("every pathway failed")
    for edge in ("edge-us-east-1a", "edge-us-east-1b", "edge-eu-west-1a"):
        assert edge in report.error


async def test_evacuating_a_region_is_followed_within_one_steering_ttl(http, stack):
    session = session_for(http, stack, duration_s=60.0, max_buffer_s=8.0)
    task = asyncio.create_task(session.run())
    await wait_until(lambda: len(session.segments) >= 2 and session.steering_reloads >= 1)
    assert session.pathways.current.startswith("edge-us-east-1")
    req = urllib.request.Request(f"{stack.steering}/regions/us-east-1/evacuate", method="POST",
                                 headers={"X-Admin-Key": "adm"})
    await asyncio.to_thread(lambda: urllib.request.urlopen(req, timeout=10).read())
    evacuated_at = session.clock.now_s()
    await wait_until(lambda: session.pathways.current == "edge-eu-west-1a", timeout_s=30)
    moved_after = session.clock.now_s() - evacuated_at
    report = await asyncio.wait_for(task, 120)
    assert report.ok, report.error
    assert moved_after <= 2.0 * 2 + 1.0  # one TTL (2 s), plus a request, on the media clock
    assert report.failovers == [] and report.stall_count == 0  # steered, not failed over
    assert report.segments[-1].pathway == "edge-eu-west-1a"
    assert report.steering_reloads >= 2


async def test_a_dash_session_through_steering_fails_over_with_no_stall(http, stack):
    """The same kill for a DASH session: the steered MPD's service locations are the pathways, its
    ContentSteering URI the steering loop's, the reloads carry ``_DASH_pathway``."""
    session = session_for(http, stack, format="dash")
    task = asyncio.create_task(session.run())
    await wait_until(lambda: len(session.segments) >= 3 and buffered(session) >= 4.0)
    assert session.ctx.manifest_format == "dash"
    assert all("#dash-" not in s.label for s in session.segments)
    victim = session.pathways.current
    await asyncio.to_thread(stack.kill, victim)
    report = await asyncio.wait_for(task, 120)
    assert report.ok, report.error
    assert report.stall_count == 0, report.stalls
    assert [f.from_pathway for f in report.failovers] == [victim]
    assert report.segments[-1].pathway == report.failovers[0].to_pathway != victim
