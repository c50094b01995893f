"""The live targets, measured against loopback edges (`vodstack up`), in media-clock time at speed 1:
an iPhone on 3G starts in < 2 s, a TV on fibre in < 0.5 s (resolve through steering, steered
playlist, media playlists, init and first segments included). The edge-kill target (no stall
with >= 4 s buffered) is `test_player_failover.py::test_killing_the_serving_edge...`.

Run with ``-s`` to see the figures."""
from __future__ import annotations

import asyncio

import pytest

from client.context import SessionConfig
from client.devices import get_device
from client.network import parse_network
from client.session import PlayerSession

pytestmark = pytest.mark.slow

TARGETS = {("iphone", "3g"): 2.0, ("tv-4k", "fiber"): 0.5}


@pytest.mark.parametrize("device, network", list(TARGETS))
async def test_startup_targets_against_loopback_edges(http, player_stack, device, network):
    player_stack.heal()
    figures = []
    for attempt in ("cold", "warm", "warm"):
        session = PlayerSession(http, steering_url=player_stack.steering, title="demo", region="us-east-1",
                                device=get_device(device), network=parse_network(network), speed=1.0,
                                config=SessionConfig(duration_s=8.0))
        report = await asyncio.wait_for(session.run(), 60)
        assert report.ok, report.error
        figures.append((attempt, report.startup_s, report.segments[0].label, report.segments[0].pathway))
    print(f"\nstart-up {device} on {network}: " + ", ".join(f"{a} {s:.3f} s ({label} via {p})"
                                                        for a, s, label, p in figures))
    # the median of a cold and two warm starts (one scheduling hiccup on a shared machine is not a verdict)
    assert sorted(s for _, s, _, _ in figures)[1] < TARGETS[(device, network)], figures
