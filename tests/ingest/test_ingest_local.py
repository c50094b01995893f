"""End to end: the real ``vodstack ingest`` into a temp folder, checked from the published files."""
from __future__ import annotations

import hashlib
import json
import posixpath
from pathlib import Path

import m3u8

from conftest import CLIP_FLAGS, SRT
from ingest_checks import check_published_title
from manifests import loads_title, parse_subtitles


def test_clip_is_published_whole_and_playable(ingested_local, tmp_path):
    root: Path = ingested_local["root"]
    facts = check_published_title(root, tmp_path)
    title = facts["title"]
    # the default ladder on a 480x270 source: H.264 up to 270p, never upscaled; HEVC and AV1 fitted to it
    assert [v.id for v in title.video] == ["h264-234p", "h264-270p", "hevc-270p", "av1-270p"]
    assert {v.codec_family for v in title.video} == {"h264", "hevc", "av1"}
    assert all(v.height <= 270 for v in title.video)
    # keyframes at every segment boundary, the same in every rendition, from presentation time 0
    # (the init segment's edit list takes out the B-frame delay; check_published_title also checks
    # that every video and audio track starts at 0, within a frame of each other)
    boundaries = [0.0, 2.0]
    for rid, keys in facts["keyframes"].items():
        assert keys == boundaries, rid
    # segments: durations within the target, sum to the title's duration
    for v in title.video:
        assert [s.duration_s for s in v.segments] == [2.0, 2.0]
        assert v.bandwidth_bps >= v.average_bandwidth_bps > 0
        assert v.vmaf is not None and v.vmaf > 15
    # two languages x two AAC bitrates, grouped, one default per group
    groups = title.audio_groups()
    assert set(groups) == {"aud-aac-64k", "aud-aac-128k"}
    for tracks in groups.values():
        assert sorted(a.language for a in tracks) == ["en", "fr"]
        assert [a.default for a in tracks].count(True) == 1
    # the multivariant playlist: CODECS video+audio, AVERAGE-BANDWIDTH measured, every audio group used
    master = facts["master"]
    used_groups = set()
    for p in master.playlists:
        si = p.stream_info
        v = next(v for v in title.video if v.playlist == p.uri)
        assert si.codecs.split(",")[0] == v.codec and "mp4a.40.2" in si.codecs
        assert si.resolution == (v.width, v.height) and si.frame_rate == 25
        assert si.average_bandwidth > v.average_bandwidth_bps and si.bandwidth > v.bandwidth_bps
        used_groups.add(si.audio)
    assert used_groups == set(groups)
    text = (root / "master.m3u8").read_text()
    assert text.count("#EXT-X-I-FRAME-STREAM-INF") == 4
    assert 'TYPE=SUBTITLES,GROUP-ID="subs",LANGUAGE="fr",NAME="Français (forced)",DEFAULT=NO,AUTOSELECT=YES,FORCED=YES' in text


def test_iframe_playlists_point_at_keyframes(ingested_local, tmp_path):
    root: Path = ingested_local["root"]
    title = loads_title((root / "title.json").read_text())
    for i in title.iframes:
        doc = m3u8.loads((root / i.playlist).read_text())
        assert doc.is_i_frames_only and len(doc.segments) == 2
        init = (root / title.rendition(i.rendition).init.path).read_bytes()
        for seg in doc.segments:
            length, _, off = seg.byterange.partition("@")
            data = (root / posixpath.dirname(i.playlist) / seg.uri).resolve().read_bytes()[int(off):int(off) + int(length)]
            one = tmp_path / "iframe.mp4"
            one.write_bytes(init + data)
            from ingest_checks import ffprobe_json

            frames = ffprobe_json(one, "-select_streams", "v:0", "-show_entries", "packet=flags")["packets"]
            assert frames and "K" in frames[0]["flags"]


def test_subtitles_are_cut_on_segments_and_keep_their_times(ingested_local):
    root: Path = ingested_local["root"]
    title = loads_title((root / "title.json").read_text())
    en = next(s for s in title.subtitles if s.id == "en")
    assert not en.forced and [s.duration_s for s in en.segments] == [2.0, 2.0]
    source = parse_subtitles(SRT)
    seen = []
    for n, seg in enumerate(en.segments):
        text = (root / seg.path).read_text()
        assert text.startswith("WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:0,LOCAL:00:00:00.000")
        cues = parse_subtitles(text)
        start, end = 2.0 * n, 2.0 * (n + 1)
        assert cues == [c for c in source if c.start_s < end and c.end_s > start]
        seen += cues
    assert {(c.start_s, c.end_s, c.text) for c in seen} == {(c.start_s, c.end_s, c.text) for c in source}
    fr = next(s for s in title.subtitles if s.id == "fr-forced")
    assert fr.forced and fr.language == "fr"
    playlist = m3u8.loads((root / en.playlist).read_text())
    assert [s.uri for s in playlist.segments] == ["00001.vtt", "00002.vtt"]


def test_json_summary(ingested_local):
    result = ingested_local["result"]
    assert result["title"] == "clip" and result["layout"] == "segments"
    assert [v["id"] for v in result["video"]] == ["h264-234p", "h264-270p", "hevc-270p", "av1-270p"]
    assert set(result["timings_s"]) >= {"probe", "encode", "merge", "validate", "package", "publish"}


def _hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_rerun_is_idempotent(ingested_local, clip, subs_files, run_ingest):
    out: Path = ingested_local["out"]
    before = _hashes(out)
    proc = run_ingest(str(clip), "--title", "clip", "--out", str(out), "--subs", f"en={subs_files['en']}",
                      "--subs", f"fr:forced={subs_files['fr']}", *CLIP_FLAGS)
    assert proc.returncode == 0, proc.stderr
    assert _hashes(out) == before
    assert json.loads(proc.stdout)["objects"] == len(before)
