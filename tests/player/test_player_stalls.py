"""What counts as a stall: the buffer running dry after the viewer was shown something.

A title of three 1 µs segments used to report "stalls 2 (100.00 %)": playback started on 1 µs of
media and "stalled" between segments. `PlaybackState` now starts (and resumes) only on at least
``min_playable_s`` ahead or the rest of the title. Table-driven over the pure state, then a real
session over HTTP against such a title.
"""
from __future__ import annotations

import asyncio

import pytest
from aiohttp import web

from client.context import SessionConfig
from client.devices import get_device
from client.playback import PlaybackState
from client.session import PlayerSession

US = 1e-6

# (name, content_s, min_playable_s, events [(buffered_until_s, at_s)], end_s, stalls, started_at)
CASES = [
    ("three 1 us segments: start when all is in, no stall", 3 * US, 0.1,
     [(1 * US, 0.010), (2 * US, 0.011), (3 * US, 0.012)], 1.0, [], 0.012),
    ("the same before the fix (no minimum): two stalls", 3 * US, 0.0,
     [(1 * US, 0.010), (2 * US, 0.011), (3 * US, 0.012)], 1.0, [(0.010 + US, 0.001 - US), (0.011 + US, 0.001 - US)],
     0.010),
    ("4 s segments are unchanged: start on the first", 12.0, 0.1, [(4.0, 1.0), (8.0, 2.0), (12.0, 3.0)], 20.0, [],
     1.0),
    ("a real stall is still a stall", 12.0, 0.1, [(4.0, 1.0), (8.0, 7.0), (12.0, 8.0)], 20.0, [(5.0, 2.0)], 1.0),
    ("a sliver after a stall does not resume it", 12.0, 0.1,
     [(4.0, 1.0), (4.05, 6.0), (8.0, 7.0), (12.0, 8.0)], 20.0, [(5.0, 2.0)], 1.0),
    ("a short last segment ends the title", 8.05, 0.1, [(4.0, 1.0), (8.0, 2.0), (8.05, 3.0)], 20.0, [], 1.0),
]


@pytest.mark.parametrize("name, content_s, min_playable_s, events, end_s, stalls, started_at", CASES,
                         ids=[c[0] for c in CASES])
def test_what_counts_as_a_stall(name, content_s, min_playable_s, events, end_s, stalls, started_at):
    st = PlaybackState(content_s, min_playable_s=min_playable_s)
    for until_s, at_s in events:
        st.add(until_s, at_s)
    st.advance(end_s)
    assert st.started_at == pytest.approx(started_at)
    assert st.state == "ended"
    assert len(st.stalls) == len(stalls)
    for (at, d), (want_at, want_d) in zip(st.stalls, stalls):
        assert at == pytest.approx(want_at, abs=1e-9) and d == pytest.approx(want_d, abs=1e-9)


MASTER = '#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=500000,RESOLUTION=640x360,CODECS="avc1.4d401e,mp4a.40.2"\nv/index.m3u8\n'
MEDIA = ("#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:1\n#EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-MAP:URI=\"init.mp4\"\n"
         + "".join(f"#EXTINF:0.000001,\n{n:05d}.m4s\n" for n in range(1, 4)) + "#EXT-X-ENDLIST\n")


async def test_a_title_of_three_1us_segments_reports_no_stall(serve, http):
    async def text(body: str):
        async def handler(request: web.Request) -> web.Response:
            return web.Response(text=body, content_type="application/vnd.apple.mpegurl")
        return handler

    async def media(request: web.Request) -> web.Response:
        await asyncio.sleep(0.01)  # each segment takes a moment: between two, a 1 us buffer has run dry
        return web.Response(body=b"\0" * 1000)

    app = web.Application()
    app.router.add_get("/master.m3u8", await text(MASTER))
    app.router.add_get("/v/index.m3u8", await text(MEDIA))
    app.router.add_get("/v/{name}", media)
    base = await serve(app)
    session = PlayerSession(http, master_url=f"{base}/master.m3u8", device=get_device("laptop-chrome"),
                            network=None, config=SessionConfig())
    report = await asyncio.wait_for(session.run(), 60)
    assert report.ok, report.error
    assert len(report.segments) == 3
    assert report.stall_count == 0 and report.stall_ratio == 0.0
    assert report.qoe.rebuffer_events == 0 and report.qoe.rebuffer_ratio == 0.0
    assert report.startup_s is not None and report.startup_s >= report.segments[-1].done_s - 1e-9  # all in first
    assert "stalls 0 (0.00 s, 0.00%)" in "\n".join(report.summary_lines())
