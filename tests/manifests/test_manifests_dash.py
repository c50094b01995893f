"""DASH MPDs: Title -> MPD -> Title round trips (hypothesis), what players need in the text, and hostile
MPDs, each refused with its one line (bounded time and memory, never a hang)."""
from __future__ import annotations

import time

import pytest
from hypothesis import given, settings

from manifest_samples import sample_title, titles
from manifests import Title
from manifests.dash import MAX_MPD_BYTES, DashSteering, MpdError, ServiceLocation, dumps_mpd
from manifests.dash_read import loads_mpd, loads_steered_mpd, parse_iso_duration
from manifests.hls import multivariant_from_title


def _segs(segments, timescale, sized):
    return [(s.path, s.offset_bytes, s.size_bytes if sized else None, s.duration_s) for s in segments]


def _same_segments(a, b, timescale, sized):
    assert [x[:3] for x in _segs(a, timescale, sized)] == [x[:3] for x in _segs(b, timescale, sized)]
    for x, y in zip(a, b):  # durations to the tick, the running sum kept exact
        assert abs(x.duration_s - y.duration_s) <= 2 / timescale


def _check_round_trip(title: Title, back: Title, trick_mode: bool) -> None:
    sized = title.layout == "byterange"
    assert back.layout == title.layout and back.duration_s == pytest.approx(title.duration_s, abs=1e-3)
    assert [v.id for v in back.video] == [v.id for v in sorted(title.video, key=lambda v: _family_order(title, v))]
    by_id = {v.id: v for v in back.video}
    for v in title.video:
        w = by_id[v.id]
        assert (w.codec, w.width, w.height, w.bandwidth_bps) == (v.codec, v.width, v.height, v.bandwidth_bps)
        assert w.frame_rate == pytest.approx(v.frame_rate, abs=5e-4)
        assert (w.init.path, w.init.offset_bytes) == (v.init.path, v.init.offset_bytes)
        if sized:
            assert w.init.size_bytes == v.init.size_bytes
        _same_segments(v.segments, w.segments, 90000, sized)
    audio = {a.id: a for a in back.audio}
    assert set(audio) == {a.id for a in title.audio}
    for a in title.audio:
        b = audio[a.id]
        assert (b.codec, b.language, b.name, b.channels, b.bandwidth_bps, b.default) == (
            a.codec, a.language, a.name, a.channels, a.bandwidth_bps, a.default)
        _same_segments(a.segments, b.segments, a.sample_rate_hz or 48000, sized)
    assert [(s.id, s.language, s.name, s.forced, s.sdh, s.default) for s in back.subtitles] == [
        (s.id, s.language, s.name, s.forced, s.sdh, s.default) for s in title.subtitles]
    for s, t in zip(title.subtitles, back.subtitles):
        _same_segments(s.segments, t.segments, 1000, False)
    if trick_mode:
        # one trick-mode set per video set (codec family), in the video sets' order
        family = {v.id: _family_order(title, v)[0] for v in title.video}
        assert [(i.rendition, i.bandwidth_bps) for i in back.iframes] == [
            (i.rendition, i.bandwidth_bps) for i in sorted(title.iframes, key=lambda i: family[i.rendition])]
        for i, j in zip(sorted(title.iframes, key=lambda i: family[i.rendition]), back.iframes):
            _same_segments(i.segments, j.segments, 90000, all(s.offset_bytes is not None for s in i.segments))
    else:
        assert back.iframes == ()


def _family_order(title: Title, v) -> tuple[int, int]:
    families = list(dict.fromkeys(x.codec_family for x in title.video))
    return families.index(v.codec_family), title.video.index(v)


@settings(max_examples=80, deadline=None)
@given(titles())
def test_title_to_mpd_to_title(title):
    _check_round_trip(title, loads_mpd(dumps_mpd(title)), trick_mode=False)


@settings(max_examples=30, deadline=None)
@given(titles())
def test_title_to_mpd_to_title_with_trick_mode(title):
    _check_round_trip(title, loads_mpd(dumps_mpd(title, trick_mode=True)), trick_mode=True)


