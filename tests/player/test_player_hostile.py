"""Hostile and broken playlists, served by a real aiohttp server: a clear PlaybackError, fast, never a hang."""
from __future__ import annotations

import asyncio
import time

import pytest
from aiohttp import web

from client.errors import (BodyTooLarge, ConnectError, FetchError, FetchTimeout, HttpStatusError, PlaybackError,
                           PlaylistError)
from client.fetch import Fetcher, FetchTimeouts, range_header
from client.network import Clock, UnshapedLink
from client.playlists import (PlaylistCache, PlaylistLimits, fetch_media, fetch_multivariant, parse_media,
                              parse_multivariant, parse_steering_manifest)

GOOD_MEDIA = ("#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:4\n#EXT-X-PLAYLIST-TYPE:VOD\n"
              '#EXT-X-MAP:URI="init.mp4"\n#EXTINF:4.0,\n00001.m4s\n#EXTINF:4.0,\n00002.m4s\n#EXTINF:2.5,\n00003.m4s\n'
              "#EXT-X-ENDLIST\n")
GOOD_MASTER = ('#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=500000,RESOLUTION=640x360,CODECS="avc1.4d401e,mp4a.40.2"\n'
               "v/index.m3u8\n")
URL = "http://127.0.0.1:9/t/x/title/v/index.m3u8"


def test_good_playlists_parse():
    media = parse_media(GOOD_MEDIA, URL)
    assert [s.uri for s in media.segments] == ["00001.m4s", "00002.m4s", "00003.m4s"]
    assert media.duration_s == pytest.approx(10.5)
    assert media.index_at(0) == 0 and media.index_at(4.0) == 1 and media.index_at(9.9) == 2 and media.index_at(99) == 2
    assert media.segments[0].init is media.segments[2].init  # one shared record
    master = parse_multivariant(GOOD_MASTER, URL)
    assert master.variants[0].height == 360 and master.pathways == (".",)


def test_byterange_playlists():
    text = ("#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXT-X-MAP:URI=\"v.mp4\",BYTERANGE=\"800@0\"\n"
            "#EXTINF:4,\n#EXT-X-BYTERANGE:1000@800\nv.mp4\n#EXTINF:4,\n#EXT-X-BYTERANGE:1200\nv.mp4\n#EXT-X-ENDLIST\n")
    media = parse_media(text, URL)
    assert [(s.byterange.offset, s.byterange.length) for s in media.segments] == [(800, 1000), (1800, 1200)]
    assert range_header(media.segments[0].init.byterange) == "bytes=0-799"
    assert media.sizes_bytes() == (1000, 1200)


def media_with(**replace) -> str:
    text = GOOD_MEDIA
    for old, new in replace.items():
        text = text.replace(old.replace("_", "-") if old.startswith("EXT") else old, new)
    return text


HOSTILE_MEDIA = [
    ("missing EXTM3U", GOOD_MEDIA.replace("#EXTM3U\n", ""), "does not start with #EXTM3U"),
    ("missing TARGETDURATION", GOOD_MEDIA.replace("#EXT-X-TARGETDURATION:4\n", ""), "TARGETDURATION"),
    ("absurd TARGETDURATION", GOOD_MEDIA.replace("TARGETDURATION:4", "TARGETDURATION:99999999"), "TARGETDURATION"),
    ("negative duration", GOOD_MEDIA.replace("#EXTINF:2.5,", "#EXTINF:-3,"), "EXTINF"),
    ("zero duration", GOOD_MEDIA.replace("#EXTINF:2.5,", "#EXTINF:0,"), "EXTINF"),
    ("nan duration", GOOD_MEDIA.replace("#EXTINF:2.5,", "#EXTINF:nan,"), "EXTINF"),
    ("duration way over target", GOOD_MEDIA.replace("#EXTINF:2.5,", "#EXTINF:3600,"), "EXTINF"),
    ("garbage duration", GOOD_MEDIA.replace("#EXTINF:2.5,", "#EXTINF:abc,"), "EXTINF|unparseable"),
    ("missing EXTINF", GOOD_MEDIA.replace("#EXTINF:2.5,\n", ""), "EXTINF"),
    ("no ENDLIST (live)", GOOD_MEDIA.replace("#EXT-X-ENDLIST\n", ""), "live playlists are not supported"),
    ("no segments", "#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXT-X-ENDLIST\n", "no segments"),
    ("loop to a master", GOOD_MASTER, "got a multivariant playlist"),
    ("file scheme", GOOD_MEDIA.replace("00002.m4s", "file:///etc/passwd"), "scheme 'file'"),
    ("data scheme", GOOD_MEDIA.replace('URI="init.mp4"', 'URI="data:,xx"'), "scheme 'data'"),
    ("huge URI", GOOD_MEDIA.replace("00002.m4s", "a" * 5000), "characters long"),
    ("bad byterange", GOOD_MEDIA.replace("#EXTINF:2.5,\n", "#EXTINF:2.5,\n#EXT-X-BYTERANGE:abc\n"), "BYTERANGE"),
    ("too many segments", "#EXTM3U\n#EXT-X-TARGETDURATION:4\n" + "#EXTINF:4,\ns.m4s\n" * 100_001 + "#EXT-X-ENDLIST\n",
     "segments \\(limit"),
    ("empty", "", "does not start with #EXTM3U"),
]


