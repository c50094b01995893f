"""DASH for the player: a static MPD read (``manifests.loads_steered_mpd``: bounded, no DTDs) into
the same records an HLS multivariant playlist gives, so track selection, ABR, abandonment,
failover and content steering are the HLS ones.

* every MPD-level ``BaseURL@serviceLocation`` is a pathway (its id the service location); an MPD
  without one has the single default pathway, under the MPD's own URL;
* every video Representation is a ``Variant`` per audio codec (``CODECS`` = video, audio), its
  audio group that codec's audio Representations (one ``Rendition`` each: language, label,
  channels, default from ``Role`` main), its subtitles group the WebVTT sets (forced, SDH);
* each Representation's segments are a ``MediaPlaylist`` already parsed: nothing more is fetched
  for them. Its URI is the pathway's base URL with a ``#dash-{kind}-{id}`` fragment (a key the
  session's playlist table holds, never a request) and its final URL the pathway's base, so the
  segments' relative paths resolve under whichever edge serves them;
* the ``ContentSteering`` URI is the steering URI; its answers (``PATHWAY-PRIORITY`` naming
  service locations) are read like HLS ones.

A hostile MPD is one ``PlaylistError`` line (``MpdError`` says what).
"""
from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urljoin

from manifests import ByteRange, MpdError, SteeredMpd, loads_steered_mpd
from manifests.title import AudioTrack, InitSegment, Segment as TitleSegment, SubtitleTrack, VideoRendition

from .errors import PlaylistError
from .playlists import (DEFAULT_PATHWAY, InitSection, MediaPlaylist, MultivariantPlaylist, Rendition, Segment,
                        Variant)

__all__ = ["DashPresentation", "looks_like_mpd", "presentation_from_mpd"]

SDH = ("public.accessibility.transcribes-spoken-dialog", "public.accessibility.describes-music-and-sound")


@dataclass(frozen=True)
class DashPresentation:
    """An MPD as the player uses it: the multivariant view, every Representation's playlist by
    URI (``(playlist, base URL)``, as ``SessionContext.playlists`` holds them), the steering URI."""

    multivariant: MultivariantPlaylist
    playlists: dict[str, tuple[MediaPlaylist, str]]
    steering_uri: str | None


def looks_like_mpd(text: str) -> bool:
    """An XML document rather than an ``#EXTM3U`` playlist."""
    return text.lstrip("\ufeff \t\r\n").startswith("<")


def _range(offset: int | None, size: int) -> ByteRange | None:
    return None if offset is None else ByteRange(length=size, offset=offset)


def _playlist(init: InitSegment | None, segments: tuple[TitleSegment, ...], url: str) -> MediaPlaylist:
    if not segments:
        raise PlaylistError(f"{url}: a Representation without segments")
    section = None if init is None else InitSection(uri=init.path, byterange=_range(init.offset_bytes,
                                                                                     init.size_bytes))
    out, starts, at = [], [], 0.0
    for s in segments:
        out.append(Segment(uri=s.path, duration_s=s.duration_s, start_s=at,
                           byterange=_range(s.offset_bytes, s.size_bytes), init=section))
        starts.append(at)
        at += s.duration_s
    return MediaPlaylist(target_duration_s=max(s.duration_s for s in segments), segments=tuple(out),
                         starts_s=tuple(starts))


def presentation_from_mpd(text: str | bytes, url: str) -> DashPresentation:
    """The player's view of the MPD ``text`` fetched from ``url``."""
    try:
        mpd: SteeredMpd = loads_steered_mpd(text)
    except MpdError as e:
        raise PlaylistError(f"{url}: {e}") from None
    title = mpd.title
    if not title.video:
        raise PlaylistError(f"{url}: MPD: no video Representation")
    if mpd.locations:
        locations = [(loc.id, urljoin(url, loc.url)) for loc in mpd.locations]
    else:
        locations = [(DEFAULT_PATHWAY, urljoin(url, "."))]
    several = len(locations) > 1
    variants: list[Variant] = []
    renditions: list[Rendition] = []
    playlists: dict[str, tuple[MediaPlaylist, str]] = {}
    audio_codecs: list[str | None] = list(dict.fromkeys(a.codec for a in title.audio)) or [None]

    def key(base: str, kind: str, rid: str) -> str:
        return f"{base}#dash-{kind}-{rid}"

    def add(base: str, kind: str, track: VideoRendition | AudioTrack | SubtitleTrack) -> str:
        uri = key(base, kind, track.id)
        init = None if isinstance(track, SubtitleTrack) else track.init
        playlists[uri] = (_playlist(init, track.segments, url), base)
        return uri

    for pathway, base in locations:
        suffix = f"@{pathway}" if several else ""
        for a in title.audio:
            renditions.append(Rendition(
                type="AUDIO", group_id=f"audio-{a.codec}{suffix}", name=a.name, language=a.language,
                uri=add(base, "audio", a), default=a.default, autoselect=True, channels=a.channels, stable_id=a.id))
        for s in title.subtitles:
            renditions.append(Rendition(
                type="SUBTITLES", group_id=f"subs{suffix}", name=s.name, language=s.language,
                uri=add(base, "text", s), default=s.default, autoselect=True, forced=s.forced,
                characteristics=SDH if s.sdh else (), stable_id=s.id))
        for v in title.video:
            uri = add(base, "video", v)
            for codec in audio_codecs:
                audio_bps = max((a.bandwidth_bps for a in title.audio if a.codec == codec), default=0)
                variants.append(Variant(
                    uri=uri, bandwidth_bps=v.bandwidth_bps + audio_bps, average_bandwidth_bps=None,
                    codecs=(v.codec, codec) if codec else (v.codec,), width=v.width, height=v.height,
                    frame_rate=v.frame_rate or None, video_range="SDR",
                    audio_group=f"audio-{codec}{suffix}" if codec else None,
                    subtitles_group=f"subs{suffix}" if title.subtitles else None,
                    pathway_id=pathway, stable_id=f"{v.id}+{codec}" if codec else v.id))
    steering = mpd.steering.server_uri if mpd.steering is not None else None
    first = mpd.steering.default_location if mpd.steering is not None else None
    master = MultivariantPlaylist(variants=tuple(variants), renditions=tuple(renditions),
                                  steering_uri=urljoin(url, steering) if steering else None, steering_pathway=first)
    return DashPresentation(multivariant=master, playlists=playlists, steering_uri=master.steering_uri)
