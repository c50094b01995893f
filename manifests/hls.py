"""HLS playlists of a title, written and read with the ``m3u8`` package.

Two steps, both pure:

1. *views*: ``multivariant_from_title`` / ``media_playlist_for`` turn the ``Title`` into small frozen
   dataclasses that mirror the playlist text (``Multivariant``, ``Variant``, ``MediaRendition``,
   ``MediaPlaylist``...);
2. *text*: ``dumps_multivariant`` / ``dumps_media_playlist`` write a view through ``m3u8`` objects,
   and ``loads_multivariant`` / ``loads_media_playlist`` parse text back into the same view, so
   ``loads(dumps(view)) == view`` (a hypothesis property in ``tests/manifests``).

Content steering: ``steer_multivariant(mv, [Pathway("eu-1", "https://a/t/TOK/x/"), ...],
steering=ContentSteering(server_uri=..., pathway_id="eu-1"))`` clones every variant, I-frame
variant and rendition group of a view per pathway, prefixing relative URIs with the pathway's
``uri_prefix``, setting ``PATHWAY-ID`` and ``STABLE-VARIANT-ID`` (the same across pathways), giving
each pathway its own copies of the audio/subtitle groups (``GROUP-ID`` suffixed ``@pathway``,
``STABLE-RENDITION-ID`` shared) as the HLS spec asks, and adding ``EXT-X-CONTENT-STEERING``.
``multivariant_from_title(title, pathways=..., steering=...)`` is that over the title's view (stable
ids from track ids); ``steered.py`` applies it to a stored playlist's text. ``m3u8`` 6.0 writes and
parses all of these tags itself; nothing is hand-written.

Versions: media playlists with ``EXT-X-MAP`` are VERSION 6 (RFC 8216 section 7), WebVTT subtitle
playlists VERSION 3 (floating-point EXTINF), the multivariant playlist VERSION 6.
"""
from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, replace
from typing import Iterable, Sequence
from urllib.parse import urljoin

import m3u8

from .title import AudioTrack, IFrameTrack, Segment, SubtitleTrack, Title, VideoRendition

MULTIVARIANT_VERSION = 6
FMP4_VERSION = 6
WEBVTT_VERSION = 3
SUBTITLES_GROUP = "subs"
DURATION_DECIMALS = 6
_STABLE_BAD = re.compile(r"[^A-Za-z0-9+/=._-]")


@dataclass(frozen=True, kw_only=True)
class Pathway:
    """A content-steering pathway: an id and the prefix put before every URI of its copies."""

    id: str
    uri_prefix: str = ""


@dataclass(frozen=True, kw_only=True)
class ContentSteering:
    """``EXT-X-CONTENT-STEERING``: where the steering manifest is, and the pathway to start with."""

    server_uri: str
    pathway_id: str | None = None


@dataclass(frozen=True, kw_only=True)
class MediaRendition:
    """One ``EXT-X-MEDIA`` line (audio or subtitles)."""

    type: str  # AUDIO | SUBTITLES
    group_id: str
    name: str
    language: str | None = None
    uri: str | None = None
    default: bool = False
    autoselect: bool = False
    forced: bool | None = None  # SUBTITLES only
    characteristics: str | None = None
    channels: str | None = None
    stable_rendition_id: str | None = None


@dataclass(frozen=True, kw_only=True)
class Variant:
    """One ``EXT-X-STREAM-INF`` and its URI."""

    uri: str
    bandwidth_bps: int
    average_bandwidth_bps: int | None = None
    codecs: str | None = None
    resolution: tuple[int, int] | None = None
    frame_rate: float | None = None
    video_range: str | None = None
    audio_group: str | None = None
    subtitles_group: str | None = None
    pathway_id: str | None = None
    stable_variant_id: str | None = None