@settings(max_examples=40, deadline=None)
@given(titles())
def test_hls_and_dash_describe_the_same_tracks_and_objects(title):
    """The MPD and the multivariant playlist of one title: the same video codecs and resolutions, the
    same audio languages, the same subtitles, and the MPD names only objects the HLS side names."""
    back = loads_mpd(dumps_mpd(title))
    mv = multivariant_from_title(title)
    assert {(v.codec, v.width, v.height) for v in back.video} == {
        (v.codecs.split(",")[0], *v.resolution) for v in mv.variants}
    assert {a.language for a in back.audio} == {m.language for m in mv.media if m.type == "AUDIO"}
    assert {s.language for s in back.subtitles} == {m.language for m in mv.media if m.type == "SUBTITLES"}
    hls_objects = set(title.all_paths())
    dash_objects = {p for t in (*back.video, *back.audio) for p in (t.init.path, *(s.path for s in t.segments))}
    dash_objects |= {s.path for t in back.subtitles for s in t.segments}
    assert dash_objects <= hls_objects


def test_the_mpd_text_carries_what_players_need():
    title = sample_title()
    text = dumps_mpd(title)
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<MPD xmlns="urn:mpeg:dash:schema:mpd:2011"')
    for needle in ('type="static"', 'profiles="urn:mpeg:dash:profile:isoff-live:2011,urn:mpeg:dash:profile:cmaf:2019"',
                   'mediaPresentationDuration="PT', 'minBufferTime="PT', 'contentType="video"', 'contentType="audio"',
                   'media="video/h264-360p/$Number%05d$.m4s"', 'initialization="video/h264-360p/init.mp4"',
                   '<SegmentTimeline>', 'codecs="avc1.64001e"', 'urn:mpeg:mpegB:cicp:ChannelConfiguration'):
        assert needle in text, needle
    # the label is the schema's element (dash.js and Shaka read it), not mpegdash's attribute
    assert "<Label>English</Label>" in text and " label=" not in text


STEERING = DashSteering(locations=(ServiceLocation(id="edge-a", url="http://127.0.0.1:1/t/tok/t1/"),
                                   ServiceLocation(id="edge-b", url="http://127.0.0.1:2/t/tok/t1/")),
                        server_uri="http://127.0.0.1:3/steer/t1?session=s&format=dash", default_location="edge-b")


def test_a_steered_mpd_names_its_service_locations_and_the_steering_server():
    title = sample_title()
    text = dumps_mpd(title, steering=STEERING)
    assert ('<ContentSteering defaultServiceLocation="edge-b" queryBeforeStart="true">'
            'http://127.0.0.1:3/steer/t1?session=s&amp;format=dash</ContentSteering>') in text
    assert text.index("<ContentSteering") < text.index('<BaseURL serviceLocation="edge-a">') < text.index("<Period")
    back = loads_steered_mpd(text)
    assert back.steering == STEERING and back.locations == STEERING.locations
    assert back.title == loads_mpd(dumps_mpd(title))  # paths stay relative to the location


def test_steering_a_stored_mpd_replaces_what_it_named_before():
    from manifests import EdgePathway, steer_mpd_text

    stored = dumps_mpd(sample_title())
    steered = steer_mpd_text(stored, [EdgePathway(id="edge-c", url="http://127.0.0.1:9")], token="tok", title="t1",
                             server_uri="http://s/steer/t1")
    again = steer_mpd_text(steered, [EdgePathway(id="edge-d", url="http://127.0.0.1:8/")], token="tok2",
                           title="t1", server_uri="http://s/steer/t1?x=1")
    first, second = loads_steered_mpd(steered), loads_steered_mpd(again)
    assert first.locations == (ServiceLocation(id="edge-c", url="http://127.0.0.1:9/t/tok/t1/"),)
    assert second.locations == (ServiceLocation(id="edge-d", url="http://127.0.0.1:8/t/tok2/t1/"),)
    assert second.steering.server_uri == "http://s/steer/t1?x=1" and second.steering.default_location == "edge-d"
    assert first.title == second.title == loads_mpd(stored)
    with pytest.raises(MpdError, match="no pathway"):
        steer_mpd_text(stored, [], token="t", title="t1", server_uri="http://s")
    with pytest.raises(MpdError, match="refused"):
        steer_mpd_text(BOMB, [EdgePathway(id="e", url="http://x")], token="t", title="t1", server_uri="http://s")


