"""Trace and manifest loaders on the real shared files and on malformed ones."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from manifests import Title, dumps_mpd
from vodstack.sample import build_synthetic_title
from client.sim.manifests import ManifestError, load_video
from client.traces import Trace, TraceError, load_trace, load_traces


def test_pensieve_trace_follows_fixed_env(traces_dir: Path) -> None:
    path = traces_dir / "pensieve_hsdpa" / "bus.ljansbakken-oslo-report.2010-09-28_1407CEST.log"
    trace = load_trace(path)
    rows = [line.split() for line in path.read_text().splitlines() if line.strip()]
    assert len(trace.durations_s) == len(rows) - 1
    assert trace.durations_s[0] == pytest.approx(float(rows[1][0]) - float(rows[0][0]))
    assert trace.bandwidths_bps[0] == pytest.approx(float(rows[1][1]) * 1e6)  # line i covers (t[i-1], t[i]]
    assert trace.latencies_s is None


def test_sabre_trace_units(traces_dir: Path) -> None:
    path = traces_dir / "sabre" / "network.json"
    trace = load_trace(path)
    assert trace.durations_s == (30.0, 30.0, 30.0, 30.0)
    assert trace.bandwidths_bps == (5e6, 3e6, 1.5e6, 3e6)
    assert trace.latencies_s == (0.075, 0.15, 0.2, 0.15)


@pytest.mark.parametrize("folder, count", [("pensieve_hsdpa", 68), ("pensieve_fcc", 47), ("sabre/3Glogs_dev", 68)])
def test_load_a_folder(dev_traces_dir: Path, folder: str, count: int) -> None:
    traces = load_traces(dev_traces_dir / folder)
    assert len(traces) == count
    assert all(t.duration_s > 0 and t.mean_bandwidth_bps > 0 for t in traces)


def test_load_several_paths(dev_traces_dir: Path) -> None:
    traces = load_traces([dev_traces_dir / "sabre" / "network.json", dev_traces_dir / "pensieve_fcc"])
    assert len(traces) == 48


@pytest.mark.parametrize("name, text, fragment", [
    ("words.log", "0.0\t1.0\nhello world\n", "not numbers"),
    ("cols.log", "0.0\t1.0\t3\n", "expected"),
    ("back.log", "0.0\t1.0\n2.0\t1.0\n1.0\t1.0\n", "does not increase"),
    ("neg.log", "0.0\t1.0\n1.0\t-1\n", ">= 0"),
    ("zero.log", "0.0\t0\n1.0\t0\n", "no data"),
    ("short.log", "0.0\t1.0\n", "at least 2"),
    ("bad.json", "[{\"duration_ms\": 10}", "invalid JSON"),
    ("keys.json", "[{\"duration_ms\": 10}]", "bandwidth_kbps"),
    ("empty.json", "[]", "non-empty"),
    ("binary.log", b"\xff\xfe\x00".decode("latin-1"), "cannot read"),
])
def test_malformed_traces_raise_a_one_line_error_naming_the_file(tmp_path: Path, name: str, text: str, fragment: str) -> None:
    path = tmp_path / name
    if name == "binary.log":
        path.write_bytes(b"\xff\xfe\x00\x81")
    else:
        path.write_text(text)
    with pytest.raises(TraceError) as info:
        load_traces(path)
    message = str(info.value)
    assert str(path) in message and fragment in message and "\n" not in message
    assert isinstance(info.value, ValueError)


def test_missing_trace_path(tmp_path: Path) -> None:
    with pytest.raises(TraceError, match="no such"):
        load_traces(tmp_path / "nope")


def test_constant_trace() -> None:
    t = Trace.constant(2e6, 10.0)
    assert t.mean_bandwidth_bps == 2e6 and t.total_bytes == 2.5e6


# --- manifests ---------------------------------------------------------------------------------

def test_pensieve_chunk_table(traces_dir: Path) -> None:
    video = load_video(traces_dir / "pensieve_video" / "video_chunk_sizes.csv")
    assert video.ladder_bps == (300_000, 750_000, 1_200_000, 1_850_000, 2_850_000, 4_300_000)
    assert video.segments == 48 and video.segment_duration_s == 4.0
    assert video.sizes_bytes[0] == (181801, 450283, 668286, 1034108, 1728879, 2354772)


def test_sabre_manifest_matches_the_chunk_table(traces_dir: Path) -> None:
    table = load_video(traces_dir / "pensieve_video" / "video_chunk_sizes.csv")
    sabre = load_video(traces_dir / "pensieve_video" / "pensieve_envivio_sabre_manifest.json")
    assert sabre.ladder_bps == table.ladder_bps and sabre.sizes_bytes == table.sizes_bytes
    bbb = load_video(traces_dir / "sabre" / "bbb.json")
    assert bbb.segments == 199 and bbb.segment_duration_s == 3.0 and len(bbb.ladder_bps) == 10


def title_json(tmp_path: Path) -> Path:
    def rung(rid: str, codec: str, peak: int, avg: int, sizes: list[int]) -> dict:
        return {"id": rid, "codec": codec, "width": 1280, "height": 720, "frame_rate": 30.0,
                "bandwidth_bps": peak, "average_bandwidth_bps": avg,
                "segments": [{"path": f"video/{rid}/{i:05d}.m4s", "duration_s": 4.0, "size_bytes": s}
                             for i, s in enumerate(sizes)]}
    obj = {"format": "vodstack-title/1", "title": "demo", "duration_s": 8.0, "segment_duration_s": 4.0,
           "video": [rung("high", "avc1.640028", 3_000_000, 2_500_000, [1_250_000, 1_200_000]),
                     rung("hevc", "hvc1.1.6.L93", 2_000_000, 1_500_000, [750_000, 700_000]),
                     rung("low", "avc1.42c01e", 900_000, 700_000, [350_000, 340_000])],
           "audio": [], "subtitles": []}
    path = tmp_path / "title.json"
    path.write_text(json.dumps(obj))
    return path


def test_title_json_takes_one_codec_family_sorted(tmp_path: Path) -> None:
    path = title_json(tmp_path)
    avc = load_video(path)
    assert avc.rung_ids == ("low", "high") and avc.ladder_bps == (700_000, 2_500_000)
    assert avc.sizes_bytes == ((350_000, 1_250_000), (340_000, 1_200_000))
    hevc = load_video(path, codec="hvc1")
    assert hevc.rung_ids == ("hevc",)
    with pytest.raises(ManifestError, match="no video rendition with codec vp09"):
        load_video(path, codec="vp09")


@pytest.mark.parametrize("text, fragment", [
    ("{", "invalid JSON"),
    ("[1, 2]", "JSON object"),
    ('{"hello": 1}', "not a Sabre manifest"),
    ('{"segment_sizes_bits": [[1]], "bitrates_kbps": [1]}', "segment_duration_ms"),
    ('{"format": "vodstack-title/1", "segment_duration_s": 4, "video": [{"codec": "avc1"}]}', "renditions need"),
])
def test_malformed_manifests(tmp_path: Path, text: str, fragment: str) -> None:
    path = tmp_path / "m.json"
    path.write_text(text)
    with pytest.raises(ManifestError) as info:
        load_video(path)
    assert str(path) in str(info.value) and fragment in str(info.value)


def test_malformed_chunk_table(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("chunk_index,bytes_300kbps\n1,abc\n")
    with pytest.raises(ManifestError, match="integers"):
        load_video(path)


def _byterange(title: Title) -> Title:
    """The same title in the byte-range layout: every track's segments are ranges of one file."""
    def ranged(track):
        at, segs = track.init.size_bytes, []
        for s in track.segments:
            segs.append(replace(s, path=f"{track.playlist.rsplit('/', 1)[0]}/media.mp4", offset_bytes=at))
            at += s.size_bytes
        path = segs[0].path
        return replace(track, init=replace(track.init, path=path, offset_bytes=0), segments=tuple(segs))
    return replace(title, layout="byterange", video=tuple(ranged(v) for v in title.video),
                   audio=tuple(ranged(a) for a in title.audio), subtitles=())


