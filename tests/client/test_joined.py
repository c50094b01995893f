"""client/joined.py and client/p1203.py: the access-log line parser, the join, each stall-attribution rule,
the tables of the joined section, and the P.1203 mode 0 input's shape (tables, no servers)."""
from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from client.devices import get_device
from client.edgelogs import collect, note_offsets
from client.joined import (Cause, ClientRequest, EdgeLine, Failover, JoinSession, Stall, attribute, edge_name,
                           from_load_row, hit_ratios, join, joined_section, object_key, parse_line, read_edge_logs,
                           segment_rows, stall_totals, unflushed)
from client.p1203 import p1203_codec, p1203_input
from client.report import RequestRecord, SegmentRecord, SessionReport, StallRecord

TS = "2026-12-04T20:37:41 INFO edge.access"
LINE = (f"{TS} GET /t/tok.sig/t1/video/r1/00003.m4s status=200 cache=miss tier=fill bytes=2000 ms=12.3 "
        "range=- peer=127.0.0.1 via=- sid=load0000-000001 ot=v bl=12300 br=3200 mtp=25400 su=- bs=1 up_ms=10.2")


# --- the line parser -----------------------------------------------------------------------------

@pytest.mark.parametrize("text, want", [
    (LINE, dict(key="t1/video/r1/00003.m4s", range="", status=200, aborted=False, cache="miss", tier="fill",
                size_bytes=2000, ms=12.3, up_ms=10.2, sid="load0000-000001", ot="v", bl_ms=12300, br_kbps=3200,
                mtp_kbps=25400, su=False, bs=True)),
    (LINE.replace("status=200", "status=200-aborted").replace("range=-", "range=bytes=0-99"),
     dict(status=200, aborted=True, range="bytes=0-99")),
    (LINE.replace("sid=load0000-000001", r'sid="a b\"c"'), dict(sid='a b"c')),
    (LINE.replace("range=-", 'range="bytes=0-1, 5-9"').replace("via=-", 'via=""'),
     dict(range="bytes=0-1, 5-9", sid="load0000-000001")),
    (LINE.replace("sid=load0000-000001 ot=v bl=12300 br=3200 mtp=25400 su=- bs=1",
                  "sid=- ot=- bl=- br=- mtp=- su=- bs=-"), dict(sid="", ot="", bl_ms=None, bs=False)),
    (LINE.replace(" up_ms=10.2", ""), dict(up_ms=0.0)),                   # a line from before up_ms
    (LINE.replace("cache=miss tier=fill", "cache=expired tier=-").replace("status=200", "status=403"),
     dict(cache="expired", tier="-", status=403)),                         # a refused token
    (LINE.replace("edge.access", "origin.access"), None),                 # another logger
    (LINE.replace("/t/tok.sig/t1/video/r1/00003.m4s", "/_/health"), None),  # not an object
    (LINE.replace(" bytes=2000", ""), None),                              # mangled
    (LINE.replace("status=200", "status=abc"), None),
    ("2026-12-04T20:37:41 WARNING edge.serve fill failed key=t1/x", None),
    ("", None),
])
def test_parse_line(text, want):
    line = parse_line(text, "edge-a")
    if want is None:
        assert line is None
        return
    assert line is not None and line.edge == "edge-a" and line.method == "GET"
    for k, v in want.items():
        assert getattr(line, k) == v, k