@dataclass(frozen=True, kw_only=True)
class IFrameVariant:
    """One ``EXT-X-I-FRAME-STREAM-INF``."""

    uri: str
    bandwidth_bps: int
    average_bandwidth_bps: int | None = None
    codecs: str | None = None
    resolution: tuple[int, int] | None = None
    video_range: str | None = None
    pathway_id: str | None = None
    stable_variant_id: str | None = None


@dataclass(frozen=True, kw_only=True)
class Multivariant:
    """The multivariant (master) playlist."""

    version: int = MULTIVARIANT_VERSION
    independent_segments: bool = True
    media: tuple[MediaRendition, ...] = ()
    variants: tuple[Variant, ...] = ()
    iframe_variants: tuple[IFrameVariant, ...] = ()
    steering: ContentSteering | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class ByteRange:
    """A playlist byte range (``EXT-X-BYTERANGE``, ``EXT-X-MAP BYTERANGE``): ``length`` bytes from
    ``offset`` (the one class for it: the writer, the reader and the player use this one)."""

    length: int
    offset: int

    @property
    def end(self) -> int:
        """One past the last byte."""
        return self.offset + self.length


@dataclass(frozen=True, kw_only=True)
class MediaSegment:
    uri: str
    duration_s: float
    byterange: ByteRange | None = None


@dataclass(frozen=True, kw_only=True)
class MediaPlaylist:
    """One media playlist (VOD): video, audio, subtitles or I-frames only."""

    version: int
    target_duration_s: int
    playlist_type: str = "VOD"
    independent_segments: bool = True
    iframes_only: bool = False
    map_uri: str | None = None
    map_byterange: ByteRange | None = None
    segments: tuple[MediaSegment, ...] = ()
    endlist: bool = True


# --- views from the title --------------------------------------------------------------------------

def target_duration(durations_s: Iterable[float], floor_s: float = 1.0) -> int:
    """The smallest integer every EXTINF, rounded to the nearest integer, stays within (RFC 8216 4.3.3.1)."""
    return max([int(round(floor_s))] + [int(d + 0.5) for d in durations_s])


def _rel(from_playlist: str, path: str) -> str:
    return posixpath.relpath(path, posixpath.dirname(from_playlist) or ".")


def _dur(x: float) -> float:
    return round(float(x), DURATION_DECIMALS)


def _range(seg: Segment) -> ByteRange | None:
    return None if seg.offset_bytes is None else ByteRange(length=seg.size_bytes, offset=seg.offset_bytes)


def media_playlist_for(track: VideoRendition | AudioTrack) -> MediaPlaylist:
    """The media playlist of a video rendition or audio track (CMAF, either layout)."""
    init = track.init
    segs = tuple(MediaSegment(uri=_rel(track.playlist, s.path), duration_s=_dur(s.duration_s),
                              byterange=_range(s)) for s in track.segments)
    return MediaPlaylist(
        version=FMP4_VERSION, target_duration_s=target_duration(s.duration_s for s in segs),
        map_uri=_rel(track.playlist, init.path),
        map_byterange=None if init.offset_bytes is None else ByteRange(length=init.size_bytes,
                                                                       offset=init.offset_bytes),
        segments=segs)


def subtitle_playlist_for(track: SubtitleTrack) -> MediaPlaylist:
    segs = tuple(MediaSegment(uri=_rel(track.playlist, s.path), duration_s=_dur(s.duration_s))
                 for s in track.segments)
    return MediaPlaylist(version=WEBVTT_VERSION, target_duration_s=target_duration(s.duration_s for s in segs),
                         independent_segments=False, segments=segs)


def iframe_playlist_for(iframes: IFrameTrack, rendition: VideoRendition) -> MediaPlaylist:
    """I-frames only: each entry is the byte range of one keyframe (its moof + sample) and lasts
    until the next keyframe."""
    segs = tuple(MediaSegment(uri=_rel(iframes.playlist, s.path), duration_s=_dur(s.duration_s),
                              byterange=_range(s)) for s in iframes.segments)
    init = rendition.init
    return MediaPlaylist(
        version=FMP4_VERSION, target_duration_s=target_duration(s.duration_s for s in segs),
        iframes_only=True, map_uri=_rel(iframes.playlist, init.path),
        map_byterange=None if init.offset_bytes is None else ByteRange(length=init.size_bytes,
                                                                       offset=init.offset_bytes),
        segments=segs)


