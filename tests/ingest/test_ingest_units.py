"""Pure parts of the pipeline: chunk planning, ladder planning, RFC 6381 strings, --subs specs, commands."""
from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from origin.transcode.codecs import av01, avc1, hvc1
from origin.transcode.encode import VideoTask, drop_preroll_command, force_keyframes_expr, preroll_path, video_command
from origin.transcode.errors import LadderError, SubtitleError
from origin.transcode.ladder import audio_roles_for, ladder_from_dict, load_ladder, plan_audio, plan_video
from origin.transcode.split import plan_chunks, segment_boundaries
from origin.transcode.subtitles import parse_spec
from origin.transcode.validate import QualityTask


@settings(max_examples=200, deadline=None)
@given(frames=st.integers(1, 20_000), fps=st.sampled_from([Fraction(24000, 1001), Fraction(25), Fraction(30000, 1001),
                                                           Fraction(50), Fraction(60)]),
       seg=st.sampled_from([1.0, 2.0, 4.0, 6.0]), chunk_segs=st.integers(1, 15),
       keys=st.lists(st.floats(0, 600, allow_nan=False), max_size=20))
def test_chunks_tile_the_source_on_segment_boundaries(frames, fps, seg, chunk_segs, keys):
    bounds = segment_boundaries(frames, fps, seg)
    chunks = plan_chunks(frames, fps, seg, seg * chunk_segs, tuple(sorted(keys)))
    assert chunks[0].start_frame == 0 and chunks[-1].end_frame == frames
    for a, b in zip(chunks, chunks[1:]):
        assert a.end_frame == b.start_frame
    for c in chunks:
        assert c.start_frame in bounds and c.keyframes[0] == 0
        assert [c.start_frame + k for k in c.keyframes] == [b for b in bounds if c.start_frame <= b < c.end_frame]
        assert c.seek_s <= c.start_s + 1e-9
    # a chunk's pre-roll is the segment just before it
    assert chunks[0].preroll_frames == 0
    for c in chunks[1:]:
        i = bounds.index(c.start_frame)
        assert c.preroll_frames == bounds[i] - bounds[i - 1]


def test_last_sliver_joins_the_previous_segment():
    assert segment_boundaries(110, Fraction(25), 2.0) == [0, 50, 110]  # 0.4 s left over: not its own segment
    assert segment_boundaries(133, Fraction(25), 2.0) == [0, 50, 100, 133]


def test_force_keyframes_expression():
    regular = plan_chunks(200, Fraction(25), 2.0, 4.0)[0]
    assert force_keyframes_expr(regular) == "expr:eq(mod(n,50),0)"
    ntsc = plan_chunks(900, Fraction(30000, 1001), 1.0, 30.0)[0]  # 29.97 frames a segment: 509, not 510
    expr = force_keyframes_expr(ntsc)
    assert expr.startswith("expr:eq(n,0)+eq(n,30)+") and "+eq(n,509)+" in expr


def test_ladder_never_upscales_and_fits_top_codecs():
    ladder = load_ladder()
    ids = [r.id for r in plan_video(ladder, 1280, 720)]
    assert ids == ["h264-234p", "h264-270p", "h264-360p", "h264-432p", "h264-540p", "h264-720p", "hevc-720p", "av1-720p"]
    full = [r.id for r in plan_video(ladder, 3840, 2160)]
    assert "h264-1080p" in full and "hevc-2160p" in full and "av1-2160p" in full and "hevc-1080p" in full
    # a 4:3 source keeps the heights and takes its own widths
    r = plan_video(ladder, 640, 480)[0]
    assert (r.width, r.height) == (312, 234)
    assert [a.id for a in plan_audio(ladder, 2)] == ["aac-64k", "aac-128k"]
    assert [a.id for a in plan_audio(ladder, 6)] == ["aac-64k", "aac-128k", "ec3-448k"]
    by_id = {r.id: r for r in plan_video(ladder, 1920, 1080)}
    assert audio_roles_for(ladder, by_id["h264-234p"]) == ("low",)
    assert audio_roles_for(ladder, by_id["h264-1080p"], top=True) == ("high", "surround")
    assert "surround" in audio_roles_for(ladder, by_id["hevc-1080p"])
    assert all(r.devices for r in by_id.values())


@pytest.mark.parametrize("data, words", [
    ({}, "no [[video]] rungs"),
    ({"codecs": {"h264": {"encoder": "libx264"}}, "video": [{"id": "a", "codec": "vp9", "width": 1, "height": 1,
                                                           "bitrate_kbps": 1}]}, "has no [codecs.vp9]"),
    ({"codecs": {"h264": {"encoder": "libx264"}}, "video": [{"id": "a", "codec": "h264", "width": 1, "height": "x",
                                                           "bitrate_kbps": 1}]}, "'height' must be int"),
])
def test_bad_ladders(data, words):
    with pytest.raises(LadderError, match=words.replace("[", r"\[").replace("]", r"\]")):
        ladder_from_dict(data)