@pytest.mark.parametrize("text, expected", [
    ("PT6S", 6.0), ("PT1H2M3.5S", 3723.5), ("P1DT1S", 86401.0), ("PT0.005S", 0.005)])
def test_iso_durations(text, expected):
    assert parse_iso_duration(text, "x") == expected


MINIMAL = ('<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static" mediaPresentationDuration="{dur}">'
           '<Period><AdaptationSet contentType="video" mimeType="video/mp4">'
           '<Representation id="v" bandwidth="1000" codecs="avc1.64001e" width="640" height="360">'
           '{addressing}</Representation></AdaptationSet></Period></MPD>')
TEMPLATE = '<SegmentTemplate media="$Number$.m4s" initialization="init.mp4" timescale="1" {extra}/>'
BOMB = ('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;">'
        '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;">]><MPD>&lol3;</MPD>')
EXTERNAL = '<?xml version="1.0"?><!DOCTYPE MPD [<!ENTITY x SYSTEM "file:///etc/passwd">]><MPD>&x;</MPD>'


@pytest.mark.parametrize("text, message", [
    (BOMB, "MPD: refused: DTDForbidden (a DTD or entity)"),
    (EXTERNAL, "MPD: refused: DTDForbidden (a DTD or entity)"),
    ("<MPD", "MPD: not XML: "),
    ("<html/>", "MPD: no MPD element"),
    ('<MPD type="dynamic"/>', "MPD: type 'dynamic': only static (VOD) presentations are played"),
    (MINIMAL.format(dur="P9999D", addressing=TEMPLATE.format(extra='duration="2"')),
     "MPD: mediaPresentationDuration 8.63914e+08 s is not within (0, 604800] s"),
    (MINIMAL.format(dur="soon", addressing=""), "MPD: mediaPresentationDuration is not a duration: 'soon'"),
    (MINIMAL.format(dur="PT6S", addressing=TEMPLATE.format(extra='duration="1"').replace('timescale="1"', 'timescale="1000000000"')),
     "MPD: Representation v: the SegmentTemplate expands to more than 1000000 segments"),
    (MINIMAL.format(dur="PT6S", addressing=TEMPLATE.format(extra="").replace("/>", "><SegmentTimeline><S t=\"0\" d=\"1\" r=\"999999999\"/></SegmentTimeline></SegmentTemplate>")),
     "MPD: more than 1000000 segments"),
    (MINIMAL.format(dur="PT6S", addressing=TEMPLATE.format(extra='duration="0.5"')),
     "MPD: an attribute is malformed: invalid literal for int() with base 10: '0.5'"),
    (MINIMAL.format(dur="PT6S", addressing=TEMPLATE.format(extra="")),
     "MPD: Representation v: SegmentTemplate with neither SegmentTimeline nor @duration"),
    (MINIMAL.format(dur="PT6S", addressing="").replace(' bandwidth="1000"', ""), "MPD: Representation v: @bandwidth is missing"),
    (MINIMAL.format(dur="PT6S", addressing=""),
     "MPD: Representation v: no SegmentTemplate or SegmentList (SegmentBase with a sidx is not read)"),
])
def test_hostile_mpds_are_one_line_errors(text, message):
    started = time.process_time()
    with pytest.raises(MpdError) as e:
        loads_mpd(text)
    assert str(e.value).startswith(message) and "\n" not in str(e.value)
    assert time.process_time() - started < 5  # CPU seconds, not wall: nothing expanded millions of anything


def test_a_huge_mpd_is_refused_before_parsing():
    with pytest.raises(MpdError, match=f"more than the {MAX_MPD_BYTES} an MPD may have"):
        loads_mpd("<MPD>" + " " * MAX_MPD_BYTES + "</MPD>")