def _channels(track: AudioTrack) -> str:
    # HLS: CHANNELS is the count; Dolby Atmos etc. would add "/JOC" parameters.
    return str(track.channels)


def _characteristics(sub: SubtitleTrack) -> str | None:
    if sub.sdh:
        return "public.accessibility.transcribes-spoken-dialog,public.accessibility.describes-music-and-sound"
    return None


def multivariant_from_title(title: Title, *, pathways: Sequence[Pathway] | None = None,
                            steering: ContentSteering | None = None) -> Multivariant:
    """The multivariant view of ``title``; with ``pathways``, one copy of everything per pathway
    (``steer_multivariant``, stable ids from the title's track ids).

    Each video rendition is offered once per audio group in its ``audio_groups`` (all groups if
    empty). BANDWIDTH = the rendition's peak + the group's largest peak; AVERAGE-BANDWIDTH likewise
    with averages; CODECS = the video codec + the group's audio codec.
    """
    stable = bool(pathways)
    groups = title.audio_groups()
    has_subs = bool(title.subtitles)
    media: list[MediaRendition] = []
    variants: list[Variant] = []
    iframe_variants: list[IFrameVariant] = []
    for group_id, members in groups.items():
        for a in members:
            media.append(MediaRendition(
                type="AUDIO", group_id=group_id, name=a.name, language=a.language,
                uri=a.playlist, default=a.default, autoselect=True, channels=_channels(a),
                stable_rendition_id=a.id if stable else None))
    for s in title.subtitles:
        media.append(MediaRendition(
            type="SUBTITLES", group_id=SUBTITLES_GROUP, name=s.name,
            language=s.language, uri=s.playlist, default=s.default,
            autoselect=True, forced=s.forced,
            characteristics=_characteristics(s), stable_rendition_id=s.id if stable else None))
    for v in title.video:
        for gid in (v.audio_groups or tuple(groups) or (None,)):
            tracks = groups.get(gid, ()) if gid else ()
            peak = v.bandwidth_bps + max((a.bandwidth_bps for a in tracks), default=0)
            avg = v.average_bandwidth_bps + max((a.average_bandwidth_bps for a in tracks), default=0)
            codecs = ",".join([v.codec] + sorted({a.codec for a in tracks}))
            variants.append(Variant(
                uri=v.playlist, bandwidth_bps=peak, average_bandwidth_bps=avg, codecs=codecs,
                resolution=(v.width, v.height), frame_rate=round(v.frame_rate, 3),
                video_range="PQ" if v.hdr else "SDR", audio_group=gid,
                subtitles_group=SUBTITLES_GROUP if has_subs else None,
                stable_variant_id=(f"{v.id}+{gid}" if gid else v.id) if stable else None))
    by_id = {v.id: v for v in title.video}
    for i in title.iframes:
        v = by_id[i.rendition]
        iframe_variants.append(IFrameVariant(
            uri=i.playlist, bandwidth_bps=i.bandwidth_bps,
            average_bandwidth_bps=i.average_bandwidth_bps, codecs=v.codec,
            resolution=(v.width, v.height), video_range="PQ" if v.hdr else "SDR",
            stable_variant_id=f"{v.id}+iframes" if stable else None))
    mv = Multivariant(media=tuple(media), variants=tuple(variants),
                      iframe_variants=tuple(iframe_variants), steering=steering)
    return steer_multivariant(mv, pathways, steering=steering) if pathways else mv


# --- steered copies --------------------------------------------------------------------------------

