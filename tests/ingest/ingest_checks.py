"""Checks the ingest tests share: read a published title back from a folder and look at it with
tools none of us wrote (Debian's ffprobe/ffmpeg when present, else the imageio one)."""
from __future__ import annotations

import json
import os
import posixpath
import shutil
import subprocess
from pathlib import Path
from typing import Callable

import m3u8

from manifests import loads_mpd, loads_title

SYSTEM_FFPROBE = "/usr/bin/ffprobe" if os.path.exists("/usr/bin/ffprobe") else shutil.which("ffprobe")
SYSTEM_FFMPEG = "/usr/bin/ffmpeg" if os.path.exists("/usr/bin/ffmpeg") else None


def assemble(root: Path, playlist_path: str, dest: Path) -> Path:
    """Init + every segment of a media playlist, concatenated into one playable file."""
    text = (root / playlist_path).read_text()
    doc = m3u8.loads(text)
    base = posixpath.dirname(playlist_path)
    chunks = []
    init = doc.segments[0].init_section
    if init is not None:
        chunks.append(_read(root, base, init.uri, init.byterange))
    end = None
    for seg in doc.segments:
        chunks.append(_read(root, base, seg.uri, seg.byterange, end))
        if seg.byterange:
            length, _, off = seg.byterange.partition("@")
            end = (int(off) if off else end) + int(length)
    dest.write_bytes(b"".join(chunks))
    return dest


def _read(root: Path, base: str, uri: str, byterange: str | None, previous_end: int | None = None) -> bytes:
    data = (root / posixpath.normpath(posixpath.join(base, uri))).read_bytes()
    if not byterange:
        return data
    length, _, off = byterange.partition("@")
    start = int(off) if off else (previous_end or 0)
    return data[start:start + int(length)]


