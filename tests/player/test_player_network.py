"""Shaping accuracy against a real loopback aiohttp server, and the pure schedule/pathway logic."""
from __future__ import annotations

import asyncio

import pytest
from aiohttp import web

from client.errors import ProfileError
from client.fetch import Fetcher, PathwaySet
from client.network import PROFILES, BandwidthSchedule, Clock, ShapedLink, parse_network

BLOB = bytes(range(256)) * 4096  # 1 MiB


def blob_app() -> web.Application:
    async def handler(request: web.Request) -> web.Response:
        n = int(request.match_info["n"])
        return web.Response(body=BLOB[:n], content_type="application/octet-stream")

    app = web.Application()
    app.router.add_get("/blob/{n}", handler)
    return app


class StepClock(Clock):
    """A media clock that moves only when something sleeps on it, by what was asked (the injected
    ``real`` time source is a counter): real I/O takes no media time, so the shaped link's
    timing is exact and independent of how busy the machine is. Concurrent sleepers each move it
    from where it stands, so the time a shared link hands out adds up as it would in real time."""

    def __init__(self, speed: float = 1.0) -> None:
        self.steps_real_s = 0.0
        super().__init__(speed, real=lambda: self.steps_real_s)

    async def sleep(self, media_s: float) -> None:
        self.steps_real_s += self.real_s(media_s)
        await asyncio.sleep(0)


@pytest.mark.parametrize("speed", [1.0, 8.0])
async def test_a_1_mbps_profile_delivers_1_mbps(serve, http, speed):
    base = await serve(blob_app())
    link = ShapedLink(BandwidthSchedule.constant(1_000_000, 0.05), StepClock(speed))
    size = 150_000
    result = await Fetcher(http, link).get(f"{base}/blob/{size}", max_bytes=10**6)
    assert result.size_bytes == size
    assert result.ttfb_s == pytest.approx(0.05)  # the first byte comes after one round trip
    rate = 8 * size / (result.duration_s - result.ttfb_s)
    assert rate == pytest.approx(1e6, rel=0.02), rate  # same media time at any speed


async def test_the_3g_profile_is_1_mbps_with_150_ms_rtt(serve, http):
    base = await serve(blob_app())
    link = ShapedLink(parse_network("3g"), StepClock(1.0))
    result = await Fetcher(http, link).get(f"{base}/blob/250000", max_bytes=10**6)
    assert 8 * 250_000 / (result.duration_s - result.ttfb_s) == pytest.approx(1e6, rel=0.02)
    assert result.ttfb_s == pytest.approx(0.15)


async def test_concurrent_downloads_share_the_link(serve, http):
    base = await serve(blob_app())
    clock = StepClock(2.0)
    link = ShapedLink(BandwidthSchedule.constant(2_000_000, 0.0), clock)
    fetcher = Fetcher(http, link)
    t0 = clock.now_s()
    results = await asyncio.gather(*(fetcher.get(f"{base}/blob/100000", max_bytes=10**6) for _ in range(3)))
    # 300 kB at 2 Mbps = 1.2 s of media time in all, whatever the interleaving
    assert clock.now_s() - t0 == pytest.approx(1.2, rel=0.02)
    assert sum(r.size_bytes for r in results) == 300_000
    # each alone would take 0.4 s: sharing, at least one of them ends only when all the bytes are through
    assert max(r.end_s for r in results) - t0 == pytest.approx(1.2, rel=0.02)


async def test_a_trace_changes_the_rate_over_time(serve, http):
    base = await serve(blob_app())
    # 1 s at 4 Mbps, then 8 Mbps... loops
    link = ShapedLink(BandwidthSchedule((1.0, 1.0), (4e6, 8e6), (0.0, 0.0)), StepClock(2.0))
    result = await Fetcher(http, link).get(f"{base}/blob/1000000", max_bytes=10**7)
    # 0.5 MB in the first second, then 1 MB/s: 1 MB ends at 1.5 s
    assert result.duration_s == pytest.approx(1.5, rel=0.02), result.duration_s


def test_the_media_clock_runs_speed_times_real_time():
    real = [100.0]
    clock = Clock(8.0, real=lambda: real[0])
    real[0] += 0.25
    assert clock.now_s() == pytest.approx(2.0)
    assert clock.real_s(2.0) == pytest.approx(0.25) and clock.real_s(-1.0) == 0.0


@pytest.mark.parametrize("speed, wakes_first", [(8.0, "media"), (1.0, "real")])
async def test_a_media_sleep_takes_media_s_over_speed_of_real_time(speed, wakes_first):
    """0.8 media seconds against a 0.5 s real timer armed at the same moment: at speed 8 the media
    sleep (0.1 s real) ends first, at speed 1 (0.8 s real) last; the loop fires timers in deadline
    order however late it runs, so this is order, not a time band."""
    clock = Clock(speed)
    order: list[str] = []
    loop = asyncio.get_running_loop()
    real_done = loop.create_future()
    # both timers armed in one synchronous step (no await between them)
    loop.call_later(0.5, lambda: (order.append("real"), real_done.set_result(None)))
    await clock.sleep(0.8)
    order.append("media")
    await real_done
    assert order[0] == wakes_first, order