class PlaylistError(ValueError):
    """A playlist that cannot be steered (not a multivariant playlist, no variant, no pathway)."""


def stable_id(uri: str) -> str:
    """A STABLE-VARIANT-ID / STABLE-RENDITION-ID made from a URI (the characters the spec allows)."""
    stem = uri.split("?", 1)[0]
    for suffix in ("/index.m3u8", ".m3u8"):
        if stem.endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    return _STABLE_BAD.sub("_", stem).strip("/") or "v"


def _under(prefix: str, uri: str) -> str:
    if not prefix:
        return uri
    if "://" in uri or uri.startswith("/"):
        return urljoin(prefix, uri)
    return prefix + uri


def _variant_ids(mv: Multivariant) -> tuple[list[str], list[str]]:
    seen: set[str] = set()

    def unique(sid: str) -> str:
        base, n = sid, 2
        while sid in seen:
            sid, n = f"{base}+{n}", n + 1
        seen.add(sid)
        return sid

    out: list[str] = []
    for v in mv.variants:
        sid = v.stable_variant_id or stable_id(v.uri)
        if sid in seen and v.stable_variant_id is None:
            sid = f"{sid}+{_STABLE_BAD.sub('_', v.audio_group or '')}".rstrip("+")
        out.append(unique(sid))
    iframes = [unique(i.stable_variant_id or stable_id(i.uri)) for i in mv.iframe_variants]
    return out, iframes


def steer_multivariant(mv: Multivariant, pathways: Sequence[Pathway], *,
                       steering: ContentSteering | None) -> Multivariant:
    """``mv`` (one unsteered copy) copied once per pathway, in the order given (rfc8216bis §4.4.6.6).

    Every variant and I-frame variant is repeated with ``PATHWAY-ID`` and a ``STABLE-VARIANT-ID``
    the same on every pathway and distinct inside one (kept if ``mv`` has one, else made from the
    URI: ``video/v90/index.m3u8`` -> ``video/v90``, ``+{audio group}`` when a URI is offered with
    several groups). Every rendition group is repeated as ``{group}@{pathway}``, named by that
    pathway's variants, with a ``STABLE-RENDITION-ID`` shared across pathways (kept, or from the
    URI). Relative URIs go under the pathway's ``uri_prefix`` as they are (a versioned title's
    ``v/{version}/`` stays). ``steering`` becomes ``EXT-X-CONTENT-STEERING``.
    """
    if not pathways:
        raise PlaylistError("no pathway to steer to")
    if not mv.variants:
        raise PlaylistError("no variant streams")
    groups = {m.group_id for m in mv.media}
    variant_ids, iframe_ids = _variant_ids(mv)

    def group(name: str | None, pw: Pathway) -> str | None:
        return f"{name}@{pw.id}" if name is not None and name in groups else name

    media: list[MediaRendition] = []
    variants: list[Variant] = []
    iframes: list[IFrameVariant] = []
    for pw in pathways:
        for m in mv.media:
            media.append(replace(
                m, group_id=f"{m.group_id}@{pw.id}", uri=None if m.uri is None else _under(pw.uri_prefix, m.uri),
                stable_rendition_id=m.stable_rendition_id or (stable_id(m.uri) if m.uri is not None else None)))
        for v, sid in zip(mv.variants, variant_ids):
            variants.append(replace(
                v, uri=_under(pw.uri_prefix, v.uri), audio_group=group(v.audio_group, pw),
                subtitles_group=group(v.subtitles_group, pw), pathway_id=pw.id, stable_variant_id=sid))
        for i, sid in zip(mv.iframe_variants, iframe_ids):
            iframes.append(replace(i, uri=_under(pw.uri_prefix, i.uri), pathway_id=pw.id, stable_variant_id=sid))
    return replace(mv, media=tuple(media), variants=tuple(variants), iframe_variants=tuple(iframes),
                   steering=steering)