def test_parse_line_reads_what_the_edge_writes():
    """The contract with edge/accesslog.py and edge/cmcd.py: a line the edge formats parses back."""
    import io
    import logging

    from edge.accesslog import AccessLog
    from edge.cmcd import log_fields

    sink = io.StringIO()
    log = AccessLog(sink, clock=lambda: 1_796_400_000.0)
    level = log.logger.level
    log.logger.setLevel(logging.INFO)
    try:
        log.request("GET", "/t/tok.sig/t1/audio/a/00002.m4s", status="206-aborted", cache="coalesced", tier="fill",
                    sent_bytes=512, ms=41.5, range_header="bytes=0-511", peer="127.0.0.1", via="-",
                    cmcd=log_fields({"sid": 'x "y"', "ot": "a", "bl": 1200, "br": 128, "bs": True}), up_ms=40.1)
        log.flush()
    finally:
        log.logger.setLevel(level)
    line = parse_line(sink.getvalue(), "edge-a")
    assert line == EdgeLine(edge="edge-a", method="GET", key="t1/audio/a/00002.m4s", range="bytes=0-511", status=206,
                            aborted=True, cache="coalesced", tier="fill", size_bytes=512, ms=41.5, up_ms=40.1,
                            sid='x "y"', ot="a", bl_ms=1200, br_kbps=128, bs=True, at=line.at)


@pytest.mark.parametrize("url, key", [
    ("http://127.0.0.1:80/t/abc.def/t1/video/r1/00001.m4s", "t1/video/r1/00001.m4s"),
    ("http://127.0.0.1:80/t/<token>/t1/video/r1/00001.m4s", "t1/video/r1/00001.m4s"),  # redacted (load rows)
    ("https://e.example/t/abc/t1/master.m3u8?x=1", "t1/master.m3u8"),
    ("http://e/t/abc/t1/a%20b.vtt", "t1/a b.vtt"),
    ("http://steer/m/abc/t1/master.m3u8?session=s", None),   # the steering service's steered master
])
def test_object_key(url, key):
    assert object_key(url) == key


def test_edge_name_is_the_file_stem_before_access_log():
    assert edge_name("/d/logs/edge-us-east-1a.access.log") == "edge-us-east-1a"
    assert edge_name("/d/edge-b.log") == "edge-b"


# --- the join ------------------------------------------------------------------------------------

def el(key: str, *, sid: str = "s1", rng: str = "", status: int = 200, aborted: bool = False, cache: str = "ram_hit",
       tier: str = "ram", ms: float = 1.0, up_ms: float = 0.0, edge: str = "edge-a", size: int = 1000) -> EdgeLine:
    return EdgeLine(edge=edge, method="GET", key=key, range=rng, status=status, aborted=aborted, cache=cache, tier=tier,
                    size_bytes=size, ms=ms, up_ms=up_ms, sid=sid)


def cr(key: str, start_s: float, end_s: float, *, ot: str = "v", rng: str = "", status: int = 200,
       complete: bool = True, size: int = 1000) -> ClientRequest:
    return ClientRequest(ot=ot, key=key, range=rng, start_s=start_s, end_s=end_s, size_bytes=size, status=status,
                         complete=complete)


def session(requests, stalls=(), failovers=(), speed=1.0, sid="s1", device="iphone", network="4g") -> JoinSession:
    return JoinSession(session_id=sid, device=device, network=network, speed=speed, requests=tuple(requests),
                       stalls=tuple(stalls), failovers=tuple(failovers))


def test_join_pairs_in_order_by_sid_key_and_range():
    reqs = [cr("t/m.m3u8", 0, 1, ot="m"), cr("t/v/1.m4s", 1, 2), cr("t/v/1.m4s", 2, 3, rng="bytes=0-9"),
            cr("t/m.m3u8", 3, 4, ot="m"), cr("t/v/2.m4s", 4, 5)]
    lines = [el("t/m.m3u8", cache="miss", tier="fill"), el("t/v/1.m4s", sid="other"), el("t/v/1.m4s"),
             el("t/v/1.m4s", rng="bytes=0-9"), el("t/m.m3u8"), el("t/x.m4s")]
    j = join(session(reqs), lines)
    assert [x.key if x else None for x in j.lines] == ["t/m.m3u8", "t/v/1.m4s", "t/v/1.m4s", "t/m.m3u8", None]
    assert j.lines[0] is lines[0] and j.lines[3] is lines[4]      # in order: first unmatched
    assert j.lines[2] is lines[3]                                  # the ranged one for the ranged request
    assert (j.matched, j.unmatched) == (4, 1)
    assert [x.key for x in j.extra] == ["t/x.m4s"]                 # the other session's line is not this one's
    assert unflushed([j]) == ["s1"]                                # its last request has no line yet
    assert unflushed([join(session(reqs[:4]), lines)]) == []


