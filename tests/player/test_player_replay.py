"""Live == simulated: a live session's ABR inputs, replayed through the objects the simulator uses
and through the simulator itself (`client.sim.session.simulate`), give the same decisions -- for a
session that plays the HLS playlists and for one that plays the DASH MPD of the same title."""
from __future__ import annotations

import asyncio

import pytest

from client.abr import ALGORITHMS, AbrSnapshot, create
from client.context import SessionConfig
from client.devices import get_device
from client.network import BandwidthSchedule
from client.session import PlayerSession
from client.sim.manifests import Video
from client.sim.network import SimLink
from client.sim.session import simulate
from client.sim.setups import SimSetup
from client.traces import Trace

NAMES = sorted(n for n in ALGORITHMS if n != "default") + ["default"]


class ReplayLink(SimLink):
    """A simulator link that replays the live session's downloads: each request takes the latency
    and transfer time the live player measured for that segment."""

    def __init__(self, samples) -> None:
        super().__init__(Trace.constant(1e6, name="live-replay"))
        self.downloads = [s for s in samples if s.complete]
        self.current = None
        self.start = 0.0

    def latency_at(self, t: float, default_s: float) -> float:
        self.current = self.downloads.pop(0)
        return self.current.ttfb_s

    def transfer_end(self, start_s: float, size_bytes: float) -> float:
        self.start = start_s
        return start_s + (self.current.duration_s - self.current.ttfb_s)

    def bytes_at(self, t: float) -> float:
        return max(t - self.start, 0.0) * self.current.transfer_bps / 8


class SnapshotRecorder:
    """Hands every call to the ABR object and keeps the snapshots the simulator built."""

    def __init__(self, abr) -> None:
        self.abr = abr
        self.snapshots: list[AbrSnapshot] = []

    def decide(self, snapshot: AbrSnapshot):
        self.snapshots.append(snapshot)
        return self.abr.decide(snapshot)

    def __getattr__(self, name: str):
        return getattr(self.abr, name)


@pytest.mark.parametrize("manifest", ["master.m3u8", "manifest.mpd"])
@pytest.mark.parametrize("name", NAMES)
async def test_live_decisions_replay_identically(http, origin_url, name, manifest):
    max_buffer = 16.0
    session = PlayerSession(http, master_url=f"{origin_url}/demo/{manifest}", device=get_device("laptop-chrome"),
                            network=BandwidthSchedule.constant(3e6, 0.04, name="3mbps"), speed=8.0,
                            config=SessionConfig(abr=name, duration_s=40.0, max_buffer_s=max_buffer,
                                                 record_abr=True, segment_sizes=True))
    report = await asyncio.wait_for(session.run(), 120)
    assert report.ok, report.error
    assert session.ctx.manifest_format == ("dash" if manifest.endswith(".mpd") else "hls")
    assert session.segment_sizes is not None  # title.json gave every rung's sizes

    # 1. the same objects the simulator creates (client.abr.create), fed the recorded snapshots
    #    and abandonment checks in order, make exactly the same decisions, reasons included
    fresh = create(name)
    decisions = []
    for recorded, decision in session.abr_log:
        if isinstance(recorded, AbrSnapshot):
            again = fresh.decide(recorded)
            decisions.append(again.index)
        else:
            again = fresh.abandon(recorded)
        assert again == decision
    assert decisions[:len(report.segments)] == [d.index for s, d in session.abr_log
                                                if isinstance(s, AbrSnapshot)][:len(report.segments)]

    # 2. the simulator, playing the same video (sizes from title.json) over the live downloads,
    #    takes the same decisions up to the first abandoned download (its abandonment checks run
    #    on its own schedule, so what follows an abandonment is not comparable)
    video = Video(name="demo", ladder_bps=session.selection.ladder_bps, segment_duration_s=4.0,
                  sizes_bytes=session.segment_sizes)
    setup = SimSetup(name="live", max_buffer_s=max_buffer, latency_s=None, latency_idles_link=True,
                     wait="before_request", first_rung=None, abandonment=False)
    recorder = SnapshotRecorder(create(name))
    result = simulate(video, ReplayLink(report.samples), recorder, setup)
    live = [s.rung for s in report.segments]
    first_abandoned = next((i for i, s in enumerate(report.segments) if s.abandoned), len(live))
    sim = [c.rung for c in result.chunks]
    # The live buffer follows the media clock, which drifts a little from the simulator's ideal
    # timing (more so on a busy machine). Where the two sessions hand the ABR the same buffer
    # (within 1 ms) they must decide alike; a decision may differ only where the buffers differ
    # (jitter can carry a buffer across a decision threshold), and from there on their histories
    # differ, so the comparison stops. The first two decisions must agree.
    live_buffer = [snap.buffer_s for snap, _ in session.abr_log if isinstance(snap, AbrSnapshot)]
    sim_buffer = [snap.buffer_s for snap in recorder.snapshots]
    assert first_abandoned >= 2 and sim[:2] == live[:2], (sim, live)
    for i in range(first_abandoned):
        if sim[i] != live[i]:
            assert abs(sim_buffer[i] - live_buffer[i]) > 1e-3, (
                f"segment {i}: same buffer {live_buffer[i]:.3f} s, live chose {live[i]}, simulator {sim[i]}")
            break
