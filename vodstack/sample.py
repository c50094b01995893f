"""Sample titles: a real source made with ffmpeg, or a synthetic title with no media in it.

**A source** (`make_sample_source`): a test pattern, English and French audio, SRT subtitles, to
ingest. One maker for every sample source in the project: `vodstack demo` (`DEMO`: 960x540, English 5.1
and French stereo) and the interop tests (their own `SampleSpec`: a small 480x270 clip with two
stereo tracks at 48 kHz) both call `make_sample_source`.

The video is ffmpeg's ``testsrc2`` at 25 fps with a keyframe every 2 s (``-g 50``), H.264; the
English track is a 440 Hz tone, the French one 660 Hz, both AAC and tagged ``eng`` / ``fra``.
Subtitles are written as SRT, one file per language, from ``(start_s, end_s, text)`` cues.

A source already in the folder is kept (the name says what it is); a new one is written to a
temporary name and renamed, so an interrupted run leaves no half-written source behind. ffmpeg
failing is a `UsageError` of one line (ffmpeg's last error line).

**A synthetic title** (`build_synthetic_title`): published the way ingest publishes (title.json and
playlists through ``manifests``, master last) with the default ladder's shape (`SYNTHETIC_LADDER`:
H.264 rungs for everyone, HEVC/AV1 at the top; low/high AAC groups and a 5.1 E-AC-3 group;
subtitles with forced and SDH tracks), its segments sparse files of the right size: for players,
load tests and the load benchmark, which count bytes and never decode.
"""
from __future__ import annotations

import random
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from manifests.dash import dumps_mpd
from manifests.hls import render_title_playlists
from manifests.title import (AudioTrack, InitSegment, Segment, SubtitleTrack, Title, VideoRendition, dumps_title,
                             measured_bandwidth)

from .errors import UsageError

__all__ = ["Cue", "SampleSpec", "DEMO", "make_sample_source", "srt_text", "SYNTHETIC_LADDER", "build_synthetic_title"]

#: one subtitle cue: (start_s, end_s, text), whole seconds
Cue = tuple[int, int, str]
#: one rung of a synthetic ladder: id, codec, family, width, height, kbps, audio groups
LadderRow = tuple[str, str, str, int, int, int, tuple[str, ...]]


@dataclass(frozen=True, kw_only=True)
class SampleSpec:
    """What a sample source looks like (files: ``{video_name}`` and ``{name}-{lang}.srt``)."""

    name: str                          # prefix of the subtitle files, and the name in error messages
    video_name: str                    # the source's file name in the folder
    duration_s: int = 30
    width: int = 960
    height: int = 540
    surround_english: bool = False     # English as 5.1 at 384 kb/s (else stereo like French)
    sample_rate_hz: int | None = None  # None: ffmpeg's sine default (44.1 kHz)
    crf: int = 18
    pix_fmt: str | None = None         # e.g. "yuv420p"; None: the encoder's choice
    shortest: bool = False             # ``-shortest`` (stop with the shortest stream)
    nice: bool = False                 # run ffmpeg under ``nice -n 10``
    subtitles: Mapping[str, tuple[Cue, ...]] = field(default_factory=dict)  # lang -> cues
    timeout_s: float = 600.0


DEMO = SampleSpec(
    name="demo", video_name="demo-source.mp4", surround_english=True, shortest=True,
    subtitles={
        "en": ((1, 4, "A vodstack demo title"), (6, 10, "Served by an edge near you"),
               (14, 18, "Keep watching: an edge is about to fail"), (22, 27, "Still playing")),
        "fr": ((1, 4, "Un titre de démonstration vodstack"), (6, 10, "Servi par un serveur proche de vous"),
               (14, 18, "Un serveur va tomber en panne"), (22, 27, "La lecture continue")),
    })


def srt_text(cues: tuple[Cue, ...] | list[Cue]) -> str:
    """SRT for whole-second cues."""
    def ts(s: int) -> str:
        return f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d},000"
    return "".join(f"{i}\n{ts(a)} --> {ts(b)}\n{text}\n\n" for i, (a, b, text) in enumerate(cues, 1))


def _ffmpeg() -> str:
    import imageio_ffmpeg

    return str(imageio_ffmpeg.get_ffmpeg_exe())


