"""Subtitle parsing (SRT, WebVTT) and WebVTT segmentation."""
from __future__ import annotations

import pytest

from manifests import Cue, SubtitleFormatError, parse_subtitles, segment_webvtt

SRT = """1
00:00:00,500 --> 00:00:01,500
Hello

2
00:00:01,800 --> 00:00:04,200
Across a boundary
two lines
"""

VTT = """WEBVTT - a title

NOTE a comment

intro
00:00.500 --> 00:01.500 line:90%
Bonjour

00:00:01.800 --> 00:00:04.200
Au revoir
"""


def test_parse_srt_and_webvtt_agree_on_timing():
    srt = parse_subtitles(SRT)
    vtt = parse_subtitles(VTT)
    assert [(c.start_s, c.end_s) for c in srt] == [(0.5, 1.5), (1.8, 4.2)] == [(c.start_s, c.end_s) for c in vtt]
    assert srt[1].text == "Across a boundary\ntwo lines"
    assert vtt[0].settings == "line:90%"


@pytest.mark.parametrize("text", ["", "hello world", "1\nnot a time\nx\n", "<tt xmlns='ttml'/>", "\x00\x01binary"])
def test_not_subtitles(text):
    with pytest.raises(SubtitleFormatError):
        parse_subtitles(text)


def test_segments_repeat_cues_that_overlap_boundaries():
    docs = segment_webvtt(parse_subtitles(SRT), [0.0, 2.0, 4.2, 5.0])
    assert len(docs) == 3
    for d in docs:
        assert d.startswith("WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:0,LOCAL:00:00:00.000\n")
    assert "Hello" in docs[0] and "Across" in docs[0]
    assert "Hello" not in docs[1] and "00:00:01.800 --> 00:00:04.200" in docs[1]
    assert "Across" not in docs[2]


def test_segment_round_trip_parses_back():
    cues = [Cue(start_s=3661.25, end_s=3662.0, text="late")]
    doc = segment_webvtt(cues, [3660.0, 3662.0])[0]
    assert parse_subtitles(doc) == cues
