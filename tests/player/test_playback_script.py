"""The viewer's script in the pure buffer model (`client.playback.PlaybackState`) and its parser
(`client.script`): start positions, seeks inside and outside the buffer, pauses, quitting.

Every case drives the state with explicit media-clock times: no clock, no I/O.
"""
from __future__ import annotations

import math

import pytest

from client.playback import PlaybackState
from client.script import PLAY_FROM_0, Pause, Position, ScriptError, Seek, ViewerScript, parse_position, parse_script


def script(**kw) -> ViewerScript:
    return ViewerScript(**kw)


def test_a_start_position_starts_the_buffer_there_and_watched_time_counts_from_play():
    st = PlaybackState(100.0, script=script(start=Position(fraction=0.4)))
    assert st.playhead_s == st.buffered_s == st.start_s == 40.0
    assert st.add(48.0, now_s=1.0, start_s=40.0)
    assert st.state == "playing" and st.started_at == 1.0
    assert st.level(4.0) == pytest.approx(5.0) and st.playhead_s == pytest.approx(43.0)
    assert st.watched_s == pytest.approx(3.0)


def test_a_start_position_near_the_end_keeps_a_second_to_play():
    st = PlaybackState(30.0, script=script(start=Position(at_s=45.0)))
    assert st.start_s == 29.0


def test_a_seek_forward_inside_the_buffer_moves_the_playhead_and_waits_for_nothing():
    st = PlaybackState(60.0, script=script(seeks=(Seek(at_s=3.0, to=Position(by_s=5.0)),)))
    st.add(20.0, now_s=1.0)
    assert st.level(4.0) == pytest.approx(20.0 - 8.0)  # at clock 4: watched 3, playhead 3 -> 8
    assert st.epoch == 0 and st.state == "playing"
    [e] = st.seeks
    assert (e.at_s, e.from_s, e.to_s, e.wait_s, e.flushed) == (pytest.approx(4.0), pytest.approx(3.0),
                                                                 pytest.approx(8.0), 0.0, False)
    assert st.watched_s == pytest.approx(3.0) and st.stalls == []


def test_a_seek_back_flushes_the_buffer_and_its_wait_is_not_a_stall():
    st = PlaybackState(60.0, script=script(seeks=(Seek(at_s=5.0, to=Position(at_s=0.0)),)))
    st.add(20.0, now_s=1.0)
    st.advance(6.5)  # the seek at clock 6 (watched 5)
    assert st.state == "seeking" and st.epoch == 1 and st.playhead_s == st.buffered_s == 0.0
    assert st.level(7.0) == 0.0 and st.stall_at is None
    assert st.add(4.0, now_s=7.5, start_s=0.0)
    assert st.state == "playing" and st.stalls == [] and st.stalled_s(7.5) == 0.0
    [e] = st.seeks
    assert e.flushed and e.at_s == pytest.approx(6.0) and e.wait_s == pytest.approx(1.5)
    assert st.level(9.5) == pytest.approx(2.0) and st.watched_s == pytest.approx(7.0)


def test_a_segment_that_lands_after_a_seek_moved_the_buffer_is_refused():
    st = PlaybackState(100.0, script=script(seeks=(Seek(at_s=1.0, to=Position(at_s=50.0)),)))
    st.add(8.0, now_s=0.0, start_s=0.0)
    st.advance(2.0)
    assert st.buffered_s == 50.0
    assert not st.add(12.0, now_s=2.5, start_s=8.0)  # downloaded for the old position
    assert st.buffered_s == 50.0 and st.state == "seeking"
    assert st.add(52.0, now_s=3.0, start_s=48.0)  # the segment holding the target
    assert st.state == "playing" and st.playhead_s == 50.0 and st.buffered_s == 52.0


def test_a_seek_waits_for_the_startup_buffer_again():
    st = PlaybackState(60.0, startup_s=4.0, script=script(seeks=(Seek(at_s=2.0, to=Position(at_s=30.0)),)))
    st.add(8.0, now_s=1.0)
    st.advance(3.0)
    st.add(32.0, now_s=3.5, start_s=28.0)
    assert st.state == "seeking"  # 2 s in, 4 s needed
    st.add(36.0, now_s=4.0, start_s=32.0)
    assert st.state == "playing" and st.seeks[0].wait_s == pytest.approx(1.0)


def test_a_pause_stops_the_playhead_and_the_buffer_may_fill_meanwhile():
    st = PlaybackState(60.0, script=script(pauses=(Pause(at_s=2.0, duration_s=10.0),)))
    st.add(20.0, now_s=1.0)
    assert st.level(5.0) == pytest.approx(18.0) and st.state == "paused"
    assert st.next_act_in_s(5.0) == pytest.approx(8.0)
    st.add(30.0, now_s=6.0)
    assert st.state == "paused" and st.playhead_s == pytest.approx(2.0)
    assert st.level(13.0) == pytest.approx(28.0) and st.level(14.0) == pytest.approx(27.0)  # ends at 13
    st.advance(20.0)
    assert st.playhead_s == pytest.approx(9.0) and st.state == "playing" and st.stalls == []
    assert st.pauses == [(pytest.approx(3.0), 10.0)] and st.watched_s == pytest.approx(9.0)