def test_join_prefers_the_line_whose_status_and_completion_agree():
    # the first attempt was cut off on edge-a (the session failed over), the client recorded only the retry
    lines = [el("t/v/1.m4s", status=200, aborted=True), el("t/v/1.m4s", edge="edge-b")]
    j = join(session([cr("t/v/1.m4s", 0, 3)]), lines)
    assert j.lines[0] is lines[1] and j.extra == (lines[0],)
    # an abandoned request (complete=False) takes the aborted line
    j = join(session([cr("t/v/1.m4s", 0, 3, complete=False)]), lines)
    assert j.lines[0] is lines[0]
    # a 404 the session recorded takes the 404 line
    lines = [el("t/v/1.m4s", status=502, cache="miss", tier="fill"), el("t/v/1.m4s", status=404, cache="negative")]
    assert join(session([cr("t/v/1.m4s", 0, 1, status=404)]), lines).lines[0] is lines[1]


# --- stall attribution ---------------------------------------------------------------------------

STALL = Stall(10.0, 2.0)  # 10 s to 12 s
SEG = "t/video/r1/00005.m4s"


def attribution(lines, *, failovers=(), speed=1.0, requests=None, stall=STALL):
    reqs = requests if requests is not None else [
        cr("t/video/r1/00004.m4s", 6.0, 8.0),          # done before the stall
        cr("t/audio/a/00005.m4s", 9.0, 10.5, ot="a"),  # in flight, ended first
        cr(SEG, 9.0, 11.99),                           # in flight, ended the stall
        cr("t/subs/en/00005.vtt", 9.0, 11.0, ot="c"),  # subtitles: playback does not wait on them
        cr("t/video/r1/00006.m4s", 12.0, 13.0),        # after it
    ]
    (a,) = attribute(join(session(reqs, [stall], failovers, speed=speed), lines))
    return a


FAST = [el(SEG, cache="ram_hit", tier="ram", ms=2.0)]
FILLED = [el(SEG, cache="miss", tier="fill", ms=2900.0, up_ms=2800.0)]
URL = "http://127.0.0.1:9/t/<token>/" + SEG