def with_steering(mv: Multivariant, steering: ContentSteering | None) -> Multivariant:
    return replace(mv, steering=steering)


# --- writing ---------------------------------------------------------------------------------------

def _yes(flag: bool | None) -> str | None:
    return None if flag is None else ("YES" if flag else "NO")


def dumps_multivariant(mv: Multivariant) -> str:
    doc = m3u8.M3U8()
    doc.is_variant = True
    doc.version = mv.version
    doc.is_independent_segments = mv.independent_segments
    if mv.steering is not None:
        doc.content_steering = m3u8.model.ContentSteering(
            base_uri=None, server_uri=mv.steering.server_uri, pathway_id=mv.steering.pathway_id)
    media_objs = []
    for m in mv.media:
        obj = m3u8.Media(uri=m.uri, type=m.type, group_id=m.group_id, language=m.language, name=m.name,
                         default=_yes(m.default), autoselect=_yes(m.autoselect), forced=_yes(m.forced),
                         characteristics=m.characteristics, channels=m.channels,
                         stable_rendition_id=m.stable_rendition_id)
        doc.add_media(obj)
        media_objs.append(obj)
    for v in mv.variants:
        info: dict[str, object] = {"bandwidth": v.bandwidth_bps}
        for key, value in (("average_bandwidth", v.average_bandwidth_bps), ("codecs", v.codecs),
                           ("frame_rate", v.frame_rate), ("video_range", v.video_range),
                           ("audio", v.audio_group), ("subtitles", v.subtitles_group),
                           ("pathway_id", v.pathway_id), ("stable_variant_id", v.stable_variant_id)):
            if value is not None:
                info[key] = value
        if v.resolution is not None:
            info["resolution"] = f"{v.resolution[0]}x{v.resolution[1]}"
        doc.add_playlist(m3u8.Playlist(uri=v.uri, stream_info=info, media=media_objs, base_uri=None))
    for i in mv.iframe_variants:
        info = {"bandwidth": i.bandwidth_bps}
        for key, value in (("average_bandwidth", i.average_bandwidth_bps), ("codecs", i.codecs),
                           ("video_range", i.video_range), ("pathway_id", i.pathway_id),
                           ("stable_variant_id", i.stable_variant_id)):
            if value is not None:
                info[key] = value
        if i.resolution is not None:
            info["resolution"] = f"{i.resolution[0]}x{i.resolution[1]}"
        doc.add_iframe_playlist(m3u8.IFramePlaylist(base_uri=None, uri=i.uri, iframe_stream_info=info))
    text: str = doc.dumps()  # m3u8 has no type information
    return text


def _byterange_spec(r: ByteRange) -> str:
    return f"{r.length}@{r.offset}"


def _byterange_text(r: ByteRange | None) -> str | None:
    return None if r is None else _byterange_spec(r)


def dumps_media_playlist(mp: MediaPlaylist) -> str:
    doc = m3u8.M3U8()
    doc.version = mp.version
    doc.target_duration = mp.target_duration_s
    doc.playlist_type = mp.playlist_type.lower()
    doc.is_independent_segments = mp.independent_segments
    doc.is_i_frames_only = mp.iframes_only
    doc.is_endlist = mp.endlist
    doc.media_sequence = None
    init = None
    if mp.map_uri is not None:
        init = {"uri": mp.map_uri}
        if mp.map_byterange is not None:
            init["byterange"] = _byterange_spec(mp.map_byterange)
    for s in mp.segments:
        doc.add_segment(m3u8.Segment(uri=s.uri, duration=s.duration_s, byterange=_byterange_text(s.byterange),
                                     init_section=init))
    text: str = doc.dumps(infspec="microseconds")  # m3u8 has no type information
    return text


# --- reading ---------------------------------------------------------------------------------------

def _flag(text: str | None) -> bool | None:
    return None if text is None else text.upper() == "YES"