@pytest.mark.parametrize("name, text, match", HOSTILE_MEDIA, ids=[h[0] for h in HOSTILE_MEDIA])
def test_hostile_media_playlists(name, text, match):
    t0 = time.monotonic()
    with pytest.raises(PlaylistError, match=match):
        parse_media(text, URL, PlaylistLimits(max_playlist_bytes=16 * 1024 * 1024))
    assert time.monotonic() - t0 < 10


HOSTILE_MASTER = [
    ("no variants", "#EXTM3U\n#EXT-X-VERSION:3\n", "multivariant"),
    ("no BANDWIDTH", '#EXTM3U\n#EXT-X-STREAM-INF:RESOLUTION=640x360\nv.m3u8\n', "BANDWIDTH"),
    ("absurd BANDWIDTH", '#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=999999999999999\nv.m3u8\n', "BANDWIDTH"),
    ("zero BANDWIDTH", '#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=0\nv.m3u8\n', "BANDWIDTH"),
    ("garbage BANDWIDTH", '#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=lots\nv.m3u8\n', "BANDWIDTH|unparseable"),
    ("absurd RESOLUTION", '#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1,RESOLUTION=99999x99999\nv.m3u8\n', "width"),
    ("zero RESOLUTION", '#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1,RESOLUTION=0x0\nv.m3u8\n', "width"),
    ("bad RESOLUTION", '#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1,RESOLUTION=big\nv.m3u8\n', "RESOLUTION"),
    ("absurd FRAME-RATE", '#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1,FRAME-RATE=1e9\nv.m3u8\n', "FRAME-RATE"),
    ("missing URI line", '#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1000\n', "no URI|no variants"),
    ("media instead", GOOD_MEDIA, "multivariant"),
    ("too many variants", "#EXTM3U\n" + '#EXT-X-STREAM-INF:BANDWIDTH=1000\nv.m3u8\n' * 1001, "variants \\(limit"),
    ("bad rendition", '#EXTM3U\n#EXT-X-MEDIA:TYPE=JUNK,GROUP-ID="a",NAME="x"\n' + GOOD_MASTER[8:], "TYPE"),
    ("absurd CHANNELS", '#EXTM3U\n#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="a",NAME="x",CHANNELS="99999",URI="a.m3u8"\n'
     + GOOD_MASTER[8:], "CHANNELS"),
]


@pytest.mark.parametrize("name, text, match", HOSTILE_MASTER, ids=[h[0] for h in HOSTILE_MASTER])
def test_hostile_multivariant_playlists(name, text, match):
    with pytest.raises(PlaylistError, match=match):
        parse_multivariant(text, URL)


@pytest.mark.parametrize("text, match", [
    ("not json", "not JSON"),
    ("[]", "not a JSON object"),
    ('{"VERSION": 2, "PATHWAY-PRIORITY": ["a"]}', "VERSION"),
    ('{"VERSION": 1, "TTL": -1, "PATHWAY-PRIORITY": ["a"]}', "TTL"),
    ('{"VERSION": 1, "PATHWAY-PRIORITY": []}', "PATHWAY-PRIORITY"),
    ('{"VERSION": 1, "PATHWAY-PRIORITY": [1, 2]}', "PATHWAY-PRIORITY"),
    ('{"VERSION": 1, "PATHWAY-PRIORITY": ["a"], "RELOAD-URI": "file:///x"}', "scheme"),
])
def test_hostile_steering_manifests(text, match):
    with pytest.raises(PlaylistError, match=match):
        parse_steering_manifest(text, "http://s/steer")


def test_steering_manifest_ttl_is_capped_and_priority_deduplicated():
    m = parse_steering_manifest('{"VERSION":1,"TTL":1e12,"PATHWAY-PRIORITY":["a","b","a"],"RELOAD-URI":"/r"}', "http://s/")
    assert m.ttl_s == 86400 and m.pathway_priority == ("a", "b") and m.reload_uri == "/r"


# --- over real HTTP -----------------------------------------------------------------------------