def ffprobe_json(path: str | Path, *args: str) -> dict:
    out = subprocess.run([SYSTEM_FFPROBE, "-v", "error", "-of", "json", *args, str(path)], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def decode_errors(path: str | Path, ffmpeg: str | None = None) -> str:
    exe = ffmpeg or SYSTEM_FFMPEG
    out = subprocess.run(["nice", "-n", "10", exe, "-hide_banner", "-v", "error", "-i", str(path), "-f", "null", "-"],
                         capture_output=True, text=True, timeout=300)
    return out.stderr.strip() + ("" if out.returncode == 0 else f" (exit {out.returncode})")


def keyframe_times(path: str | Path) -> list[float]:
    data = ffprobe_json(path, "-select_streams", "v:0", "-show_entries", "packet=pts_time,flags")
    return sorted(round(float(p["pts_time"]), 3) for p in data["packets"] if "K" in p["flags"])


def check_published_title(root: Path, tmp: Path, *, ffmpeg: str | None = None,
                          decode: Callable[[str], bool] = lambda _id: True) -> dict:
    """Everything a player relies on, checked from the files; returns facts for more asserts."""
    title = loads_title((root / "title.json").read_text())
    master = m3u8.loads((root / "master.m3u8").read_text())
    assert master.is_variant and master.playlists
    # every variant and rendition playlist exists and parses
    for p in master.playlists:
        media = m3u8.loads((root / p.uri).read_text())
        assert media.playlist_type == "vod" and media.is_endlist
        assert media.target_duration >= max(round(s.duration) for s in media.segments)
        assert media.is_independent_segments
    check_hls_and_dash_name_the_same_objects(root)
    facts: dict = {"title": title, "master": master, "keyframes": {}, "start_s": {}}
    for v in title.video:
        assembled = assemble(root, v.playlist, tmp / f"{v.id}.mp4")
        # sizes in title.json are the real ones
        if title.layout == "segments":
            for s in v.segments:
                assert (root / s.path).stat().st_size == s.size_bytes
        probe = ffprobe_json(assembled, "-show_streams", "-count_packets")
        stream = next(s for s in probe["streams"] if s["codec_type"] == "video")
        assert (stream["width"], stream["height"]) == (v.width, v.height)
        check_codec_string(v.codec, stream)
        assert int(stream["nb_read_packets"]) == round(title.duration_s * v.frame_rate)
        facts["keyframes"][v.id] = keyframe_times(assembled)
        facts["start_s"][v.id] = float(stream["start_time"])
        if decode(v.id):
            assert decode_errors(assembled, ffmpeg) == "", v.id
    for a in title.audio:
        assembled = assemble(root, a.playlist, tmp / f"{a.id}.mp4")
        probe = ffprobe_json(assembled, "-show_streams")
        stream = probe["streams"][0]
        assert int(stream["channels"]) == a.channels
        assert {"aac": "mp4a.40.2", "eac3": "ec-3", "ac3": "ac-3"}[stream["codec_name"]] == a.codec
        assert abs(sum(s.duration_s for s in a.segments) - title.duration_s) < 0.05
        facts["start_s"][a.id] = float(stream["start_time"])
    check_av_start(facts["start_s"], frame_s=1 / max(v.frame_rate for v in title.video))
    return facts


def hls_objects(root: Path) -> set[str]:
    """The file (path from the title root) of every init and segment the HLS playlists name, read with
    ``m3u8`` (variants, renditions and I-frame playlists)."""
    master = m3u8.loads((root / "master.m3u8").read_text())
    playlists = [p.uri for p in master.playlists] + [m.uri for m in master.media if m.uri]
    playlists += [p.uri for p in master.iframe_playlists]
    out: set[str] = set()
    for uri in playlists:
        media = m3u8.loads((root / uri).read_text())
        base = posixpath.dirname(uri)
        for seg in media.segments:
            out.add(posixpath.normpath(posixpath.join(base, seg.uri)))
            if seg.init_section is not None:
                out.add(posixpath.normpath(posixpath.join(base, seg.init_section.uri)))
    return out


def dash_objects(root: Path) -> set[str]:
    """The same for ``manifest.mpd``, read with ``manifests.loads_mpd`` (paths relative to the title root)."""
    title = loads_mpd((root / "manifest.mpd").read_bytes())
    out = {track.init.path for track in (*title.video, *title.audio)}
    for track in (*title.video, *title.audio, *title.subtitles):
        out.update(s.path for s in track.segments)
    return out


def check_hls_and_dash_name_the_same_objects(root: Path) -> None:
    """Storage check: ``master.m3u8`` and ``manifest.mpd`` reference exactly the same files (no second
    copy of any segment), and every one of them is in storage."""
    hls, dash = hls_objects(root), dash_objects(root)
    assert dash == hls, (sorted(dash - hls)[:5], sorted(hls - dash)[:5])
    missing = [p for p in hls if not (root / p).is_file()]
    assert not missing, missing[:5]


def check_av_start(start_s: dict[str, float], *, frame_s: float) -> None:
    """Every packaged track (video and audio, as ffprobe reads them) starts at presentation time 0
    within one frame, and they start within one frame of each other: no B-frame delay left on the
    video. (An AAC track reads as starting 1024 samples before 0: its encoder-delay packet, which
    the edit list trims; its first real sample is at 0.)"""
    assert start_s
    spread = max(start_s.values()) - min(start_s.values())
    assert spread <= frame_s + 1e-6, f"tracks start {spread * 1000:.0f} ms apart: {start_s}"
    off = {k: t for k, t in start_s.items() if abs(t) > frame_s + 1e-6}
    assert not off, f"tracks that do not start at 0 (within a frame): {off}"


H264_PROFILES = {"Constrained Baseline": 66, "Baseline": 66, "Main": 77, "High": 100}


def check_codec_string(codec: str, stream: dict) -> None:
    """The RFC 6381 string says what ffprobe sees in the stream."""
    family, _, rest = codec.partition(".")
    if family == "avc1":
        assert stream["codec_name"] == "h264"
        assert int(rest[0:2], 16) == H264_PROFILES[stream["profile"]]
        assert int(rest[4:6], 16) == int(stream["level"])
    elif family in ("hvc1", "hev1"):
        assert stream["codec_name"] == "hevc"
        assert stream["codec_tag_string"] == family
        parts = rest.split(".")
        assert parts[0].lstrip("ABC") == "1" and stream["profile"] == "Main"
        assert int(parts[2][1:]) == int(stream["level"])
    elif family == "av01":
        assert stream["codec_name"] == "av1"
        profile, level_tier, depth = rest.split(".")[:3]
        assert int(profile) == 0 and stream["profile"] == "Main"
        assert int(level_tier[:2]) == int(stream["level"])
        assert depth == "08" and stream["pix_fmt"] == "yuv420p"
    else:
        raise AssertionError(f"unexpected codec string {codec}")
