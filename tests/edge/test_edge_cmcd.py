"""CMCD in, CMSD out (edge/cmcd.py): on the fast path and on aiohttp's, never in the cache key, never an error."""
from __future__ import annotations

import asyncio
import io
import logging
from urllib.parse import quote, unquote_plus

import pytest
from hypothesis import given, settings, strategies as st

from edge.cmcd import Hint, Viewers, cmcd_argument, log_fields, object_type, query_value, request_cmcd, suggest
from edge.serve import ACCESS_LOG_KEY
from edge_helpers import FakeClock, comparable, metric, tok
from httpsem.cmcd import CmcdData, encode, header_fields
from httpsem.cmsd import parse_dynamic, parse_static

CMCD = CmcdData(sid="sess-1", cid="t1", ot="v", br_kbps=3200, bl_ms=12300, mtp_kbps=25400, d_ms=4000,
                tb_kbps=6000, su=True, bs=True, sf="h", st="v", nor="00002.m4s")


async def _raw(port: int, request: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    length = int(next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")))
    await reader.readexactly(length)
    writer.close()
    return head


@pytest.mark.parametrize("fast_path", [True, False])
async def test_cmcd_is_logged_counted_and_never_splits_the_cache(upstream, start_edge, http, caplog, fast_path):
    caplog.set_level(logging.INFO, logger="edge.access")
    upstream.put("t1/video/r1/00001.m4s", b"v" * 2000)
    e = await start_edge(upstream.url, access_log=True, fast_path=fast_path)
    stream = io.StringIO()
    e.runner.app[ACCESS_LOG_KEY].stream = stream
    url = e.obj_url("t1/video/r1/00001.m4s")
    async with http.get(url + "?CMCD=" + quote(encode(CMCD), safe="")) as r:  # a miss, CMCD in the query
        assert r.status == 200 and await r.read() == b"v" * 2000
    for _ in range(3):  # the same object with other CMCD (headers, query): hits, one upstream request in all
        async with http.get(url, headers=header_fields(CmcdData(sid="sess-2", ot="v", bl_ms=500))) as r:
            assert r.status == 200 and await r.read() == b"v" * 2000
        async with http.get(url + "?CMCD=" + quote('sid="sess-3",ot=v,bl=900', safe="")) as r:
            assert r.status == 200
            await r.read()
    assert upstream.requests["t1/video/r1/00001.m4s"] == 1
    port = int(e.url.rsplit(":", 1)[1])
    raw_cmcd = quote('sid="raw",ot=v,su', safe="")
    target = f"/t/{tok('t1')}/t1/video/r1/00001.m4s?CMCD={raw_cmcd}"
    head = await _raw(port, f"GET {target} HTTP/1.1\r\nHost: e\r\n\r\n".encode())
    assert head.startswith(b"HTTP/1.1 200")
    if fast_path:  # the query of one CMCD argument is answered before aiohttp (a RAM hit by now)
        before = e.runner.server.requests_count
        await _raw(port, f"GET {target} HTTP/1.1\r\nHost: e\r\nCMCD-Request: bl=100\r\n\r\n".encode())
        assert e.runner.server.requests_count == before
    text = await (await http.get(f"{e.url}/_/metrics")).text()
    await e.stop()
    lines = stream.getvalue().splitlines()
    assert ' sid=sess-1 ot=v bl=12300 br=3200 mtp=25400 su=1 bs=1 ' in lines[0] and "cache=miss" in lines[0]
    assert any(' sid=sess-2 ot=v bl=500 br=- mtp=- su=- bs=- ' in line and "ram_hit" in line for line in lines)
    assert any(' sid=sess-3 ot=v bl=900 ' in line for line in lines)
    assert any(' sid=raw ot=v bl=- br=- mtp=- su=1 ' in line for line in lines)
    assert all("CMCD" not in line for line in lines)  # the log's path is the object's, without the query
    assert metric(text, "vodstack_edge_cmcd_requests_total", ot="v") == len(lines)
    assert metric(text, "vodstack_edge_cmcd_buffer_starvation_total") == 1


@pytest.mark.parametrize("fast_path", [True, False])
@pytest.mark.parametrize("bad", ['sid="open', "ot=v,,", "BR=1", "%ff%fe", "a=(1 2", "bl=1e9"])
async def test_malformed_cmcd_is_ignored_and_counted_never_an_error(upstream, start_edge, http, fast_path, bad):
    upstream.put("t1/video/r1/00001.m4s", b"v" * 100)
    e = await start_edge(upstream.url, fast_path=fast_path)
    url = e.obj_url("t1/video/r1/00001.m4s")
    for _ in range(3):
        async with http.get(url + "?CMCD=" + quote(bad, safe="")) as r:
            assert r.status == 200 and await r.read() == b"v" * 100
    async with http.get(url, headers={"CMCD-Request": bad}) as r:
        assert r.status == 200
    text = await (await http.get(f"{e.url}/_/metrics")).text()
    assert metric(text, "vodstack_edge_cmcd_malformed_total") == 4


@pytest.mark.parametrize("fast_path", [True, False])
async def test_cmsd_answers_every_media_request(upstream, start_edge, http, fast_path):
    upstream.put("t1/video/r1/00001.m4s", b"v" * 100)
    upstream.put("t1/video/r1/index.m3u8", b"#EXTM3U\n")
    e = await start_edge(upstream.url, fast_path=fast_path, cmsd_max_bitrate_kbps=1500)
    for _ in range(3):
        async with http.get(e.obj_url("t1/video/r1/00001.m4s")) as r:
            static, dynamic = parse_static(r.headers["CMSD-Static"]), parse_dynamic(r.headers["CMSD-Dynamic"])
            assert "CMSD-Dynamic" in r.headers["Access-Control-Expose-Headers"]
    assert static == {"n": e.cfg.name, "ot": "v", "st": "v"}
    (server, params), = dynamic
    assert server == e.cfg.name and params["mb"] == 1500 and params["rtt"] >= 0 and params["etp"] > 0
    assert "du" not in params
    async with http.get(e.obj_url("t1/video/r1/index.m3u8")) as r:
        assert parse_static(r.headers["CMSD-Static"])["ot"] == "m"
    async with http.options(e.obj_url("t1/video/r1/00001.m4s")) as r:
        assert "CMCD-Request" in r.headers["Access-Control-Allow-Headers"]
    off = await start_edge(upstream.url, fast_path=fast_path, cmsd=False)
    for _ in range(3):
        async with http.get(off.obj_url("t1/video/r1/00001.m4s")) as r:
            assert "CMSD-Static" not in r.headers and "CMSD-Dynamic" not in r.headers


def test_request_cmcd_merges_query_and_headers_and_flags_bad_input() -> None:
    got = request_cmcd('sid="a",ot=v', {"CMCD-Request": "bl=100", "CMCD-Status": "bs"})
    assert got.keys == {"sid": "a", "ot": "v", "bl": 100, "bs": True} and not got.malformed
    assert request_cmcd(None, {}).keys is None and not request_cmcd(None, {}).malformed
    assert request_cmcd("ot=v", {"CMCD-Object": "br=="}).malformed
    assert log_fields({"sid": 'a "b"', "su": True, "bs": False}) == 'sid="a \\"b\\"" ot=- bl=- br=- mtp=- su=1 bs=-'


@pytest.mark.parametrize("path, ot", [
    ("master.m3u8", "m"), ("manifest.mpd", "m"), ("v3/video/h264-720p/init.mp4", "i"),
    ("v3/video/h264-720p/00001.m4s", "v"), ("v3/audio/aac-en/00001.m4s", "a"), ("v3/subs/en/00001.vtt", "c"),
    ("v3/iframes/h264-720p.m4s", "v"), ("title.json", "o"), ("v3/other/thing.bin", None)])
def test_object_type_from_the_layout(path: str, ot: str | None) -> None:
    assert object_type(path) == ot


@pytest.mark.parametrize("kw, hint", [
    (dict(cap_kbps=0, capacity_mbps=0, out_bps=1e9, viewers=10, draining=False), Hint(None, False)),
    (dict(cap_kbps=3000, capacity_mbps=0, out_bps=0, viewers=0, draining=False), Hint(3000, False)),
    (dict(cap_kbps=0, capacity_mbps=100, out_bps=80e6, viewers=10, draining=False), Hint(None, False)),
    (dict(cap_kbps=0, capacity_mbps=100, out_bps=95e6, viewers=10, draining=False), Hint(9000, True)),
    (dict(cap_kbps=5000, capacity_mbps=100, out_bps=95e6, viewers=10, draining=False), Hint(5000, True)),
    (dict(cap_kbps=0, capacity_mbps=100, out_bps=95e6, viewers=0, draining=False), Hint(90000, True)),
    (dict(cap_kbps=0, capacity_mbps=0, out_bps=0, viewers=0, draining=True), Hint(None, True)),
])
def test_suggested_bitrate_and_duress(kw: dict, hint: Hint) -> None:
    assert suggest(**kw) == hint


def test_viewers_are_counted_over_a_window() -> None:
    v = Viewers(window_s=10, max_ids=3)
    for i, t in enumerate([0, 1, 2]):
        v.seen(f"s{i}", t)
    assert v.count(2) == 3
    v.seen("s0", 9)
    assert v.count(11.5) == 2  # s1 (last seen at 1) is out of the window; s0 (9) and s2 (2) are in
    v.seen("s3", 12)
    v.seen("s4", 12)  # over max_ids: the least recently seen goes at once (s2, seen at 2)
    assert set(v._seen) == {"s0", "s3", "s4"} and v.count(12) == 3
    v.seen("x" * 65, 13)  # longer than CTA-5004's 64 characters: not a session id to keep
    assert v.count(13) == 3
    assert v.count(21.5) == 2  # s0 (seen at 9) has left the window, s3 and s4 (12) have not


@settings(max_examples=500)
@given(st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=60), st.booleans())
def test_the_fast_path_decodes_a_query_value_as_aiohttp_does(text: str, encode_it: bool) -> None:
    raw = quote(text, safe="") if encode_it else text
    assert query_value(raw) == unquote_plus(raw)


@pytest.mark.parametrize("raw, value", [("", None), ("x=1", None), ("CMCD=ot%3Dv", "ot=v"), ("a=1&CMCD=su&b=2", "su"),
                                        ("XCMCD=1", None), ("CMCD=", "")])
def test_the_cmcd_argument_of_a_raw_query(raw: str, value: str | None) -> None:
    assert cmcd_argument(raw) == value


async def test_an_access_log_file_is_written_whatever_the_log_level(upstream, start_edge, http, tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="edge.access")  # as `vodstack --log-level warning`
    upstream.put("t1/video/r1/00001.m4s", b"v" * 100)
    path = tmp_path / "e.access.log"
    e = await start_edge(upstream.url, access_log=True, access_log_file=str(path))
    for _ in range(3):
        async with http.get(e.obj_url("t1/video/r1/00001.m4s") + "?CMCD=" + quote('sid="s9",ot=v', safe="")) as r:
            await r.read()
    await e.stop()
    lines = path.read_text().splitlines()
    assert len(lines) == 3 and all(" sid=s9 ot=v " in ln for ln in lines)
    quiet = await start_edge(upstream.url, access_log=False, access_log_file=str(tmp_path / "off.log"))
    async with http.get(quiet.obj_url("t1/video/r1/00001.m4s")) as r:
        await r.read()
    await quiet.stop()
    assert (tmp_path / "off.log").read_text() == ""  # --no-access-log: nothing, file or not


@pytest.mark.parametrize("fast_path", [True, False])
async def test_an_edge_over_its_capacity_says_duress_and_shares_it(upstream, start_edge, http, fast_path):
    """--capacity-mbps: above 90 % of it (bits, from the out-rate meter's bytes) CMSD-Dynamic says du and
    mb = 90 % of the capacity over the viewers served in the last 10 s."""
    clock = FakeClock()
    upstream.put("t1/video/r1/00001.m4s", b"v" * 20_000)
    e = await start_edge(upstream.url, fast_path=fast_path, capacity_mbps=0.02, clock=clock)  # 20 kbit/s
    url = e.obj_url("t1/video/r1/00001.m4s")

    async def dynamic(sid: str) -> dict:
        async with http.get(url + "?CMCD=" + quote(f'sid="{sid}",ot=v', safe="")) as r:
            await r.read()
            return parse_dynamic(r.headers["CMSD-Dynamic"])[0][1]

    assert "du" not in await dynamic("a")  # nothing sent yet when the hint was worked out
    await dynamic("b")  # 40 000 bytes over the 10 s window: 32 kbit/s, over 18 (90 % of 20)
    clock.advance(1.0)
    hinted = await dynamic("c")
    # 18 kbit/s shared by the viewers served in the window: a, b and c (counted before its hint)
    assert hinted.get("du") is True and hinted["mb"] == 6


async def test_both_paths_log_the_same_cmcd_and_never_a_forged_line(upstream, start_edge, caplog):
    """Repeated CMCD-* lines are joined (RFC 9110) on both paths; an RFC 9651 display string (which may
    hold a newline) is not a CMCD value; nothing a player sends makes a second log line."""
    caplog.set_level(logging.INFO, logger="edge.access")
    upstream.put("t1/video/r1/00001.m4s", b"v" * 100)
    sent = [("CMCD-Request: bl=100", "CMCD-Request: su", 'CMCD-Session: sid="s1"'),
            ('CMCD-Session: sid=%"a%0a2026-12-04T00:00:00 INFO edge.access GET /t/x/forged"',),
            ('CMCD-Session: sid="b", cid="c"', "CMCD-Object: ot=v")]
    logged = {}
    for fast in (True, False):
        e = await start_edge(upstream.url, access_log=True, fast_path=fast)
        stream = io.StringIO()
        e.runner.app[ACCESS_LOG_KEY].stream = stream
        port = int(e.url.rsplit(":", 1)[1])
        for _ in range(3):  # into RAM first (lru+2hit), so that the fast path answers the rest
            await _raw(port, f"GET /t/{tok('t1')}/t1/video/r1/00001.m4s HTTP/1.1\r\nHost: e\r\n\r\n".encode())
        for lines in sent:
            head = "".join(f"{line}\r\n" for line in lines)
            await _raw(port, f"GET /t/{tok('t1')}/t1/video/r1/00001.m4s HTTP/1.1\r\nHost: e\r\n{head}\r\n".encode())
        await e.stop()
        out = stream.getvalue().splitlines()
        assert len(out) == 3 + len(sent) and all(" INFO edge.access GET /t/" in ln for ln in out)
        logged[fast] = [ln.split(" via=- ", 1)[1] for ln in out[3:]]
    assert logged[True] == logged[False]
    assert logged[True][0].startswith("sid=s1 ot=- bl=100 br=- mtp=- su=1 ")
    assert logged[True][1].startswith("sid=- ")  # the display string is no CMCD value
    assert logged[True][2].startswith("sid=b ot=v ")
