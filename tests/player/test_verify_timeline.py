"""The timestamp checks of media verification (client/verify_timeline.py), pure: offsets are not
errors, a gap or overlap of more than a frame is, once, at the segment where it happens; muxed audio
is held to continuity only; separate audio and video playlists stay within a video frame."""
from __future__ import annotations

from hypothesis import given, strategies as st

from client.verify_timeline import SegmentTimes, StreamTimes, TimelineCheck

VIDEO_FRAME_S = 0.04       # 25 fps
AAC_FRAME_S = 1024 / 48000  # 21.3 ms


def video(index: int, start_s: float, pts_s: float, *, duration_s: float = 2.0, rendition: str = "640x360",
          muxed_audio_pts_s: float | None = None, length_s: float | None = None, broken: bool = False) -> SegmentTimes:
    """Segment ``index`` of a variant playlist: the playlist says it starts at ``start_s``; its video's
    first pts is ``pts_s`` and it lasts ``length_s`` (default: the playlist's duration)."""
    streams = [StreamTimes("video", pts_s, pts_s + (duration_s if length_s is None else length_s), VIDEO_FRAME_S,
                           broken=broken)]
    if muxed_audio_pts_s is not None:  # interleaved by decode time: it starts before the video
        streams.append(StreamTimes("audio", muxed_audio_pts_s, muxed_audio_pts_s + duration_s, AAC_FRAME_S))
    return SegmentTimes(source="video", rendition=rendition, index=index, start_s=start_s, duration_s=duration_s,
                        streams=tuple(streams))


def audio(index: int, start_s: float, pts_s: float, *, duration_s: float = 2.0) -> SegmentTimes:
    return SegmentTimes(source="audio", rendition="en", index=index, start_s=start_s, duration_s=duration_s,
                        streams=(StreamTimes("audio", pts_s, pts_s + duration_s, AAC_FRAME_S),))


def run(segments: list[SegmentTimes]) -> list[list[str]]:
    check = TimelineCheck()
    return [check.check(s) for s in segments]


def test_an_mpeg_ts_offset_and_a_rendition_switch_are_not_errors():
    # ffmpeg's TS: video at 1.4 s + two frames of B-frame delay, muxed audio from the video's decode time
    segs = [video(0, 0.0, 1.48, muxed_audio_pts_s=1.4587, rendition="640x360"),
            video(1, 2.0, 3.48, muxed_audio_pts_s=3.4587, rendition="320x180"),
            video(2, 4.0, 5.48, muxed_audio_pts_s=5.4587, rendition="640x360")]
    assert run(segs) == [[], [], []]


def test_a_late_segment_is_a_gap_named_once_and_the_next_is_not_blamed():
    segs = [audio(i, 2.0 * i, 2.0 * i + (0.064 if i == 4 else 0.0)) for i in range(6)]
    assert run(segs) == [[], [], [], [],
                         ["audio seg 4 of en starts at 8.064 s, expected 8.000 s: gap of 64 ms"], [], ]


def test_tolerance_is_one_frame_of_the_stream_plus_a_millisecond():
    within = [audio(0, 0.0, 0.0), audio(1, 2.0, 2.0 + AAC_FRAME_S + 0.0009)]
    beyond = [audio(0, 0.0, 0.0), audio(1, 2.0, 2.0 + AAC_FRAME_S + 0.0011)]
    assert run(within) == [[], []]
    assert run(beyond)[1] == ["audio seg 1 of en starts at 2.022 s, expected 2.000 s: gap of 22 ms"]
    video_within = [video(0, 0.0, 10.0), video(1, 2.0, 12.0 - 0.040)]  # 40 ms early: one frame at 25 fps
    assert run(video_within) == [[], []]


def test_an_early_segment_is_an_overlap():
    segs = [video(0, 0.0, 0.08), video(1, 2.0, 1.98)]
    assert run(segs)[1] == ["video seg 1 of 640x360 starts at 1.900 s, expected 2.000 s: overlap of 100 ms"]


def test_a_truncated_segment_ends_short_and_the_next_is_not_blamed():
    segs = [video(0, 0.0, 0.0), video(1, 2.0, 2.0, length_s=1.04), video(2, 4.0, 4.0)]
    assert run(segs) == [[], ["video seg 1 of 640x360 ends at 3.040 s, expected 4.000 s: 960 ms short"], []]