def loads_multivariant(text: str) -> Multivariant:
    doc = m3u8.loads(text)
    media = tuple(MediaRendition(
        type=m.type, group_id=m.group_id, name=m.name, language=m.language, uri=m.uri,
        default=bool(_flag(m.default)), autoselect=bool(_flag(m.autoselect)),
        forced=_flag(m.forced) if m.type == "SUBTITLES" else None, characteristics=m.characteristics,
        channels=m.channels, stable_rendition_id=m.stable_rendition_id) for m in doc.media)
    variants = []
    for p in doc.playlists:
        si = p.stream_info
        variants.append(Variant(
            uri=p.uri, bandwidth_bps=int(si.bandwidth), average_bandwidth_bps=si.average_bandwidth,
            codecs=si.codecs, resolution=tuple(si.resolution) if si.resolution else None,
            frame_rate=si.frame_rate, video_range=si.video_range, audio_group=si.audio,
            subtitles_group=si.subtitles, pathway_id=si.pathway_id, stable_variant_id=si.stable_variant_id))
    iframes = []
    for p in doc.iframe_playlists:
        si = p.iframe_stream_info
        iframes.append(IFrameVariant(
            uri=p.uri, bandwidth_bps=int(si.bandwidth), average_bandwidth_bps=si.average_bandwidth,
            codecs=si.codecs, resolution=tuple(si.resolution) if si.resolution else None,
            video_range=si.video_range, pathway_id=si.pathway_id, stable_variant_id=si.stable_variant_id))
    steering = None
    if doc.content_steering is not None:
        steering = ContentSteering(server_uri=doc.content_steering.uri,
                                   pathway_id=doc.content_steering.pathway_id)
    return Multivariant(version=int(doc.version or 1), independent_segments=bool(doc.is_independent_segments),
                        media=media, variants=tuple(variants), iframe_variants=tuple(iframes),
                        steering=steering)


def _parse_range(text: str | None, previous_end: int | None) -> ByteRange | None:
    if not text:
        return None
    length, _, offset = text.partition("@")
    if offset:
        return ByteRange(length=int(length), offset=int(offset))
    if previous_end is None:
        raise ValueError("EXT-X-BYTERANGE without offset and no previous range")
    return ByteRange(length=int(length), offset=previous_end)


def loads_media_playlist(text: str) -> MediaPlaylist:
    doc = m3u8.loads(text)
    segs = []
    end = None
    map_uri = map_range = None
    for s in doc.segments:
        r = _parse_range(s.byterange, end)
        end = None if r is None else r.end
        segs.append(MediaSegment(uri=s.uri, duration_s=_dur(s.duration), byterange=r))
        if s.init_section is not None and map_uri is None:
            map_uri = s.init_section.uri
            map_range = _parse_range(s.init_section.byterange, 0)
    return MediaPlaylist(
        version=int(doc.version or 1), target_duration_s=int(doc.target_duration),
        playlist_type=(doc.playlist_type or "").upper(), independent_segments=bool(doc.is_independent_segments),
        iframes_only=bool(doc.is_i_frames_only), map_uri=map_uri, map_byterange=map_range,
        segments=tuple(segs), endlist=bool(doc.is_endlist))


# --- the whole title -------------------------------------------------------------------------------

def render_title_playlists(title: Title) -> dict[str, str]:
    """Every playlist of the title as ``{path: text}``; ``master.m3u8`` included, last."""
    out: dict[str, str] = {}
    for v in title.video:
        out[v.playlist] = dumps_media_playlist(media_playlist_for(v))
    for a in title.audio:
        out[a.playlist] = dumps_media_playlist(media_playlist_for(a))
    for s in title.subtitles:
        out[s.playlist] = dumps_media_playlist(subtitle_playlist_for(s))
    for i in title.iframes:
        out[i.playlist] = dumps_media_playlist(iframe_playlist_for(i, title.rendition(i.rendition)))
    out["master.m3u8"] = dumps_multivariant(multivariant_from_title(title))
    return out
