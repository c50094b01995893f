"""The title model: one title's renditions, audio and subtitle tracks and segments, and ``title.json``.

``title.json`` (format ``vodstack-title/1``) is the catalog every other part reads: the player's
simulator and the edge's prefill take segment durations and byte sizes from it, the steering
service and the player take codecs, resolutions, bitrates, VMAF and device classes. Paths are
relative to the title's root (``{title}/``). Units ride in the names (``_s``, ``_bps``, ``_kbps``,
``_bytes``).

Fields added beyond the first published schema (readers must tolerate their absence):
``VideoRendition.audio_groups`` (which audio groups the multivariant playlist pairs it with),
``IFrameTrack.average_bandwidth_bps``, ``IFrameTrack.codec``, ``IFrameTrack.segments``,
``AudioTrack.sample_rate_hz``, ``Title.target_duration_s``, ``Title.version`` and
``Title.previous_versions`` (a title published before versioning has neither, and unversioned paths).

Versions: every object of a title except its entry points (``ENTRY_POINTS``) lives under
``v/{version}/``, ``version`` being a hash of the objects' contents (``content_version``), so an
object path never names two different byte strings. ``title.json`` names its paths with that
prefix (``with_path_prefix``); re-publishing a title writes a new version and changes only the
entry points in place.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Iterable

FORMAT = "vodstack-title/1"
LAYOUTS = ("segments", "byterange")
CODEC_FAMILIES = ("h264", "hevc", "av1")
#: The objects of a title that change in place on a re-publish (relative to the title root);
#: everything else is under ``v/{version}/`` and immutable.
ENTRY_POINTS = ("master.m3u8", "manifest.mpd", "title.json")
#: The folder (relative to the title root) holding one sub-folder per version.
VERSIONS_FOLDER = "v"
#: What a title published before versioning (no ``version`` in its ``title.json``) is called.
UNVERSIONED = "unversioned"
VERSION_HEX_DIGITS = 16
VERSION_RE = re.compile(rf"[0-9a-f]{{{VERSION_HEX_DIGITS}}}")


class TitleFormatError(ValueError):
    """``title.json`` text that is not a vodstack title (bad JSON, wrong format tag, missing field)."""


@dataclass(frozen=True, kw_only=True)
class Segment:
    """One media segment; in the byterange layout ``path`` is the rendition's single file."""

    path: str
    duration_s: float
    size_bytes: int
    offset_bytes: int | None = None


@dataclass(frozen=True, kw_only=True)
class InitSegment:
    """The CMAF initialization section (``ftyp`` + ``moov``) named by ``EXT-X-MAP``."""

    path: str
    size_bytes: int
    offset_bytes: int | None = None


@dataclass(frozen=True, kw_only=True)
class VideoRendition:
    """One encoded video stream of the ladder, playable on ``devices``."""

    id: str
    codec: str  # RFC 6381, from the encoded stream, e.g. avc1.64001f
    codec_family: str  # h264 | hevc | av1
    width: int
    height: int
    frame_rate: float
    hdr: bool = False
    bandwidth_bps: int  # peak segment bitrate
    average_bandwidth_bps: int  # measured over the whole rendition
    nominal_bitrate_kbps: int
    vmaf: float | None = None
    devices: tuple[str, ...] = ()
    playlist: str
    init: InitSegment
    segments: tuple[Segment, ...] = ()
    audio_groups: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class AudioTrack:
    """One audio rendition (a language at a codec and bitrate), a member of ``group``."""

    id: str
    codec: str  # mp4a.40.2 | ec-3 | ac-3 ...
    language: str
    name: str
    channels: int
    bitrate_kbps: int
    group: str
    default: bool = False
    bandwidth_bps: int
    average_bandwidth_bps: int
    playlist: str
    init: InitSegment
    segments: tuple[Segment, ...] = ()
    sample_rate_hz: int | None = None


@dataclass(frozen=True, kw_only=True)
class SubtitleTrack:
    """WebVTT subtitles for one language, cut to the title's segment duration."""

    id: str
    language: str
    name: str
    forced: bool = False
    sdh: bool = False
    default: bool = False
    playlist: str
    segments: tuple[Segment, ...] = ()


@dataclass(frozen=True, kw_only=True)
class IFrameTrack:
    """The I-frame (trick play) playlist of one video rendition: byte ranges of its keyframes."""

    rendition: str
    playlist: str
    bandwidth_bps: int
    average_bandwidth_bps: int | None = None
    segments: tuple[Segment, ...] = ()


@dataclass(frozen=True, kw_only=True)
class PreviousVersion:
    """A version an earlier publish made current, and when a later one replaced it."""

    version: str  # a content hash, or ``UNVERSIONED``
    superseded_at_s: float  # POSIX seconds


