"""Debian's ffprobe/ffmpeg (``/usr/bin``, not the imageio build the pipeline uses) decode every
variant of a title through an edge with a valid token, in both layouts.

ffmpeg has no I-frame-playlist mode, so trick play is checked as a player uses it: each
``EXT-X-BYTERANGE`` of an I-frame playlist, asked of the edge with ``Range``, appended to the
init segment, must decode to exactly one picture.
"""
from __future__ import annotations

import json
import subprocess
from pathlib import Path
from urllib.parse import urljoin

import m3u8
import pytest
from interop_helpers import SOURCE_S, SUBTITLE_TEXT, TITLE, TITLE_BYTERANGE, http_get, need_tool, play, title_doc

LAYOUTS = [pytest.param(TITLE, "segments", id="segments"), pytest.param(TITLE_BYTERANGE, "byterange", id="byterange")]
FPS = 25
AAC_FRAMES = SOURCE_S * 48000 / 1024
#: ffmpeg's HLS demuxer says this at error level when a playlist names several hosts; harmless.
BENIGN = ("Cannot reuse HTTP connection for different host",)


def ffprobe(*args: str, timeout_s: float = 180) -> tuple[dict, list[str]]:
    exe = need_tool("ffprobe", "apt-get install ffmpeg")
    done = subprocess.run([exe, "-v", "error", "-of", "json", *args], capture_output=True, text=True, timeout=timeout_s)
    problems = [ln for ln in done.stderr.splitlines() if ln.strip() and not any(b in ln for b in BENIGN)]
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout), problems


@pytest.mark.parametrize(("title", "layout"), LAYOUTS)
def test_ffmpeg_decodes_every_variant_through_an_edge(stack, title, layout):
    doc = play(stack, title, session=f"ffmpeg-{layout}")
    url = doc["edge_multivariant_url"]
    status, body = http_get(url)
    assert status == 200
    master = m3u8.loads(body.decode(), uri=url)
    info, problems = ffprobe("-count_frames", "-show_entries",
                             "program=program_id:stream=index,codec_type,codec_name,width,height,nb_read_frames"
                             ":stream_tags=language", url)
    assert problems == [], "\n".join(problems[:20])
    # one program per EXT-X-STREAM-INF, each with its video and its audio group (en + fr)
    assert len(info["programs"]) == len(master.playlists) == 3
    for program, variant in zip(info["programs"], master.playlists):
        video = [s for s in program["streams"] if s["codec_type"] == "video"]
        audio = [s for s in program["streams"] if s["codec_type"] == "audio"]
        width, height = variant.stream_info.resolution
        assert [(s["codec_name"], s["width"], s["height"]) for s in video] == [("h264", width, height)]
        assert int(video[0]["nb_read_frames"]) == SOURCE_S * FPS, video
    streams = {s["index"]: s for s in info["streams"]}
    audio = [s for s in streams.values() if s["codec_type"] == "audio"]
    assert sorted(s["tags"]["language"] for s in audio) == ["en", "en", "fr", "fr"]
    for s in audio:
        assert s["codec_name"] == "aac" and abs(int(s["nb_read_frames"]) - AAC_FRAMES) <= 3, s


def test_ffprobe_reads_the_steered_playlist_of_every_pathway(stack):
    doc = play(stack, TITLE, session="ffprobe-steered")
    info, problems = ffprobe("-show_entries", "program=program_id:stream=index,codec_type,width", doc["multivariant_url"])
    assert problems == [], "\n".join(problems[:20])
    assert len(info["programs"]) == 3 * len(doc["pathways"])