@pytest.mark.parametrize("lines, failovers, speed, cause, needle", [
    # 1. origin_error: a failover on an HTTP 5xx, or one whose edge line says >= 500 after a lookup
    (FAST, [Failover(at_s=9.5, gap_s=2.4, cause="HttpStatusError", error=f"{URL}: HTTP 502")], 1.0,
     Cause.ORIGIN_ERROR, "HTTP 502"),
    (FAST + [el(SEG, status=504, cache="miss", tier="fill", aborted=True)],
     [Failover(at_s=10.5, gap_s=1.0, cause="ConnectError", error=f"{URL}: body ended at 5 of 10 bytes")], 1.0,
     Cause.ORIGIN_ERROR, "answered 504"),
    # 2. edge_failure: other failovers (refused, died) - a draining edge's own 503 is not the origin's
    (FAST + [el(SEG, status=503, cache="none", tier="-")],
     [Failover(at_s=10.0, gap_s=1.9, cause="HttpStatusError", error=f"{URL}: HTTP 503")], 1.0,
     Cause.EDGE_FAILURE, "refused with 503"),
    (FAST, [Failover(at_s=11.0, gap_s=0.9, cause="ConnectError", error=f"{URL}: connection refused")], 1.0,
     Cause.EDGE_FAILURE, "ConnectError"),
    (FAST, [Failover(at_s=8.0, gap_s=2.5, cause="ConnectError", error="x")], 1.0,   # its gap reaches the stall
     Cause.EDGE_FAILURE, "ConnectError"),
    #    ... but a timeout while the edge itself waited on a fill is the fill's
    (FAST + [el(SEG, aborted=True, cache="miss", tier="fill", ms=3100.0, up_ms=3050.0)],
     [Failover(at_s=10.2, gap_s=1.7, cause="FetchTimeout", error=f"{URL}: no response within 3 s")], 1.0,
     Cause.FILL, "waited 3050 ms on a fill"),
    # 3. fill: the deciding request waited on upstream for at least half its client-side duration
    (FILLED, [], 1.0, Cause.FILL, "miss/fill"),
    ([el(SEG, cache="coalesced", tier="fill", ms=2000.0, up_ms=1500.0)], [], 1.0, Cause.FILL, "coalesced"),
    ([el(SEG, cache="revalidated", tier="fill", ms=1600.0, up_ms=1500.0)], [], 1.0, Cause.FILL, "revalidated"),
    ([el(SEG, cache="stale", tier="stale", ms=1600.0, up_ms=1500.0)], [], 1.0, Cause.FILL, "stale"),
    #    up_ms is wall clock: 400 ms at speed 4 is 1.6 media s of the request's 2.99
    ([el(SEG, cache="miss", tier="fill", ms=420.0, up_ms=400.0)], [], 4.0, Cause.FILL, "1.60 of its 2.99"),
    # 4. network: from cache, or a fill too quick to explain the request's time
    (FAST, [], 1.0, Cause.NETWORK, "ram_hit/ram"),
    ([el(SEG, cache="miss", tier="fill", ms=420.0, up_ms=400.0)], [], 1.0, Cause.NETWORK, "miss/fill"),
    ([el(SEG, cache="disk_hit", tier="disk", ms=2500.0)], [], 1.0, Cause.NETWORK, "disk_hit"),
    # a failover long before the stall does not count
    (FAST, [Failover(at_s=2.0, gap_s=1.0, cause="HttpStatusError", error=f"{URL}: HTTP 502")], 1.0,
     Cause.NETWORK, "ram_hit"),
    # 5. unknown: no edge line for the deciding request (the audio one's is not enough)
    ([el("t/audio/a/00005.m4s", cache="miss", tier="fill", up_ms=1400.0, ms=1450.0)], [], 1.0, Cause.UNKNOWN,
     "no edge line joined"),
    ([], [], 1.0, Cause.UNKNOWN, "no edge line joined"),
])
def test_each_attribution_rule(lines, failovers, speed, cause, needle):
    a = attribution(lines, failovers=failovers, speed=speed)
    assert a.cause is cause, a.reason
    assert needle in a.reason
    assert a.waited_on == (1, 2) and a.deciding == 2   # audio and video in flight; the video ended the stall


def test_the_deciding_request_and_what_the_stall_waited_on():
    reqs = [cr("t/v/1.m4s", 9.0, 12.0), cr("t/a/1.m4s", 9.5, 11.0, ot="a"), cr("t/i/init.mp4", 10.5, 10.6, ot="i"),
            cr("t/v/2.m4s", 11.9, 13.0)]  # started in the stall, ended after it: waited on, not deciding
    a = attribution([el("t/v/1.m4s", cache="miss", tier="fill", ms=2900, up_ms=2900)], requests=reqs)
    assert (a.waited_on, a.deciding, a.cause) == ((0, 1, 2, 3), 0, Cause.FILL)
    # a stall still on when the session ended: the request that was to end it, the first to end after
    a = attribution([], requests=[cr("t/v/1.m4s", 11.0, 15.0), cr("t/v/2.m4s", 11.5, 16.0)])
    assert (a.deciding, a.cause) == (0, Cause.UNKNOWN)
    a = attribution([], requests=[cr("t/m.m3u8", 9.0, 12.0, ot="m")])
    assert (a.waited_on, a.deciding, a.cause) == ((), None, Cause.UNKNOWN)
    assert a.reason == "no media request in flight during the stall"