@dataclass(frozen=True, kw_only=True)
class Title:
    """Everything published for one title."""

    format: str = FORMAT
    title: str
    duration_s: float
    segment_duration_s: float
    layout: str = "segments"
    target_duration_s: int | None = None
    video: tuple[VideoRendition, ...] = ()
    audio: tuple[AudioTrack, ...] = ()
    subtitles: tuple[SubtitleTrack, ...] = ()
    iframes: tuple[IFrameTrack, ...] = ()
    version: str | None = None  #: the ``v/{version}/`` folder the paths point into (None: unversioned)
    previous_versions: tuple[PreviousVersion, ...] = ()  #: oldest first; kept until ``vodstack gc``

    def rendition(self, rendition_id: str) -> VideoRendition:
        for r in self.video:
            if r.id == rendition_id:
                return r
        raise KeyError(rendition_id)

    def audio_groups(self) -> dict[str, tuple[AudioTrack, ...]]:
        """Audio tracks by group id, groups in first-seen order."""
        groups: dict[str, list[AudioTrack]] = {}
        for a in self.audio:
            groups.setdefault(a.group, []).append(a)
        return {k: tuple(v) for k, v in groups.items()}

    def media_tracks(self) -> tuple[VideoRendition | AudioTrack, ...]:
        """The video renditions, then the audio tracks: every track with an init segment."""
        return (*self.video, *self.audio)

    def all_paths(self) -> list[str]:
        """Every object path the title references (playlists, init and media segments), deduplicated."""
        seen: dict[str, None] = {}
        for track in self.media_tracks():
            seen[track.playlist] = None
            seen[track.init.path] = None
            for s in track.segments:
                seen[s.path] = None
        for sub in self.subtitles:
            seen[sub.playlist] = None
            for s in sub.segments:
                seen[s.path] = None
        for i in self.iframes:
            seen[i.playlist] = None
        return list(seen)


# --- versions -------------------------------------------------------------------------------------

def version_prefix(version: str) -> str:
    """``v/{version}/``: where a version's objects live, relative to the title root."""
    return f"{VERSIONS_FOLDER}/{version}/"


def content_version(objects: Iterable[tuple[str, str]]) -> str:
    """The version of a set of objects: the first 16 hex digits of SHA-256 over the sorted
    ``(path relative to the version, SHA-256 hex of the object's bytes)`` pairs, one
    ``path NUL digest LF`` line each. The same objects always give the same version."""
    h = hashlib.sha256()
    for path, digest in sorted(objects):
        h.update(f"{path}\0{digest}\n".encode("utf-8"))
    return h.hexdigest()[:VERSION_HEX_DIGITS]


def version_in_path(path: str) -> str | None:
    """The version of a path under ``v/{version}/``, relative to the title root or as a storage key
    (``v/3f9a.../video/r/00001.m4s`` or ``t1/v/3f9a.../...``); None for entry points and unversioned
    paths."""
    parts = path.split("/")
    for i in (0, 1):
        if len(parts) > i + 2 and parts[i] == VERSIONS_FOLDER and VERSION_RE.fullmatch(parts[i + 1]):
            return parts[i + 1]
    return None


_NAMED_VERSION_RE = re.compile(rf"(?<![\w.%-])v/([0-9a-f]{{{VERSION_HEX_DIGITS}}})/")


def versions_named_in(text: str) -> frozenset[str]:
    """Every version a manifest's text names (``v/{version}/`` in a URI: HLS, DASH or JSON alike).
    A scan, not a parse, so that gc keeps what any entry point points at, even a malformed one."""
    return frozenset(_NAMED_VERSION_RE.findall(text))


def with_path_prefix(title: Title, prefix: str) -> Title:
    """``title`` with ``prefix`` put before every object path (playlists, init and media segments)."""
    def seg(s: Segment) -> Segment:
        return replace(s, path=prefix + s.path)

    def segs(items: tuple[Segment, ...]) -> tuple[Segment, ...]:
        return tuple(seg(s) for s in items)

    return replace(
        title,
        video=tuple(replace(v, playlist=prefix + v.playlist, init=replace(v.init, path=prefix + v.init.path),
                            segments=segs(v.segments)) for v in title.video),
        audio=tuple(replace(a, playlist=prefix + a.playlist, init=replace(a.init, path=prefix + a.init.path),
                            segments=segs(a.segments)) for a in title.audio),
        subtitles=tuple(replace(s, playlist=prefix + s.playlist, segments=segs(s.segments)) for s in title.subtitles),
        iframes=tuple(replace(i, playlist=prefix + i.playlist, segments=segs(i.segments)) for i in title.iframes))


# --- JSON -----------------------------------------------------------------------------------------

def title_to_dict(title: Title) -> dict[str, Any]:
    """Plain JSON-ready dict (tuples become lists)."""
    return asdict(title)