def ffmpeg_command(spec: SampleSpec, out: Path, ffmpeg: str) -> list[str]:
    """The ffmpeg command line that writes ``spec``'s source to ``out``."""
    d = spec.duration_s
    rate = f":sample_rate={spec.sample_rate_hz}" if spec.sample_rate_hz else ""
    cmd = ["nice", "-n", "10"] if spec.nice else []
    cmd += [ffmpeg, "-hide_banner", "-loglevel", "error", "-y",
            "-f", "lavfi", "-i", f"testsrc2=size={spec.width}x{spec.height}:rate=25:duration={d}",
            "-f", "lavfi", "-i", f"sine=frequency=440:duration={d}{rate}",
            "-f", "lavfi", "-i", f"sine=frequency=660:duration={d}{rate}"]
    if spec.surround_english:
        cmd += ["-filter_complex", "[1:a]pan=5.1|FL=c0|FR=c0|FC=c0|LFE=c0|BL=c0|BR=c0[a51]",
                "-map", "0:v", "-map", "[a51]", "-map", "2:a"]
    else:
        cmd += ["-map", "0:v", "-map", "1:a", "-map", "2:a"]
    cmd += ["-c:v", "libx264", "-preset", "veryfast", "-crf", str(spec.crf)]
    cmd += ["-pix_fmt", spec.pix_fmt] if spec.pix_fmt else []
    cmd += ["-g", "50"]
    if spec.surround_english:
        cmd += ["-c:a", "aac", "-b:a:0", "384k", "-b:a:1", "128k", "-ac:a:1", "2"]
    else:
        cmd += ["-c:a", "aac", "-b:a", "128k", "-ac", "2"]
    cmd += ["-metadata:s:a:0", "language=eng", "-metadata:s:a:1", "language=fra"]
    cmd += ["-shortest"] if spec.shortest else []
    return [*cmd, str(out)]


def make_sample_source(folder: Path, spec: SampleSpec = DEMO) -> tuple[Path, dict[str, Path]]:
    """Write (or find) ``spec``'s source and subtitles in ``folder``: (source, {lang: srt path})."""
    folder.mkdir(parents=True, exist_ok=True)
    subs: dict[str, Path] = {}
    for lang, cues in spec.subtitles.items():
        path = folder / f"{spec.name}-{lang}.srt"
        path.write_text(srt_text(cues), encoding="utf-8")
        subs[lang] = path
    source = folder / spec.video_name
    if source.exists():
        return source, subs
    tmp = source.with_name(f"{source.stem}.tmp{source.suffix}")
    try:
        done = subprocess.run(ffmpeg_command(spec, tmp, _ffmpeg()), capture_output=True, text=True,
                              timeout=spec.timeout_s)
    except subprocess.TimeoutExpired:
        tmp.unlink(missing_ok=True)
        raise UsageError(f"could not make the {spec.name} source with ffmpeg: "
                         f"no result in {spec.timeout_s:.0f} s") from None
    if done.returncode != 0:
        tmp.unlink(missing_ok=True)
        lines = [line.strip() for line in done.stderr.splitlines() if line.strip()]
        tail = lines[-1][-300:] if lines else f"exit status {done.returncode}"  # one line: ffmpeg's last
        raise UsageError(f"could not make the {spec.name} source with ffmpeg: {tail}")
    tmp.replace(source)
    return source, subs


# -- a synthetic title (no media: sparse segments of the right sizes) ------------------------------

#: id, codec, family, width, height, kbps, audio groups (the ingest's pairing rules)
SYNTHETIC_LADDER = [
    ("h264-234p", "avc1.64000d", "h264", 416, 234, 145, ("aac-64k",)),
    ("h264-270p", "avc1.640015", "h264", 480, 270, 365, ("aac-64k",)),
    ("h264-360p", "avc1.64001e", "h264", 640, 360, 730, ("aac-64k",)),
    ("h264-432p", "avc1.64001e", "h264", 768, 432, 1100, ("aac-128k",)),
    ("h264-540p", "avc1.64001f", "h264", 960, 540, 2000, ("aac-128k", "ec3-448k")),
    ("h264-720p", "avc1.64001f", "h264", 1280, 720, 3000, ("aac-128k", "ec3-448k")),
    ("h264-1080p", "avc1.640028", "h264", 1920, 1080, 6000, ("aac-128k", "ec3-448k")),
    ("hevc-1080p", "hvc1.1.6.L120.90", "hevc", 1920, 1080, 4500, ("aac-128k", "ec3-448k")),
    ("hevc-2160p", "hvc1.1.6.L150.90", "hevc", 3840, 2160, 11600, ("aac-128k", "ec3-448k")),
    ("av1-1080p", "av01.0.08M.08", "av1", 1920, 1080, 3400, ("aac-128k", "ec3-448k")),
    ("av1-2160p", "av01.0.12M.08", "av1", 3840, 2160, 9000, ("aac-128k", "ec3-448k")),
]
#: group, codec, channels, kbps
SYNTHETIC_AUDIO = [("aac-64k", "mp4a.40.2", 2, 64), ("aac-128k", "mp4a.40.2", 2, 128), ("ec3-448k", "ec-3", 6, 448)]
#: id, name, forced, SDH
SYNTHETIC_SUBS = [("en", "English", False, False), ("en-sdh", "English SDH", False, True),
        ("en-forced", "English (forced)", True, False), ("fr", "Français", False, False),
        ("fr-forced", "Français (forcés)", True, False)]