def hostile_app() -> web.Application:
    async def text(body: str):
        async def handler(request: web.Request) -> web.Response:
            return web.Response(text=body, content_type="application/vnd.apple.mpegurl")
        return handler

    async def huge(request: web.Request) -> web.Response:
        return web.Response(body=b"#EXTM3U\n" + b"#" * (5 * 1024 * 1024))

    async def endless(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        await resp.prepare(request)
        await resp.write(b"#EXTM3U\n")
        while True:
            await resp.write(b"#EXT-X-COMMENT:" + b"x" * 65536 + b"\n")

    async def dribble(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        await resp.prepare(request)
        await resp.write(b"#EXTM3U\n")
        for _ in range(3600):
            await asyncio.sleep(0.2)
            await resp.write(b"#")
        return resp

    async def silent(request: web.Request) -> web.Response:
        await asyncio.sleep(3600)
        return web.Response(text="late")

    async def stall(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        resp.content_length = 100_000
        await resp.prepare(request)
        await resp.write(b"#EXTM3U\n")
        await asyncio.sleep(3600)
        return resp

    async def cut(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        resp.content_length = 100_000
        await resp.prepare(request)
        await resp.write(b"#EXTM3U\n" + b"#" * 1000)
        request.transport.close()
        return resp

    async def redirect_loop(request: web.Request) -> web.Response:
        raise web.HTTPFound("/redirect")

    async def binary(request: web.Request) -> web.Response:
        return web.Response(body=b"#EXTM3U\n\xff\xfe\x00\x01garbage")

    async def error(request: web.Request) -> web.Response:
        return web.Response(status=503, text="busy")

    async def master_loops(request: web.Request) -> web.Response:
        return web.Response(text='#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=500000\nmaster_loops.m3u8\n')

    app = web.Application()
    r = app.router
    r.add_get("/huge.m3u8", huge)
    r.add_get("/endless.m3u8", endless)
    r.add_get("/dribble.m3u8", dribble)
    r.add_get("/silent.m3u8", silent)
    r.add_get("/stall.m3u8", stall)
    r.add_get("/cut.m3u8", cut)
    r.add_get("/redirect", redirect_loop)
    r.add_get("/binary.m3u8", binary)
    r.add_get("/error.m3u8", error)
    r.add_get("/master_loops.m3u8", master_loops)
    return app


HTTP_CASES = [
    ("huge.m3u8", BodyTooLarge, "over the"),
    ("endless.m3u8", BodyTooLarge, "over the"),
    ("dribble.m3u8", FetchTimeout, "not complete within"),
    ("silent.m3u8", FetchTimeout, "no response within"),
    ("stall.m3u8", FetchTimeout, "stalled"),
    ("cut.m3u8", ConnectError, "body|disconnected|cut"),
    ("redirect", FetchError, "redirects"),
    ("binary.m3u8", PlaylistError, "UTF-8|NUL"),
    ("error.m3u8", HttpStatusError, "HTTP 503"),
    ("missing.m3u8", HttpStatusError, "HTTP 404"),
]


@pytest.mark.parametrize("path, error, match", HTTP_CASES, ids=[c[0] for c in HTTP_CASES])
async def test_hostile_servers_give_a_clear_error_quickly(serve, http, path, error, match):
    base = await serve(hostile_app())
    # a 10x media clock: the 3 s TTFB/stall timeouts and the 15 s deadline take 0.3 s / 1.5 s of real time
    fetcher = Fetcher(http, UnshapedLink(Clock(10.0)), FetchTimeouts())
    t0 = time.monotonic()
    with pytest.raises(error, match=match) as info:
        await fetch_multivariant(fetcher, f"{base}/{path}")
    assert isinstance(info.value, PlaybackError)
    assert time.monotonic() - t0 < 3.0


async def test_connection_refused(http):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    fetcher = Fetcher(http, UnshapedLink(Clock()))
    with pytest.raises(ConnectError, match="cannot connect"):
        await fetch_multivariant(fetcher, f"http://127.0.0.1:{port}/master.m3u8")


async def test_a_variant_pointing_back_at_the_master_is_a_loop(serve, http):
    base = await serve(hostile_app())
    fetcher = Fetcher(http, UnshapedLink(Clock()))
    master, final = await fetch_multivariant(fetcher, f"{base}/master_loops.m3u8")
    with pytest.raises(PlaylistError, match="expected a media playlist"):
        await fetch_media(fetcher, final.rsplit("/", 1)[0] + "/" + master.variants[0].uri)


async def test_parsed_playlists_are_shared_through_the_cache(serve, http):
    async def media(request: web.Request) -> web.Response:
        return web.Response(text=GOOD_MEDIA)

    app = web.Application()
    app.router.add_get("/t/{token}/v/index.m3u8", media)
    base = await serve(app)
    cache = PlaylistCache()
    fetcher = Fetcher(http, UnshapedLink(Clock()))
    a, url_a = await fetch_media(fetcher, f"{base}/t/AAA/v/index.m3u8", cache=cache)
    b, url_b = await fetch_media(fetcher, f"{base}/t/BBB/v/index.m3u8", cache=cache)
    assert a is b and cache.hits == 1 and url_a != url_b