# --- tables --------------------------------------------------------------------------------------

def test_stall_totals_and_hit_ratios():
    j1 = join(session([cr(SEG, 9.0, 11.99)], [STALL], device="iphone"), FILLED + [el("t/a", size=500)])
    j2 = join(session([cr(SEG, 9.0, 11.99)], [Stall(10.0, 1.0), Stall(20.0, 1.0)], sid="s2", device="tv",
                      network="3g"),
              [el(SEG, sid="s2", cache="disk_hit", tier="disk", size=3000), el("t/x", sid="s2", status=403,
                                                                               cache="expired", tier="-")])
    totals = stall_totals(a for j in (j1, j2) for a in attribute(j))
    assert totals["fill"] == {"count": 1, "seconds": 2.0, "share": 0.5}
    assert totals["network"]["count"] == 1 and totals["unknown"]["count"] == 1  # the 20 s stall waited on nothing
    assert set(totals) == {c.value for c in Cause}
    by_device = hit_ratios([j1, j2], "device")
    assert by_device["iphone"]["request_hit_ratio"] == 0.5 and by_device["iphone"]["byte_hit_ratio"] == 0.3333
    assert by_device["tv"] == {"requests": 2, "hit_requests": 1, "fill_requests": 0, "other_requests": 1,
                               "hit_bytes": 3000, "fill_bytes": 0, "request_hit_ratio": 1.0, "byte_hit_ratio": 1.0}
    assert set(hit_ratios([j1, j2], "network")) == {"4g", "3g"}
    section = joined_section([j1, j2], files=[{"path": "x"}])
    assert section["stalls"]["by_cause"] == totals and section["stalls"]["sessions"] == 2
    assert section["stalls"]["by_device"]["tv"]["network"]["seconds"] == 1.0
    assert section["requests"] == {"sessions": 2, "client": 2, "matched": 2, "unmatched": 0, "not_to_edges": 0,
                                   "edge_lines": 4, "edge_lines_unmatched": 2,
                                   "by_ot": {"v": {"requests": 2, "matched": 2}}}
    stall = section["sessions"][0]["stalls"][0]
    assert stall["cause"] == "fill" and stall["waited_on"][0]["deciding"] and stall["waited_on"][0]["edge"]["up_ms"]
    json.dumps(section)


def test_segment_rows_put_the_client_side_beside_the_edge():
    seg = SegmentRecord(index=4, rung=1, bitrate_bps=730_000, label="360p", size_bytes=3000, requested_s=8.9,
                        done_s=12.0, ttfb_s=2.8, throughput_bps=8000.0, buffer_before_s=1.0, buffer_after_s=2.0,
                        rebuffer_s=2.0, pathway="edge-a", abandoned=0, reason="x")
    j = join(session([cr(SEG, 9.0, 11.99, size=3000), cr("t/a.m4s", 9, 10, ot="a")]), FILLED)
    (row,) = segment_rows(j, [seg])
    assert row["throughput_bps"] == round(8 * 3000 / 2.99) and row["buffer_before_s"] == 1.0 and row["rung"] == 1
    assert row["edge"]["tier"] == "fill" and row["edge"]["up_ms"] == 2800.0
    (row,) = segment_rows(j)
    assert "rung" not in row and row["buffer_s"] is None