def _sparse(path: Path, size: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.truncate(size)


def build_synthetic_title(root: Path, title: str = "demo", *, duration_s: float = 60.0, segment_s: float = 4.0,
                          languages: tuple[str, ...] = ("en", "fr"), ladder: Sequence[LadderRow] = SYNTHETIC_LADDER,
                          seed: int = 1) -> Title:
    """Write a synthetic title under ``root/title`` and return its model (published like ingest does:
    playlists written by ``manifests``, ``title.json``, ``manifest.mpd``, ``master.m3u8`` last; segments are sparse files
    of the right size, for players and load tests that count bytes and never decode)."""
    rng = random.Random(seed)
    n = int(round(duration_s / segment_s))
    durations = [segment_s] * n
    base = root / title
    video = []
    for rid, codec, family, w, h, kbps, groups in ladder:
        segs = []
        for k, d in enumerate(durations):
            size = int(kbps * 1000 * d / 8 * rng.uniform(0.8, 1.2))
            path = f"video/{rid}/{k + 1:05d}.m4s"
            _sparse(base / path, size)
            segs.append(Segment(path=path, duration_s=d, size_bytes=size))
        _sparse(base / f"video/{rid}/init.mp4", 900)
        peak, avg = measured_bandwidth(segs)
        video.append(VideoRendition(
            id=rid, codec=codec, codec_family=family, width=w, height=h, frame_rate=30.0, bandwidth_bps=peak,
            average_bandwidth_bps=avg, nominal_bitrate_kbps=kbps, playlist=f"video/{rid}/index.m3u8",
            init=InitSegment(path=f"video/{rid}/init.mp4", size_bytes=900), segments=tuple(segs),
            audio_groups=groups))
    audio = []
    names = {"en": "English", "fr": "Français", "de": "Deutsch"}
    for group, codec, channels, kbps in SYNTHETIC_AUDIO:
        for lang in languages:
            tid = f"{group}-{lang}"
            segs = []
            for k, d in enumerate(durations):
                path = f"audio/{tid}/{k + 1:05d}.m4s"
                size = int(kbps * 1000 * d / 8)
                _sparse(base / path, size)
                segs.append(Segment(path=path, duration_s=d, size_bytes=size))
            _sparse(base / f"audio/{tid}/init.mp4", 700)
            peak, avg = measured_bandwidth(segs)
            label = names.get(lang, lang) + (" 5.1" if channels == 6 else "")
            audio.append(AudioTrack(
                id=tid, codec=codec, language=lang, name=label, channels=channels, bitrate_kbps=kbps, group=group,
                default=lang == languages[0], bandwidth_bps=peak, average_bandwidth_bps=avg,
                playlist=f"audio/{tid}/index.m3u8", init=InitSegment(path=f"audio/{tid}/init.mp4", size_bytes=700),
                segments=tuple(segs)))
    subtitles = []
    for sid, name, forced, sdh in SYNTHETIC_SUBS:
        lang = sid.split("-")[0]
        if lang not in languages:
            continue
        segs = []
        for k, d in enumerate(durations):
            path = f"subs/{sid}/{k + 1:05d}.vtt"
            text = f"WEBVTT\n\n{_vtt_ts(k * d)} --> {_vtt_ts(k * d + d / 2)}\n{name} line {k + 1}\n"
            (base / path).parent.mkdir(parents=True, exist_ok=True)
            (base / path).write_text(text)
            segs.append(Segment(path=path, duration_s=d, size_bytes=len(text.encode())))
        subtitles.append(SubtitleTrack(id=sid, language=lang, name=name, forced=forced, sdh=sdh,
                                       playlist=f"subs/{sid}/index.m3u8", segments=tuple(segs)))
    model = Title(title=title, duration_s=sum(durations), segment_duration_s=segment_s, video=tuple(video),
                  audio=tuple(audio), subtitles=tuple(subtitles))
    playlists = render_title_playlists(model)
    master = playlists.pop("master.m3u8")
    for path, text in playlists.items():
        (base / path).parent.mkdir(parents=True, exist_ok=True)
        (base / path).write_text(text)
    (base / "title.json").write_text(dumps_title(model))
    (base / "manifest.mpd").write_text(dumps_mpd(model))
    (base / "master.m3u8").write_text(master)
    return model


def _vtt_ts(t: float) -> str:
    m, s = divmod(t, 60)
    return f"{int(m):02d}:{s:06.3f}"