def test_a_pause_on_an_empty_buffer_turns_into_a_stall_when_it_ends():
    st = PlaybackState(60.0, script=script(pauses=(Pause(at_s=2.0, duration_s=5.0),)))
    st.add(2.0, now_s=1.0)
    st.advance(4.0)
    assert st.state == "paused"  # the pause came as the buffer ran out: no stall during it
    st.advance(9.0)
    assert st.state == "stalled" and st.stall_at == pytest.approx(8.0)
    st.add(6.0, now_s=10.0)
    assert st.stalls == [(pytest.approx(8.0), pytest.approx(2.0))]


def test_the_viewer_quits_at_the_watch_time():
    st = PlaybackState(60.0, script=script(watch_s=5.0, pauses=(Pause(at_s=1.0, duration_s=2.0),)))
    st.add(20.0, now_s=1.0)
    st.advance(30.0)
    assert st.state == "ended" and st.quit and st.ended_at == pytest.approx(8.0)
    assert st.watched_s == pytest.approx(5.0) and st.playhead_s == pytest.approx(5.0)
    assert st.next_act_in_s(31.0) == math.inf


def test_acts_at_the_same_watched_time_run_in_turn_pause_then_seek():
    st = PlaybackState(60.0, script=script(pauses=(Pause(at_s=2.0, duration_s=1.0),),
                                           seeks=(Seek(at_s=2.0, to=Position(by_s=4.0)),)))
    st.add(20.0, now_s=0.0)
    st.advance(2.5)
    assert st.state == "paused" and st.seeks == []
    st.advance(3.5)
    assert [(e.from_s, e.to_s) for e in st.seeks] == [(pytest.approx(2.0), pytest.approx(6.0))]
    assert st.playhead_s == pytest.approx(6.5)


def test_without_a_script_nothing_changes():
    a, b = PlaybackState(12.0, resume_s=2.0), PlaybackState(12.0, resume_s=2.0, script=PLAY_FROM_0)
    for st in (a, b):
        st.add(4.0, 1.0)
        st.advance(6.0)
        st.add(8.0, 8.0)
        st.add(12.0, 9.0)
        st.advance(30.0)
    assert a.stalls == b.stalls == [(5.0, 3.0)] and a.ended_at == b.ended_at == pytest.approx(16.0)
    assert a.watched_s == a.playhead_s == 12.0


@pytest.mark.parametrize("text, want", [
    ("90", Position(at_s=90.0)), ("40%", Position(fraction=0.4)), ("+30", Position(by_s=30.0)),
    ("-10", Position(by_s=-10.0)), (" 0 ", Position(at_s=0.0)),
])
def test_positions_parse(text, want):
    assert parse_position(text) == want


@pytest.mark.parametrize("kwargs, message", [
    ({"start": "+5"}, "position '+5': a start is seconds or a percentage, not a jump"),
    ({"start": "abc"}, "position 'abc': give seconds (90), a percentage (40%) or a jump (+30, -10)"),
    ({"start": "150%"}, "position 150% is not within the title"),
    ({"seeks": ["-@3"]}, "position '-': give seconds (90), a percentage (40%) or a jump (+30, -10)"),
    ({"seeks": ["30"]}, "seek '30': write it as VALUE@WATCHED_SECONDS, e.g. +30@60"),
    ({"seeks": ["30@x"]}, "seek '30@x': 'x' is not a number of watched seconds"),
    ({"seeks": ["30@-1"]}, "a seek at -1 s of watching: it must be >= 0"),
    ({"pauses": ["x@3"]}, "pause 'x@3': 'x' is not a number of seconds"),
    ({"pauses": ["0@3"]}, "a pause of 0 s at 3 s: both must be >= 0, the duration > 0"),
    ({"watch_s": 0.0}, "watch time 0 s: it must be > 0"),
])
def test_bad_scripts_are_one_line(kwargs, message):
    with pytest.raises(ScriptError) as e:
        parse_script(**kwargs)
    assert str(e.value) == message


def test_a_parsed_script_sorts_its_acts_and_says_what_it_is():
    s = parse_script(start="25%", seeks=["+30@60", "0@10"], pauses=["20@90"], watch_s=300.0)
    assert [x.at_s for x in s.seeks] == [10.0, 60.0] and not s.plays_from_0
    assert s.as_dict() == {"name": "scripted", "start": "25%", "watch_s": 300.0, "seeks": ["0@10", "+30@60"],
                           "pauses": ["20@90"]}
    assert parse_script() is PLAY_FROM_0 and PLAY_FROM_0.plays_from_0