def test_a_load_row_becomes_a_session_on_the_scenario_timeline():
    row = {"session_id": "load0000-000003", "device": "iphone", "network": "trace:x", "network_mix": "trace:dir",
           "requests": [["m", "http://s/m/tok/t/master.m3u8?session=x", "", 1.0, 0.1, 1.2, 100, 200, True],
                        ["v", "http://e/t/<token>/t/video/r/00001.m4s", "bytes=0-9", 1.5, 0.1, 2.0, 10, 206, False]],
           "stall_events": [[3.0, 0.5]],
           "failovers": [{"at_s": 2.5, "from": "a", "to": "b", "gap_s": 0.7, "cause": "ConnectError", "error": "e"}]}
    s = from_load_row(row, speed=4.0)
    assert s.network == "trace:dir" and s.speed == 4.0 and s.not_to_edges == 1
    assert s.requests == (ClientRequest(ot="v", key="t/video/r/00001.m4s", range="bytes=0-9", start_s=1.5, end_s=2.0,
                                        size_bytes=10, status=206, complete=False),)
    assert s.stalls == (Stall(3.0, 0.5),) and s.failovers[0] == Failover(at_s=2.5, gap_s=0.7, cause="ConnectError",
                                                                          error="e")


def test_read_edge_logs_from_offsets_keeps_whole_lines_of_the_sessions(tmp_path: Path):
    log = tmp_path / "edge-a.access.log"
    old = LINE.replace("sid=load0000-000001", "sid=s1") + "\n"    # an earlier run's line, same session id
    log.write_text(old)
    offsets = note_offsets([str(tmp_path / "*.access.log")])
    assert offsets == {str(log): len(old)}
    with log.open("a") as f:
        f.write(LINE.replace("sid=load0000-000001", "sid=s1") + "\n")
        f.write(LINE.replace("sid=load0000-000001", "sid=zz") + "\n")
        f.write("2026-12-04T20:37:41 INFO vodstack.up something else\n")
        f.write(LINE.replace("sid=load0000-000001", "sid=s1")[:60])  # being written: read next time
    lines, files = read_edge_logs([log, tmp_path / "gone.access.log"], {"s1"}, offsets)
    assert [(x.edge, x.sid) for x in lines] == [("edge-a", "s1")]
    assert files[0]["lines"] == 1 and files[0]["from_byte"] == len(old)
    assert files[1]["edge"] == "gone" and "error" in files[1]


def test_collect_waits_bounded_for_the_last_lines_and_says_so(tmp_path: Path):
    log = tmp_path / "edge-a.access.log"
    log.write_text(LINE.replace("sid=load0000-000001", "sid=s1").replace("/t1/video/r1/00003.m4s", "/t/a") + "\n")
    s = session([cr("t/a", 0, 1), cr("t/b", 1, 2)])
    section = asyncio.run(collect([str(log)], {}, [s], timeout_s=0.3, poll_s=0.05))
    assert section is not None and section["requests"]["matched"] == 1
    assert "no line for the last request of 1 of 1 sessions" in section["note"]
    idle = asyncio.run(collect([str(log)], note_offsets([str(log)]), [s], timeout_s=0.3, poll_s=0.05))
    assert idle is not None and "gained no line" in idle["note"] and "--access-log FILE" in idle["note"]
    assert asyncio.run(collect([str(tmp_path / "none-*.log")], {}, [s])) is None


# --- ITU-T P.1203 mode 0 input -------------------------------------------------------------------

#: The keys of the reference implementation's examples/mode0.json (github.com/itu-p1203/itu-p1203 v1.10.0).
P1203_KEYS = {"I11": {"segments", "streamId"}, "I13": {"segments", "streamId"}, "I23": {"stalling", "streamId"},
              "IGen": {"device", "displaySize", "viewingDistance"}}
P1203_AUDIO_SEGMENT = {"bitrate", "codec", "duration", "start"}
P1203_VIDEO_SEGMENT = {"bitrate", "codec", "duration", "fps", "resolution", "start"}