@pytest.mark.parametrize(("title", "layout"), LAYOUTS)
def test_ffmpeg_decodes_subtitle_cues_through_an_edge(stack, title, layout):
    doc = play(stack, title, session=f"subs-{layout}")
    subs = {s["id"]: s["playlist"] for s in title_doc(doc)["subtitles"]}
    for lang, text in SUBTITLE_TEXT.items():
        url = urljoin(doc["edge_multivariant_url"], subs[lang])
        info, problems = ffprobe("-show_entries", "packet=pts_time", "-show_entries", "stream=codec_name",
                                 "-select_streams", "s", url)
        assert problems == []
        assert [s["codec_name"] for s in info["streams"]] == ["webvtt"]
        assert len(info["packets"]) >= SOURCE_S // 3  # one cue every 3 s (split at segment ends)
    exe = need_tool("ffmpeg", "apt-get install ffmpeg")
    url = urljoin(doc["edge_multivariant_url"], subs["fr"])
    done = subprocess.run([exe, "-v", "error", "-i", url, "-f", "srt", "-"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and SUBTITLE_TEXT["fr"] in done.stdout, done.stderr[-1000:]


@pytest.mark.parametrize(("title", "layout"), LAYOUTS)
def test_every_iframe_range_decodes_to_one_picture(stack, title, layout, tmp_path: Path):
    exe = need_tool("ffmpeg", "apt-get install ffmpeg")
    doc = play(stack, title, session=f"iframes-{layout}")
    status, body = http_get(doc["edge_multivariant_url"])
    master = m3u8.loads(body.decode(), uri=doc["edge_multivariant_url"])
    assert len(master.iframe_playlists) == 2
    for entry in master.iframe_playlists:
        url = urljoin(doc["edge_multivariant_url"], entry.uri)
        status, body = http_get(url)
        assert status == 200
        playlist = m3u8.loads(body.decode(), uri=url)
        init_map = playlist.segment_map[0]
        init = _ranged(urljoin(url, init_map.uri), init_map.byterange)
        for n, segment in enumerate(playlist.segments):
            picture = tmp_path / f"iframe-{n}.mp4"
            picture.write_bytes(init + _ranged(segment.absolute_uri, segment.byterange))
            done = subprocess.run([exe, "-v", "error", "-i", str(picture), "-map", "0:v", "-f", "framecrc", "-"],
                                  capture_output=True, text=True, timeout=60)
            frames = [ln for ln in done.stdout.splitlines() if ln and not ln.startswith("#")]
            # the range ends after the key frame; the demuxer notes the rest of the fragment is missing
            errors = [ln for ln in done.stderr.splitlines() if ln.strip() and "partial file" not in ln]
            assert done.returncode == 0 and len(frames) == 1 and errors == [], (segment.uri, done.stderr[-800:])


def _ranged(url: str, byterange: str | None) -> bytes:
    """The bytes of ``url`` that ``EXT-X-BYTERANGE``/``BYTERANGE`` value ``n@o`` names, asked of the edge with Range."""
    headers = {}
    if byterange:
        length, _, offset = byterange.partition("@")
        first = int(offset or 0)
        headers["Range"] = f"bytes={first}-{first + int(length) - 1}"
    status, body = http_get(url, headers=headers)
    assert status == (206 if byterange else 200), (url, status)
    if byterange:
        assert len(body) == int(byterange.partition("@")[0])
    return body


@pytest.mark.parametrize(("title", "layout"), LAYOUTS)
def test_ffmpeg_reads_the_mpd_from_an_origin_and_decodes_every_representation(stack, title, layout):
    """Debian's ffprobe reads ``manifest.mpd`` over HTTP from a real origin (its dash demuxer: the
    SegmentTemplate+SegmentTimeline of the segments layout, the SegmentList with mediaRange of the
    byte-range one) and decodes every frame of every Representation: the H.264 rungs, en/fr AAC,
    en/fr WebVTT, and the trick-mode Representations (ffmpeg ignores their EssentialProperty and
    lists them as video streams: each decodes to one key frame per segment, its key chunk)."""
    url = f"{stack.url_of('origin-lab-east')}/{title}/manifest.mpd"
    status, body = http_get(url)
    assert status == 200
    status, doc = http_get(f"{stack.url_of('origin-lab-east')}/{title}/title.json")
    stored = json.loads(doc)
    rungs = sorted((v["width"], v["height"]) for v in stored["video"])
    segments = len(stored["video"][0]["segments"])
    assert len(stored["iframes"]) == len(rungs)
    info, problems = ffprobe("-show_entries", "stream=index,codec_type,codec_name,width,height:stream_tags=language",
                             url)
    assert problems == [], "\n".join(problems[:20])
    streams = info["streams"]
    video = sorted((s["width"], s["height"]) for s in streams if s["codec_type"] == "video")
    assert [s["codec_name"] for s in streams if s["codec_type"] == "video"] == ["h264"] * 2 * len(rungs)
    assert video == sorted(rungs * 2) and len(rungs) >= 2
    audio = [s for s in streams if s["codec_type"] == "audio"]
    text = [s for s in streams if s["codec_type"] == "subtitle"]
    assert sorted((s["codec_name"], s["tags"]["language"]) for s in audio) == sorted(
        ("aac", a["language"]) for a in stored["audio"])
    assert {s["tags"]["language"] for s in audio} == {"en", "fr"}
    assert sorted((s["codec_name"], s["tags"]["language"]) for s in text) == [("webvtt", "en"), ("webvtt", "fr")]
    # every Representation decoded on its own, every frame (ffprobe reading all streams of a DASH
    # input at once stops early once its WebVTT streams end: measured, Debian's ffmpeg 5.1)
    video_frames = []
    for s in streams:
        counted, problems = ffprobe("-count_frames", "-select_streams", str(s["index"]),
                                    "-show_entries", "stream=index,nb_read_frames", url, timeout_s=300)
        assert problems == [], "\n".join(problems[:20])
        frames = int(counted["streams"][0]["nb_read_frames"])
        if s["codec_type"] == "video":
            video_frames.append(frames)
        elif s["codec_type"] == "audio":
            assert abs(frames - AAC_FRAMES) <= 3, s
    assert sorted(video_frames) == [segments] * len(rungs) + [SOURCE_S * FPS] * len(rungs)
    # the subtitles, as ffmpeg writes them out of the MPD: the right text in the right language, in
    # order. Only the first cues: Debian's ffmpeg 5.1 reads the first two WebVTT segments of a DASH
    # text Representation and stops (its HLS demuxer reads them all from the same files; the browser
    # players' tests check subtitles over the whole title)
    exe = need_tool("ffmpeg", "apt-get install ffmpeg")
    for n, s in enumerate(text):
        done = subprocess.run([exe, "-v", "error", "-i", url, "-map", f"0:s:{n}", "-f", "webvtt", "-"],
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]
        cues = [ln for ln in done.stdout.splitlines() if SUBTITLE_TEXT[s["tags"]["language"]] in ln]
        assert cues[:2] == [f"{SUBTITLE_TEXT[s['tags']['language']]} #{i}" for i in (1, 2)], done.stdout[:2000]
    # and ffmpeg decodes the lot without a complaint
    done = subprocess.run([exe, "-v", "error", "-i", url, "-map", "0:v", "-map", "0:a", "-f", "null", "-"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stderr.strip() == "", done.stderr[-2000:]