def test_rfc6381_strings():
    assert avc1(bytes([1, 0x64, 0x00, 0x1F, 0xFF])) == "avc1.64001f"
    # HEVC Main, level 3.1 (93), main tier, progressive + frame-only constraint flags (0xB0)
    hvcc = bytes([1, 0x01, 0x60, 0, 0, 0, 0xB0, 0, 0, 0, 0, 0, 93]) + bytes(10)
    assert hvc1(hvcc) == "hvc1.1.6.L93.B0"
    assert av01(bytes([0x81, 0x08, 0x0C, 0x00])) == "av01.0.08M.08"
    assert av01(bytes([0x81, 0x0D, 0xCC, 0x00])) == "av01.0.13H.10"


def test_subs_specs():
    s = parse_spec("fr:forced=/x/fr.vtt")
    assert (s.language, s.path, s.forced, s.sdh, s.track_id, s.display_name) == \
        ("fr", "/x/fr.vtt", True, False, "fr-forced", "Français (forced)")
    s = parse_spec("en:sdh,default=a=b.srt")
    assert s.sdh and s.default and s.path == "a=b.srt" and s.track_id == "en-sdh"
    assert parse_spec("pt-BR=x.srt").language == "pt-BR"
    for bad in ("fr", "=x.srt", "french!=x.srt", "fr:bold=x.srt"):
        with pytest.raises(SubtitleError):
            parse_spec(bad)


def _args_after(cmd: list[str], output: str) -> list[str]:
    """The options of one output of an ffmpeg command (from the previous output to ``output``)."""
    end = cmd.index(output)
    start = max([i for i in range(end) if cmd[i].endswith(".mp4") and cmd[i - 1] not in ("-i",)] + [0])
    return cmd[start:end]


def test_preroll_starts_low_rungs_a_segment_early_and_cuts_it_off():
    ladder = load_ladder()
    rungs = tuple(r for r in plan_video(ladder, 1920, 1080) if r.id in ("h264-234p", "h264-1080p"))
    chunk = plan_chunks(1500, Fraction(25), 4.0, 30.0)[1]  # frames 800..1500, the segment before: 700..800
    assert (chunk.start_frame, chunk.preroll_frames) == (800, 100)
    task = VideoTask(task_id="t", ffmpeg="ffmpeg", source="s.mp4", chunk=chunk, frame_rate=Fraction(25), rungs=rungs,
                     codecs=ladder.codecs, outputs=("/w/234.mp4", "/w/1080.mp4"), preroll=("h264-234p",))
    cmd = video_command(task)
    assert cmd[cmd.index("-ss") + 1] == "27.990000"  # one decode from frame 700 (a quarter frame early)
    graph = cmd[cmd.index("-filter_complex") + 1]
    # the pre-rolled rung takes every frame; the other skips the warm-up segment
    assert "[s0]scale=416:234" in graph and "[s1]trim=start_frame=100,setpts=N/FRAME_RATE/TB,scale=1920:1080" in graph
    low = _args_after(cmd, preroll_path("/w/234.mp4"))
    assert low[low.index("-frames:v") + 1] == "800" and low[low.index("-force_key_frames") + 1] == "expr:eq(mod(n,100),0)"
    high = _args_after(cmd, "/w/1080.mp4")
    assert high[high.index("-frames:v") + 1] == "700"
    cut = drop_preroll_command(task, rungs[0], "/w/234.mp4")
    assert cut[cut.index("-ss") + 1] == "4.000000" and cut[cut.index("-i") + 1] == preroll_path("/w/234.mp4")
    assert "copy" in cut and cut[-1] == "/w/234.mp4"
    # no pre-roll asked: the chunk alone, as before
    plain = video_command(VideoTask(task_id="t", ffmpeg="ffmpeg", source="s.mp4", chunk=chunk, frame_rate=Fraction(25),
                                    rungs=rungs, codecs=ladder.codecs, outputs=("/w/234.mp4", "/w/1080.mp4")))
    assert plain[plain.index("-ss") + 1] == "31.990000" and "trim" not in plain[plain.index("-filter_complex") + 1]


@settings(max_examples=200, deadline=None)
@given(start=st.integers(0, 3000), count=st.integers(1, 800), every=st.integers(1, 60))
def test_vmaf_samples_follow_the_title_frame_numbers(start, count, every):
    task = QualityTask(task_id="q", ffmpeg="ffmpeg", source="s", frame_rate=Fraction(25), source_size=(8, 8),
                       renditions=("r",), logs=("l",), subsample=every, start_frame=start, frame_count=count)
    assert task.sampled_frames == sum(1 for f in range(start, start + count) if f % every == 0)