def test_muxed_audio_is_held_to_continuity_not_to_the_playlist():
    # its segments start 80 ms before the video's (interleaved by decode time): fine
    clean = [video(i, 2.0 * i, 1.48 + 2.0 * i, muxed_audio_pts_s=1.40 + 2.0 * i) for i in range(1, 4)]
    assert run(clean) == [[], [], []]
    # audio spliced from another time into segment 2: a gap there, an overlap nowhere (not blamed again)
    spliced = [video(i, 2.0 * i, 1.48 + 2.0 * i, muxed_audio_pts_s=1.40 + 2.0 * i + (0.5 if i == 2 else 0.0))
               for i in range(1, 4)]
    assert run(spliced) == [[], ["audio in video seg 2 of 640x360 starts at 4.500 s, but seg 1 of 640x360 ended "
                                 "at 4.000 s: gap of 500 ms"], []]


def test_muxed_audio_starts_with_the_video_at_segment_zero():
    assert run([video(0, 0.0, 1.48, muxed_audio_pts_s=1.4587)]) == [[]]
    assert run([video(0, 0.0, 1.48, muxed_audio_pts_s=1.78)]) == [
        ["audio in video seg 0 of 640x360 starts 300 ms after the video (more than a video frame)"]]


def test_separate_audio_stays_within_a_video_frame_of_the_video():
    # HLS fMP4 from ffmpeg: video 80 ms late (B-frames), audio 58 ms (the same shift less AAC priming)
    in_sync = [video(0, 0.0, 0.08), audio(0, 0.0, 0.058), video(1, 2.0, 2.08), audio(1, 2.0, 2.058)]
    assert run(in_sync) == [[], [], [], []]
    late = [video(0, 0.0, 0.08), audio(0, 0.0, 0.38), video(1, 2.0, 2.08), audio(1, 2.0, 2.38)]
    assert run(late) == [[], ["audio lags video by 300 ms at 0.000 s (seen at audio seg 0 of en; more than a "
                              "video frame)"], [], []]


def test_a_desync_is_reported_once_not_at_every_segment():
    check = TimelineCheck()
    out = []
    for i in range(4):
        out.append(check.check(video(i, 2.0 * i, 2.0 * i)))
        out.append(check.check(audio(i, 2.0 * i, 2.0 * i - 0.2)))
    assert [p for p in out if p] == [
        ["audio leads video by 200 ms at 0.000 s (seen at audio seg 0 of en; more than a video frame)"]]


def test_segments_that_are_not_consecutive_are_not_compared():
    # verify every 2nd segment: 0, 2, 4 (a positional check only)
    segs = [audio(i, 2.0 * i, 2.0 * i) for i in (0, 2, 4)]
    assert run(segs) == [[], [], []]


def test_a_stream_that_did_not_decode_is_not_timed_and_its_neighbour_is_not_blamed():
    segs = [video(0, 0.0, 0.0), video(1, 2.0, 9.0, broken=True), video(2, 4.0, 4.0)]
    assert run(segs) == [[], [], []]


def test_muxed_audio_that_vanishes_is_missed():
    segs = [video(0, 0.0, 1.48, muxed_audio_pts_s=1.4587), video(1, 2.0, 3.48)]
    assert run(segs)[1] == ["video seg 1 of 640x360 has no audio (seg 0 of 640x360 had)"]


@given(offset_s=st.floats(-20, 20), durations=st.lists(st.floats(0.5, 10), min_size=2, max_size=12),
       frame_s=st.sampled_from([1 / 24, 1 / 30, 1 / 60, AAC_FRAME_S]), data=st.data())
def test_one_shifted_segment_is_one_problem_at_that_segment(offset_s, durations, frame_s, data):
    starts = [sum(durations[:i]) for i in range(len(durations))]

    def seg(i: int, shift_s: float) -> SegmentTimes:
        return SegmentTimes(source="video", rendition="r", index=i, start_s=starts[i], duration_s=durations[i],
                            streams=(StreamTimes("video", starts[i] + offset_s + shift_s,
                                                 starts[i] + offset_s + shift_s + durations[i], frame_s),))

    assert all(p == [] for p in run([seg(i, 0.0) for i in range(len(durations))]))
    k = data.draw(st.integers(1, len(durations) - 1))
    shift_s = data.draw(st.floats(frame_s + 0.002, 5.0)) * data.draw(st.sampled_from([1, -1]))
    problems = run([seg(i, shift_s if i == k else 0.0) for i in range(len(durations))])
    assert [i for i, p in enumerate(problems) if p] == [k]
    assert len(problems[k]) == 1 and f"video seg {k} of r starts at" in problems[k][0]
