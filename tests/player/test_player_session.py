"""The player session against a real `vodstack origin` process serving a synthetic title."""
from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest

from client.context import SessionConfig
from client.devices import get_device
from client.network import BandwidthSchedule, parse_network
from client.playlists import PlaylistCache
from client.playback import PlaybackState
from client.session import PlayerSession
from client.tracks import TrackPreferences


def test_playback_state_start_stall_resume_end():
    st = PlaybackState(content_s=12.0, resume_s=2.0)
    st.add(4.0, now_s=1.0)  # first segment in: playback starts
    assert st.started_at == 1.0 and st.state == "playing"
    assert st.level(3.0) == pytest.approx(2.0)
    assert st.level(6.0) == 0.0 and st.state == "stalled" and st.stall_at == pytest.approx(5.0)
    st.add(5.0, now_s=7.0)  # 1 s buffered: under the 2 s resume threshold
    assert st.state == "stalled"
    st.add(8.0, now_s=8.0)
    assert st.state == "playing" and st.stalls == [(5.0, 3.0)]
    assert st.stalled_s(8.0) == pytest.approx(3.0)
    st.add(12.0, now_s=9.0)
    assert st.level(20.0) == 0.0 and st.state == "ended" and st.ended_at == pytest.approx(16.0)
    assert len(st.stalls) == 1  # the end is not a stall


def test_playback_state_waits_for_a_startup_buffer():
    st = PlaybackState(content_s=20.0, startup_s=8.0)
    st.add(4.0, 1.0)
    assert st.state == "starting"
    st.add(8.0, 2.0)
    assert st.state == "playing" and st.started_at == 2.0


async def play(http, url, device, network, *, speed=10.0, duration=24.0, abr="throughput", **kw):
    cfg = SessionConfig(abr=abr, duration_s=duration, **kw.pop("config", {}))
    session = PlayerSession(http, master_url=url, device=get_device(device), network=network, speed=speed,
                            config=cfg, **kw)
    return session, await asyncio.wait_for(session.run(), 120)


async def test_laptop_on_wifi_plays_cleanly_with_audio_and_forced_subtitles(http, origin_url, tmp_path):
    session, report = await play(http, f"{origin_url}/demo/master.m3u8", "laptop-chrome", parse_network("wifi"),
                                 speed=4.0)
    assert report.ok, report.error
    assert len(report.segments) == 6 and report.content_s == pytest.approx(24.0)
    assert report.played_s == pytest.approx(24.0) and report.stall_count == 0
    assert report.bytes["audio"] == 6 * 128_000 * 4 // 8 or report.bytes["audio"] > 0
    assert report.bytes["subtitles"] > 0 and report.tracks["subtitles"]["forced"]
    assert report.tracks["audio"]["channels"] == 2
    assert all("hvc1" not in s.label and "hev1" not in s.label for s in report.segments)
    assert report.segments[-1].bitrate_bps > 2_000_000  # climbed on 30 Mbps
    assert report.qoe is not None and report.qoe.chunks == 6
    path = tmp_path / "r.json"
    report.write_json(path)
    doc = json.loads(path.read_text())
    assert doc["ok"] and len(doc["segments"]) == 6 and doc["samples"] and doc["tracks"]["ladder"]
    report.plot(tmp_path / "r.png")
    assert (tmp_path / "r.png").read_bytes()[:4] == b"\x89PNG"


async def test_iphone_on_3g_plays_small_h264_with_stereo_aac(http, origin_url):
    _, report = await play(http, f"{origin_url}/demo/master.m3u8", "iphone", parse_network("3g"),
                           prefs=TrackPreferences(audio_languages=("fr",)))
    assert report.ok, report.error
    assert all(s.bitrate_bps < 1_000_000 and "avc1" in s.label for s in report.segments)
    assert report.tracks["audio"]["language"] == "fr" and report.tracks["audio"]["channels"] == 2
    assert report.tracks["subtitles"]["name"] == "Français (forcés)"


async def test_tv_on_fibre_gets_av1_2160p_and_5_1(http, origin_url):
    _, report = await play(http, f"{origin_url}/demo/master.m3u8", "tv-4k", parse_network("fiber"), speed=4.0,
                           duration=16.0)
    assert report.ok, report.error
    assert report.segments[-1].label.startswith("2160p av01")
    assert report.tracks["ladder"][-1]["audio"]["channels"] == 6
    assert report.stall_count == 0


async def test_a_collapsing_link_abandons_the_download_and_refetches_lower(http, origin_url):
    # 30 Mbps for 14 s, then 400 kbps: the segment in flight at the drop is abandoned
    net = BandwidthSchedule((14.0, 600.0), (30e6, 4e5), (0.02, 0.02), name="collapse")
    _, report = await play(http, f"{origin_url}/demo/master.m3u8", "laptop-chrome", net, speed=5.0,
                           duration=40.0, config={"max_buffer_s": 12.0})
    assert report.ok, report.error
    abandoned = [s for s in report.segments if s.abandoned]
    assert abandoned, [(s.label, round(s.throughput_bps)) for s in report.segments]
    assert all("abandon" in s.reason for s in abandoned)
    assert any(not sample.complete for sample in report.samples)
    assert report.bytes["abandoned"] > 0


async def test_a_link_too_slow_for_the_lowest_rung_stalls_and_goes_on(http, origin_url):
    net = BandwidthSchedule.constant(150_000, 0.1, name="slow")
    _, report = await play(http, f"{origin_url}/demo/master.m3u8", "low-end", net, speed=20.0, duration=16.0)
    assert report.ok, report.error
    assert report.stall_count >= 1 and report.stall_s > 1.0
    assert all(s.rung == 0 for s in report.segments[1:])
    assert report.played_s == pytest.approx(16.0)
    assert 0 < report.stall_ratio < 1


async def test_a_missing_title_fails_with_one_clear_line(http, origin_url):
    _, report = await play(http, f"{origin_url}/nope/master.m3u8", "iphone", None)
    assert not report.ok and "HTTP 404" in report.error and "\n" not in report.error


async def test_the_origin_dying_mid_session_fails_the_session_quickly(http, player_store, tmp_path):
    from player_helpers import Server

    origin = Server("origin-dies", ["origin", "--storage", str(player_store), "--port", "0"], tmp_path)
    try:
        session = PlayerSession(http, master_url=f"{origin.url}/demo/master.m3u8", device=get_device("iphone"),
                                network=parse_network("4g"), speed=10.0, config=SessionConfig(abr="throughput"))
        task = asyncio.create_task(session.run())
        while len(session.segments) < 3:
            await asyncio.sleep(0.05)
        origin.kill()
        report = await asyncio.wait_for(task, 30)
    finally:
        origin.stop()
    assert not report.ok and report.error.startswith("every pathway failed")
    assert 3 <= len(report.segments) < 15


async def test_many_sessions_share_one_client_session_and_the_playlist_cache(origin_url):
    cache = PlaylistCache()
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as http:
        sessions = [PlayerSession(http, master_url=f"{origin_url}/demo/master.m3u8",
                                  device=get_device(d), network=parse_network("4g"), speed=5.0,
                                  config=SessionConfig(abr="throughput", duration_s=8.0), playlist_cache=cache)
                    for d in ["iphone", "android-phone", "laptop-chrome", "low-end"] * 10]
        reports = await asyncio.wait_for(asyncio.gather(*(s.run() for s in sessions)), 120)
    assert all(r.ok for r in reports), [r.error for r in reports if not r.ok]
    assert cache.hits > cache.misses