def dumps_title(title: Title) -> str:
    """``title.json`` text: stable key order, two-space indent, trailing newline."""
    return json.dumps(title_to_dict(title), indent=2, ensure_ascii=False) + "\n"


def loads_title(text: str | bytes) -> Title:
    """Parse ``title.json``; unknown keys are ignored (forward compatible), missing ones raise."""
    try:
        data = json.loads(text)
    except ValueError as e:
        raise TitleFormatError(f"title.json is not JSON: {e}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise TitleFormatError(f"title.json: format is not {FORMAT!r}")
    return title_from_dict(data)


def title_from_dict(data: dict[str, Any]) -> Title:
    try:
        return Title(
            format=data["format"], title=data["title"], duration_s=float(data["duration_s"]),
            segment_duration_s=float(data["segment_duration_s"]), layout=data.get("layout", "segments"),
            target_duration_s=data.get("target_duration_s"),
            video=tuple(_video(v) for v in data.get("video", [])),
            audio=tuple(_audio(a) for a in data.get("audio", [])),
            subtitles=tuple(_subs(s) for s in data.get("subtitles", [])),
            iframes=tuple(_iframes(i) for i in data.get("iframes", [])),
            version=data.get("version"),
            previous_versions=tuple(PreviousVersion(version=str(p["version"]),
                                                    superseded_at_s=float(p["superseded_at_s"]))
                                    for p in data.get("previous_versions") or []),
        )
    except (KeyError, TypeError, ValueError) as e:
        raise TitleFormatError(f"title.json: missing or bad field {e}") from None


def _known(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in data.items() if k in names}


def _segments(items: list[dict[str, Any]]) -> tuple[Segment, ...]:
    return tuple(Segment(**_known(Segment, s)) for s in items)


def _init(data: dict[str, Any]) -> InitSegment:
    return InitSegment(**_known(InitSegment, data))


def _video(d: dict[str, Any]) -> VideoRendition:
    d = _known(VideoRendition, d)
    d["init"] = _init(d["init"])
    d["segments"] = _segments(d.get("segments", []))
    d["devices"] = tuple(d.get("devices", ()))
    d["audio_groups"] = tuple(d.get("audio_groups", ()))
    return VideoRendition(**d)


def _audio(d: dict[str, Any]) -> AudioTrack:
    d = _known(AudioTrack, d)
    d["init"] = _init(d["init"])
    d["segments"] = _segments(d.get("segments", []))
    return AudioTrack(**d)


def _subs(d: dict[str, Any]) -> SubtitleTrack:
    d = _known(SubtitleTrack, d)
    d["segments"] = _segments(d.get("segments", []))
    return SubtitleTrack(**d)


def _iframes(d: dict[str, Any]) -> IFrameTrack:
    d = _known(IFrameTrack, d)
    d["segments"] = _segments(d.get("segments", []))
    return IFrameTrack(**d)


def measured_bandwidth(segments: tuple[Segment, ...] | list[Segment],
                       target_duration_s: float | None = None) -> tuple[int, int]:
    """``(peak_bps, average_bps)`` from real segment sizes and durations, by RFC 8216bis 4.4.6.2:
    the peak is the largest bit rate of any run of consecutive segments lasting 0.5 to 1.5 times the
    target duration (default: the longest segment, rounded to the nearest second, at least 1 s), so
    that a short last segment's few bytes are not the peak; average is total bits over total
    duration. With no such run (a title shorter than half a target), the peak is the average."""
    total_bytes = sum(s.size_bytes for s in segments)
    total_s = sum(s.duration_s for s in segments)
    if not segments or total_s <= 0:
        return 0, 0
    average = total_bytes * 8 / total_s
    target = target_duration_s or max(1, int(max(s.duration_s for s in segments) + 0.5))
    peak = 0.0
    for i in range(len(segments)):
        run_s = run_bytes = 0.0
        for s in segments[i:]:
            run_s += s.duration_s
            run_bytes += s.size_bytes
            if run_s > 1.5 * target + 1e-9:
                break
            if run_s >= 0.5 * target - 1e-9:
                peak = max(peak, run_bytes * 8 / run_s)
    return int(round(peak or average)), int(round(average))


__all__ = [
    "CODEC_FAMILIES", "ENTRY_POINTS", "FORMAT", "LAYOUTS", "UNVERSIONED", "VERSIONS_FOLDER", "AudioTrack",
    "IFrameTrack", "InitSegment", "PreviousVersion", "Segment", "SubtitleTrack", "Title", "TitleFormatError",
    "VideoRendition", "content_version", "dumps_title", "loads_title", "measured_bandwidth", "title_from_dict",
    "title_to_dict", "version_in_path", "versions_named_in", "version_prefix", "with_path_prefix"
]