def played_report() -> SessionReport:
    ladder = [{"label": "234p avc1 145kbps", "nominal_bps": 145_000, "resolution": "416x234", "codec": "avc1.64000d"},
              {"label": "540p avc1 2000kbps", "nominal_bps": 2_000_000, "resolution": "960x540",
               "codec": "avc1.64001f"}]
    segs = [SegmentRecord(index=i, rung=min(i, 1), bitrate_bps=[145_000, 2_000_000][min(i, 1)], label="", size_bytes=1,
                          requested_s=i, done_s=i + 0.5, ttfb_s=0.1, throughput_bps=1e6, buffer_before_s=0,
                          buffer_after_s=1, rebuffer_s=0, pathway="a", abandoned=0, reason="") for i in range(4)]
    reqs = [RequestRecord(ot="a", url=f"http://e/t/x/t/audio/aac-128k/{n:05d}.m4s", range="", start_s=n, ttfb_s=0.1,
                          end_s=n + 0.2, size_bytes=32_000, status=200) for n in range(1, 5)]
    return SessionReport(ok=True, error=None, source="t", device="iphone", network="4g", abr="default", speed=1.0,
                         startup_s=1.5, played_s=8.0, content_s=8.0, session_s=12.0, segments=segs,
                         stalls=[StallRecord(at_s=4.5, duration_s=1.0), StallRecord(at_s=7.5, duration_s=0.5)],
                         tracks={"ladder": ladder, "audio": {"name": "English", "group": "aac-128k"}},
                         session_id="abc", requests=reqs)


def test_p1203_input_has_the_reference_shape():
    doc = p1203_input(played_report(), device=get_device("iphone"))
    assert {k: set(v) for k, v in doc.items()} == P1203_KEYS
    assert all(set(s) == P1203_VIDEO_SEGMENT for s in doc["I13"]["segments"])
    assert all(set(s) == P1203_AUDIO_SEGMENT for s in doc["I11"]["segments"])
    video = doc["I13"]["segments"]
    assert [(s["start"], s["duration"], s["bitrate"], s["resolution"], s["codec"]) for s in video[:2]] == [
        (0.0, 2.0, 145.0, "416x234", "h264"), (2.0, 2.0, 2000.0, "960x540", "h264")]
    assert all(isinstance(s["fps"], float) for s in video)
    assert [s["bitrate"] for s in doc["I11"]["segments"]] == [128.0] * 4   # 32 kB per 2 s
    # start-up is the stall at 0; then each stall where the media stopped: 4.5 - 1.5 = 3, 7.5 - 1.5 - 1 = 5
    assert doc["I23"]["stalling"] == [[0, 1.5], [3.0, 1.0], [5.0, 0.5]]
    assert doc["IGen"] == {"device": "mobile", "displaySize": "2556x1179", "viewingDistance": "150cm"}
    assert doc["I13"]["streamId"] == "abc"
    assert p1203_input(played_report(), device=get_device("tv-4k"))["IGen"]["device"] == "pc"
    json.dumps(doc)


@pytest.mark.parametrize("codec, name", [("avc1.64001f", "h264"), ("avc3.4d", "h264"), ("hvc1.1.6.L120.90", "h265"),
                                         ("hev1.2", "h265"), ("av01.0.08M.08", "av1"), ("vp09.00", "vp9"),
                                         (None, "h264")])
def test_p1203_codec_names(codec, name):
    assert p1203_codec(codec) == name


def test_p1203_video_segments_keep_their_own_start_and_duration():
    """A session that ended early (content_s is the planned length) with a short last segment: each
    segment's start_s and media_s, not the content's length split evenly."""
    report = played_report()
    report.content_s = 60.0
    for i, seg in enumerate(report.segments):
        seg.start_s, seg.media_s = 2.0 * i, (2.0 if i < 3 else 0.5)
    video = p1203_input(report)["I13"]["segments"]
    assert [(s["start"], s["duration"]) for s in video] == [(0.0, 2.0), (2.0, 2.0), (4.0, 2.0), (6.0, 0.5)]