def test_an_mpd_is_the_same_video_as_its_title_json(tmp_path: Path) -> None:
    model = build_synthetic_title(tmp_path, "demo", duration_s=24.0)
    root = tmp_path / "demo"
    from_json = load_video(root / "title.json")
    # SegmentTemplate: the MPD names the files, the title.json beside it gives their sizes
    assert load_video(root / "manifest.mpd") == from_json
    # SegmentList with byte ranges: the sizes are in the MPD itself, no title.json needed
    alone = tmp_path / "alone"
    alone.mkdir()
    (alone / "manifest.mpd").write_text(dumps_mpd(_byterange(model)))
    assert load_video(alone / "manifest.mpd") == from_json
    hevc = load_video(alone / "manifest.mpd", codec="hvc1")
    assert hevc.rung_ids and all(r.startswith("hevc") for r in hevc.rung_ids)


def test_an_mpd_whose_sizes_cannot_be_had_is_one_error(tmp_path: Path) -> None:
    build_synthetic_title(tmp_path, "demo", duration_s=24.0)
    root = tmp_path / "demo"
    mpd = root / "manifest.mpd"
    lonely = tmp_path / "lonely.mpd"
    lonely.write_text(mpd.read_text())
    with pytest.raises(ManifestError, match="no segment sizes and there is no title.json beside it"):
        load_video(lonely)
    # a title.json of another version (other segment files) does not lend its sizes
    other = tmp_path / "other"
    build_synthetic_title(other, "demo", duration_s=12.0)
    (other / "demo" / "manifest.mpd").write_text(mpd.read_text())
    with pytest.raises(ManifestError, match="does not describe the segments of Representation"):
        load_video(other / "demo" / "manifest.mpd")
    bomb = tmp_path / "bomb.mpd"
    bomb.write_text('<?xml version="1.0"?><!DOCTYPE MPD [<!ENTITY a "aaaa">]><MPD>&a;</MPD>')
    with pytest.raises(ManifestError) as info:
        load_video(bomb)
    assert str(bomb) in str(info.value) and "\n" not in str(info.value)
