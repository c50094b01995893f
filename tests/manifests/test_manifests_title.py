"""title.json: round trip, tolerance of added fields, clear errors."""
from __future__ import annotations

import json

import pytest
from hypothesis import given, settings

from manifests import TitleFormatError, dumps_title, loads_title, measured_bandwidth, Segment

from manifest_samples import sample_title as _sample_title, titles


@settings(max_examples=50, deadline=None)
@given(titles())
def test_title_json_round_trip(title):
    assert loads_title(dumps_title(title)) == title


def test_title_json_keeps_the_published_names():
    data = json.loads(dumps_title(_sample_title()))
    assert data["format"] == "vodstack-title/1"
    assert set(data) >= {"title", "duration_s", "segment_duration_s", "layout", "video", "audio", "subtitles", "iframes"}
    v = data["video"][0]
    assert set(v) >= {"id", "codec", "codec_family", "width", "height", "frame_rate", "hdr", "bandwidth_bps",
                      "average_bandwidth_bps", "nominal_bitrate_kbps", "vmaf", "devices", "playlist", "init", "segments"}
    assert v["init"] == {"path": "video/h264-360p/init.mp4", "size_bytes": 800, "offset_bytes": None}
    assert v["segments"][0] == {"path": "video/h264-360p/00001.m4s", "duration_s": 2.0, "size_bytes": 150000,
                                "offset_bytes": None}
    a = data["audio"][0]
    assert set(a) >= {"id", "codec", "language", "name", "channels", "bitrate_kbps", "group", "default",
                      "bandwidth_bps", "average_bandwidth_bps", "playlist", "init", "segments"}
    s = data["subtitles"][0]
    assert set(s) >= {"id", "language", "name", "forced", "sdh", "playlist", "segments"}
    assert set(data["iframes"][0]) >= {"rendition", "playlist", "bandwidth_bps"}


def test_unknown_fields_are_ignored():
    data = json.loads(dumps_title(_sample_title()))
    data["future"] = 1
    data["video"][0]["future"] = {"x": 1}
    assert loads_title(json.dumps(data)) == _sample_title()


@pytest.mark.parametrize("text", ["", "{", "[]", '{"format": "other"}', '{"format": "vodstack-title/1"}'])
def test_bad_title_json(text):
    with pytest.raises(TitleFormatError):
        loads_title(text)


def test_measured_bandwidth():
    segs = [Segment(path="a", duration_s=2.0, size_bytes=250_000), Segment(path="b", duration_s=1.0, size_bytes=50_000)]
    assert measured_bandwidth(segs) == (1_000_000, 800_000)
    assert measured_bandwidth([]) == (0, 0)


def test_a_tiny_last_segment_is_not_the_peak():
    """An AAC track ends with a ~5 ms segment of 191 bytes (286 kbit/s on its own): RFC 8216bis
    measures the peak over runs of 0.5-1.5 target durations, so the peak stays near the track's own rate."""
    segs = [Segment(path=f"{n}", duration_s=2.005333, size_bytes=16_664) for n in range(3)]
    segs.append(Segment(path="3", duration_s=0.005333, size_bytes=191))
    peak, average = measured_bandwidth(segs)
    assert peak == round((16_664 + 191) * 8 / (2.005333 + 0.005333))  # the last whole one and the tiny one
    assert average < peak < 70_000  # the old rule said 286,500
    assert measured_bandwidth([Segment(path="a", duration_s=0.2, size_bytes=1000)]) == (40_000, 40_000)