async def test_on_the_real_clock_bytes_never_arrive_faster_than_the_link(serve, http):
    """The pacing really holds the reader in real time (one-sided: a busy machine only adds)."""
    base = await serve(blob_app())
    link = ShapedLink(BandwidthSchedule.constant(1_000_000, 0.05), Clock(8.0))
    result = await Fetcher(http, link).get(f"{base}/blob/150000", max_bytes=10**6)
    assert result.ttfb_s >= 0.05
    assert result.duration_s >= 0.05 + 1.2 * 0.98  # a last chunk's debt under the sleep floor is not slept


def test_schedule_transmit_end_integrates_and_loops():
    s = BandwidthSchedule((1.0, 1.0, 2.0), (8e6, 0.0, 4e6), (0.1, 0.2, 0.3))
    assert s.transmit_end(0.0, 1e6) == pytest.approx(1.0)
    assert s.transmit_end(0.5, 1e6) == pytest.approx(3.0)  # 0.5 MB, 1 s outage, 0.5 MB at 0.5 MB/s
    assert s.transmit_end(0.0, 2e6) == pytest.approx(4.0)  # one whole loop carries 2 MB
    assert s.transmit_end(0.0, 2.5e6) == pytest.approx(4.5)  # and it loops
    assert s.transmit_end(0.0, 2e6 * 100 + 1e6) == pytest.approx(401.0)
    assert s.latency_at(1.5) == 0.2 and s.latency_at(4.0 + 3.0) == 0.3
    assert s.mean_rate_bps == pytest.approx(4e6)


def test_network_specs():
    assert set(PROFILES) == {"3g", "4g", "wifi", "cable", "fiber"}
    assert parse_network("none") is None
    with pytest.raises(ProfileError, match="unknown network"):
        parse_network("5g")
    with pytest.raises(ProfileError, match="no such trace file"):
        parse_network("trace:/nonexistent/trace.log")
    with pytest.raises(ProfileError):
        BandwidthSchedule((1.0,), (0.0,), (0.0,))


def test_pensieve_and_sabre_trace_files(tmp_path):
    pensieve = tmp_path / "trace.log"
    pensieve.write_text("0\t1.0\n1\t2.0\n2\t4.0\n")
    s = parse_network(f"trace:{pensieve}")
    assert s.rate_at(0.5) == pytest.approx(2e6) and s.rate_at(1.5) == pytest.approx(4e6)
    assert s.latency_at(0.0) == pytest.approx(0.08)
    sabre = tmp_path / "trace.json"
    sabre.write_text('[{"duration_ms": 1000, "bandwidth_kbps": 500, "latency_ms": 70}]')
    s = parse_network(f"trace:{sabre}")
    assert s.rate_at(0.0) == pytest.approx(5e5) and s.latency_at(0.0) == pytest.approx(0.07)


def test_pathway_set_failover_and_steering():
    ps = PathwaySet(["a", "b", "c"], penalty_s=300)
    assert ps.choose(0) == "a"
    ps.penalize("a", 10)
    assert ps.choose(11) == "b"
    assert ps.choose(12, exclude=["b"]) == "c"
    ps.penalize("b", 12)
    ps.penalize("c", 13)
    assert ps.choose(14) == "a"  # all penalized: the one whose penalty ends first
    assert ps.choose(14, exclude=["a", "b", "c"]) is None
    assert ps.choose(400) == "a"  # penalties expire
    # steering moves the session to the first healthy pathway it names
    ps2 = PathwaySet(["a", "b", "c"])
    assert ps2.apply_priority(["c", "a", "zzz"], 0) == "c"
    assert ps2.order == ("c", "a", "b")
    ps2.penalize("c", 1)
    assert ps2.choose(2) == "a"
    assert ps2.apply_priority(["c", "a"], 3) is None  # c is still penalized: stay on a
    assert ps2.apply_priority(["unknown"], 3) is None and ps2.order == ("c", "a", "b")


def test_a_trace_offset_starts_the_link_inside_the_trace():
    from client.network import make_link

    schedule = BandwidthSchedule((10.0, 10.0), (1e6, 5e6), (0.0, 0.0))
    clock = Clock(1.0)
    link = make_link(schedule, clock, offset_s=clock.now_s() - 12.0)  # what PlayerSession does for 12 s
    assert link.schedule.rate_at(link._t(clock.now_s())) == 5e6
