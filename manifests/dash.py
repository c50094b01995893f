"""DASH MPDs of a title over the very segments its HLS playlists name, written and read with ``mpegdash``.

``dumps_mpd(title)`` writes one static MPD (``{title}/manifest.mpd``, paths relative to the title
root like ``master.m3u8``'s) and ``loads_mpd(text)`` reads an MPD back into a ``Title``: pure text in,
text out. What the MPD says, per the title's layout:

* ``segments``: each Representation has a ``SegmentTemplate`` with ``$Number%05d$`` over its
  ``init.mp4`` / ``NNNNN.m4s`` and a ``SegmentTimeline`` (exact durations, runs folded with ``@r``);
  paths that do not follow the template get a ``SegmentList`` instead.
* ``byterange``: a ``SegmentList`` per Representation: ``Initialization@sourceURL``+``@range`` and
  one ``SegmentURL@media``+``@mediaRange`` per segment, all naming the one file, with the same
  timeline. No Representation ``BaseURL``: dash.js does not fail a Representation-level BaseURL
  over to the next service location (measured: playback stops when its edge dies).

One video ``AdaptationSet`` per codec family (H.264, HEVC, AV1), one audio ``AdaptationSet`` per
language and codec (``lang``, ``Label``, ``Role`` main/alternate, ``AudioChannelConfiguration``:
MPEG's CICP scheme for AAC, Dolby's for AC-3/E-AC-3), WebVTT subtitles (``Role`` ``subtitle``,
``caption`` for SDH, ``forced-subtitle``) and the I-frame renditions as trick-mode sets
(``EssentialProperty`` ``http://dashif.org/guidelines/trickmode`` naming the video set) whose
segments are the keyframe byte ranges the HLS I-frame playlists name, with ``trick_mode=True``
(as ingest publishes): ingest puts each segment's key frame in a CMAF chunk of its own
(``origin.transcode.chunks``), so each range is a whole fragment inside the segment object. (A
title packaged otherwise would name a ``moof`` and the first sample of a longer ``mdat``, which
HLS allows but a DASH client reads as a truncated segment: keep ``trick_mode=False`` for it.)
Codec strings are the HLS
``CODECS`` ones; ``@bandwidth`` is the track's peak (``measured_bandwidth``).

A steered MPD (``steering=``, or ``steered.steer_mpd_text`` on a stored one) starts with a
``ContentSteering`` element and one MPD-level ``BaseURL serviceLocation=…`` per edge; every path
below stays relative, so it resolves under whichever location the player uses. Reading, defensively:
``dash_read.py``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Iterable, Sequence
from xml.dom import minidom

from mpegdash.nodes import (S, URL, AdaptationSet, Descriptor, MPEGDASH, Period, Representation,
                            SegmentList, SegmentTemplate, SegmentTimeline, SegmentURL)
from mpegdash.parser import MPEGDASHParser

from .title import (AudioTrack, InitSegment, Segment, SubtitleTrack, Title, VideoRendition)

MPD_NAMESPACE = "urn:mpeg:dash:schema:mpd:2011"
MPD_CONTENT_TYPE = "application/dash+xml"
#: A CMAF presentation addressed by template (live profile, as dash.js and Shaka expect) ...
PROFILES_SEGMENTS = "urn:mpeg:dash:profile:isoff-live:2011,urn:mpeg:dash:profile:cmaf:2019"
#: ... and by byte ranges of one file per track (SegmentList: the main profile).
PROFILES_BYTERANGE = "urn:mpeg:dash:profile:isoff-main:2011"
ROLE_SCHEME = "urn:mpeg:dash:role:2011"
TRICKMODE_SCHEME = "http://dashif.org/guidelines/trickmode"
CICP_CHANNELS_SCHEME = "urn:mpeg:mpegB:cicp:ChannelConfiguration"
DOLBY_CHANNELS_SCHEME = "tag:dolby.com,2014:dash:audio_channel_configuration:2011"
VIDEO_TIMESCALE = 90000
TEXT_TIMESCALE = 1000
IFRAMES_SUFFIX = "-iframes"
CONTENT_STEERING_ELEMENT = "ContentSteering"
MAX_MPD_BYTES = 16 * 1024 * 1024
MAX_SEGMENTS = 1_000_000
MAX_DURATION_S = 7 * 24 * 3600.0
CICP_OF_CHANNELS: dict[int, int] = {1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 6: 6, 8: 12}  # channel count -> ISO/IEC 23001-8 ChannelConfiguration
DOLBY_MASK_OF_CHANNELS: dict[int, str] = {1: "4000", 2: "A000", 6: "F801", 8: "FA01"}  # channel count -> Dolby's 16-bit speaker mask
_FAMILY_OF = (("avc1", "h264"), ("avc3", "h264"), ("hvc1", "hevc"), ("hev1", "hevc"), ("av01", "av1"))
_NUMBERED = re.compile(r"(.*/)?(\d{5})(\.[A-Za-z0-9]+)")


class MpdError(ValueError):
    """MPD text that cannot be read as a static presentation: what is wrong, in one line."""


@dataclass(frozen=True, kw_only=True)
class ServiceLocation:
    """One place the whole presentation is served from: an MPD-level ``BaseURL@serviceLocation``
    (a content-steering pathway: an edge and its ``/t/{token}/{title}/`` prefix)."""

    id: str
    url: str


@dataclass(frozen=True, kw_only=True)
class DashSteering:
    """What a steered MPD carries (DASH-IF CTS 001 "Content Steering for DASH"): the service
    locations, the steering server's URI, the location to start with, and whether the client asks
    the steering server before its first segment (``queryBeforeStart``)."""

    locations: tuple[ServiceLocation, ...]
    server_uri: str
    default_location: str
    query_before_start: bool = True


# --- writing --------------------------------------------------------------------------------------

def iso_duration(seconds: float) -> str:
    """``PT{s}S`` with milliseconds (xs:duration), e.g. ``PT6.005S``."""
    return f"PT{max(0.0, seconds):.3f}S"


def _frame_rate(fps: float) -> str:
    for n in (24, 30, 60, 120):
        if abs(fps - n * 1000 / 1001) < 0.005:
            return f"{n * 1000}/1001"
    f = Fraction(fps).limit_denominator(1001)
    return str(f.numerator) if f.denominator == 1 else f"{f.numerator}/{f.denominator}"


def _ticks(durations_s: Iterable[float], timescale: int) -> list[int]:
    """Each duration in ticks, rounded so that the running sum never drifts from the true one."""
    out: list[int] = []
    total_s = 0.0
    at = 0
    for d in durations_s:
        total_s += d
        end = round(total_s * timescale)
        out.append(end - at)
        at = end
    return out


def _timeline(segments: Sequence[Segment], timescale: int) -> SegmentTimeline:
    runs: list[S] = []
    for d in _ticks((s.duration_s for s in segments), timescale):
        if runs and runs[-1].d == d:
            runs[-1].r = (runs[-1].r or 0) + 1
            continue
        s = S()
        s.t = 0 if not runs else None
        s.d = d
        runs.append(s)
    tl = SegmentTimeline()
    tl.Ss = runs
    return tl


def _template_for(segments: Sequence[Segment]) -> tuple[str, int] | None:
    """``(media template, startNumber)`` when the paths are ``dir/NNNNN.ext`` with consecutive numbers."""
    if not segments or any(s.offset_bytes is not None for s in segments):
        return None
    first = _NUMBERED.fullmatch(segments[0].path)
    if first is None:
        return None
    folder, number, ext = first.group(1) or "", int(first.group(2)), first.group(3)
    for i, s in enumerate(segments):
        if s.path != f"{folder}{number + i:05d}{ext}":
            return None
    return f"{folder}$Number%05d${ext}", number


def _range_text(offset: int, size: int) -> str:
    return f"{offset}-{offset + size - 1}"


def _addressing(rep: Representation, init: InitSegment | None, segments: Sequence[Segment], timescale: int) -> None:
    """Put the segment addressing of one track on ``rep``: a template, or a list (ranges or URLs)."""
    template = _template_for(segments)
    if template is not None and (init is None or init.offset_bytes is None):
        st = SegmentTemplate()
        st.timescale = timescale
        st.media, st.start_number = template
        st.initialization = init.path if init is not None else None
        st.segment_timelines = [_timeline(segments, timescale)]
        rep.segment_templates = [st]
        return
    sl = SegmentList()
    sl.timescale = timescale
    # every URL names its file itself (no Representation BaseURL): relative to the MPD's service
    # locations only, so a player's failover between them covers every request
    if init is not None:
        u = URL()
        u.source_url = init.path
        if init.offset_bytes is not None:
            u.range = _range_text(init.offset_bytes, init.size_bytes)
        sl.initializations = [u]
    urls = []
    for s in segments:
        su = SegmentURL()
        su.media = s.path
        if s.offset_bytes is not None:
            su.media_range = _range_text(s.offset_bytes, s.size_bytes)
        urls.append(su)
    sl.segment_urls = urls
    sl.segment_timelines = [_timeline(segments, timescale)]
    rep.segment_lists = [sl]


def _descriptor(scheme: str, value: str | None) -> Descriptor:
    d = Descriptor()
    d.scheme_id_uri = scheme
    d.value = value
    return d


def family_of(codec: str) -> str:
    """The codec family of an RFC 6381 codec string: ``avc1.64001f`` -> ``h264``."""
    for prefix, family in _FAMILY_OF:
        if codec.startswith(prefix):
            return family
    return codec.split(".", 1)[0]


def _video_sets(title: Title, first_id: int) -> tuple[list[AdaptationSet], dict[str, int]]:
    sets: list[AdaptationSet] = []
    set_of: dict[str, int] = {}
    families: dict[str, list[VideoRendition]] = {}
    for v in title.video:
        families.setdefault(v.codec_family, []).append(v)
    for n, (family, members) in enumerate(families.items()):
        aset = AdaptationSet()
        aset.id = first_id + n
        aset.content_type = "video"
        aset.mime_type = "video/mp4"
        aset.segment_alignment = True
        aset.start_with_sap = 1
        aset.max_width = max(v.width for v in members)
        aset.max_height = max(v.height for v in members)
        aset.roles = [_descriptor(ROLE_SCHEME, "main")]
        reps = []
        for v in members:
            rep = Representation()
            rep.id = v.id
            rep.bandwidth = v.bandwidth_bps
            rep.codecs = v.codec
            rep.width, rep.height = v.width, v.height
            rep.frame_rate = _frame_rate(v.frame_rate)
            rep.sar = "1:1"
            _addressing(rep, v.init, v.segments, VIDEO_TIMESCALE)
            reps.append(rep)
            set_of[v.id] = aset.id
        aset.representations = reps
        sets.append(aset)
    return sets, set_of


def _channel_configuration(a: AudioTrack) -> Descriptor:
    if a.codec.startswith(("ec-3", "ac-3")) and a.channels in DOLBY_MASK_OF_CHANNELS:
        return _descriptor(DOLBY_CHANNELS_SCHEME, DOLBY_MASK_OF_CHANNELS[a.channels])
    return _descriptor(CICP_CHANNELS_SCHEME, str(CICP_OF_CHANNELS.get(a.channels, a.channels)))


def _audio_sets(title: Title, first_id: int) -> list[AdaptationSet]:
    keyed: dict[tuple[str, str], list[AudioTrack]] = {}
    for a in title.audio:
        keyed.setdefault((a.language, family_of(a.codec)), []).append(a)
    sets = []
    for n, ((language, _), members) in enumerate(keyed.items()):
        aset = AdaptationSet()
        aset.id = first_id + n
        aset.content_type = "audio"
        aset.mime_type = "audio/mp4"
        aset.lang = language
        aset.label = members[0].name
        aset.segment_alignment = True
        aset.start_with_sap = 1
        aset.roles = [_descriptor(ROLE_SCHEME, "main" if any(a.default for a in members) else "alternate")]
        reps = []
        for a in members:
            rep = Representation()
            rep.id = a.id
            rep.bandwidth = a.bandwidth_bps
            rep.codecs = a.codec
            if a.sample_rate_hz:
                rep.audio_sampling_rate = str(a.sample_rate_hz)
            rep.audio_channel_configurations = [_channel_configuration(a)]
            _addressing(rep, a.init, a.segments, a.sample_rate_hz or 48000)
            reps.append(rep)
        aset.representations = reps
        sets.append(aset)
    return sets


def _subtitle_roles(s: SubtitleTrack) -> list[Descriptor]:
    kinds = [k for k, on in (("forced-subtitle", s.forced), ("caption", s.sdh)) if on] or ["subtitle"]
    return [_descriptor(ROLE_SCHEME, k) for k in (*kinds, *(["main"] if s.default else []))]


def _subtitle_sets(title: Title, first_id: int) -> list[AdaptationSet]:
    sets = []
    for n, s in enumerate(title.subtitles):
        aset = AdaptationSet()
        aset.id = first_id + n
        aset.content_type = "text"
        aset.mime_type = "text/vtt"
        aset.lang = s.language
        aset.label = s.name
        aset.roles = _subtitle_roles(s)
        rep = Representation()
        rep.id = s.id
        rep.bandwidth = max(256, max((round(x.size_bytes * 8 / x.duration_s) for x in s.segments
                                      if x.duration_s > 0), default=0))
        _addressing(rep, None, s.segments, TEXT_TIMESCALE)
        aset.representations = [rep]
        sets.append(aset)
    return sets


def _trickmode_sets(title: Title, first_id: int, set_of: dict[str, int]) -> list[AdaptationSet]:
    """One trick-mode set per video set (codec family), a Representation per I-frame track."""
    sets: dict[int, AdaptationSet] = {}
    by_id = {v.id: v for v in title.video}
    for i in title.iframes:
        v = by_id[i.rendition]
        aset = sets.get(set_of[v.id])
        if aset is None:
            aset = sets[set_of[v.id]] = AdaptationSet()
            aset.content_type = "video"
            aset.mime_type = "video/mp4"
            aset.essential_properties = [_descriptor(TRICKMODE_SCHEME, str(set_of[v.id]))]
            aset.representations = []
        rep = Representation()
        rep.id = v.id + IFRAMES_SUFFIX
        rep.bandwidth = i.bandwidth_bps
        rep.codecs = v.codec
        rep.width, rep.height = v.width, v.height
        rep.sar = "1:1"
        rep.coding_dependency = False
        seg_s = max((s.duration_s for s in i.segments), default=0.0)
        rep.max_playout_rate = max(1, round(seg_s * v.frame_rate)) if seg_s else None
        rep.frame_rate = _frame_rate(1 / seg_s) if seg_s else None
        _addressing(rep, v.init, i.segments, VIDEO_TIMESCALE)
        aset.representations.append(rep)
    ordered = [sets[k] for k in sorted(sets)]  # in the order of the video sets they speed through
    for n, aset in enumerate(ordered):
        aset.id = first_id + n
    return ordered


def mpd_from_title(title: Title, *, trick_mode: bool = False) -> MPEGDASH:
    """The static MPD of ``title`` as ``mpegdash`` nodes (paths relative to the title root); with
    ``trick_mode``, the I-frame tracks as trick-mode sets (see the module's note)."""
    mpd = MPEGDASH()
    mpd.xmlns = MPD_NAMESPACE
    mpd.id = title.title
    mpd.type = "static"
    mpd.profiles = PROFILES_BYTERANGE if title.layout == "byterange" else PROFILES_SEGMENTS
    mpd.media_presentation_duration = iso_duration(title.duration_s)
    mpd.min_buffer_time = iso_duration(title.segment_duration_s)
    tracks: tuple[VideoRendition | AudioTrack | SubtitleTrack, ...] = (*title.video, *title.audio, *title.subtitles)
    longest = max((s.duration_s for t in tracks for s in t.segments), default=title.segment_duration_s)
    mpd.max_segment_duration = iso_duration(longest)
    video, set_of = _video_sets(title, 1)
    audio = _audio_sets(title, len(video) + 1)
    subs = _subtitle_sets(title, len(video) + len(audio) + 1)
    trick = _trickmode_sets(title, len(video) + len(audio) + len(subs) + 1, set_of) if trick_mode else []
    period = Period()
    period.id = "0"
    period.start = "PT0S"
    period.adaptation_sets = [*video, *audio, *subs, *trick]
    mpd.periods = [period]
    return mpd


def dumps_mpd(title: Title, *, trick_mode: bool = False, steering: DashSteering | None = None) -> str:
    """``manifest.mpd`` text: UTF-8 XML declaration, two-space indent, trailing newline; with
    ``steering``, the service locations and the ``ContentSteering`` element too."""
    doc = MPEGDASHParser.get_as_doc(mpd_from_title(title, trick_mode=trick_mode))
    labels_as_elements(doc)
    if steering is not None:
        set_steering(doc, steering)
    text: bytes = doc.toprettyxml(indent="  ", encoding="UTF-8")
    return text.decode("utf-8")


# --- what mpegdash lacks: the Label element, service locations, ContentSteering ------------------

#: AdaptationSet children that come after ``Label`` (ISO/IEC 23009-1 RepresentationBaseType, then
#: AdaptationSetType): a ``Label`` goes before the first of them.
_AFTER_LABEL = frozenset({"ProducerReferenceTime", "ContentPopularityRate", "Resync", "Accessibility", "Role",
                          "Rating", "Viewpoint", "ContentComponent", "BaseURL", "SegmentBase", "SegmentList",
                          "SegmentTemplate", "Representation"})


def _children(node: minidom.Element, name: str) -> list[minidom.Element]:
    return [c for c in node.childNodes if c.nodeType == c.ELEMENT_NODE and c.localName == name]


def _element(doc: minidom.Document, name: str, text: str, **attrs: str) -> minidom.Element:
    e = doc.createElement(name)
    for k, v in attrs.items():
        e.setAttribute(k, v)
    e.appendChild(doc.createTextNode(text))
    return e


def labels_as_elements(doc: minidom.Document) -> None:
    """``mpegdash`` writes an AdaptationSet's label as an attribute; the schema, dash.js and Shaka
    want a ``<Label>`` element."""
    for aset in doc.getElementsByTagName("AdaptationSet"):
        if not aset.hasAttribute("label"):
            continue
        label = _element(doc, "Label", aset.getAttribute("label"))
        aset.removeAttribute("label")
        later = next((c for c in aset.childNodes if c.nodeType == c.ELEMENT_NODE and c.localName in _AFTER_LABEL),
                     None)
        aset.insertBefore(label, later)


def set_steering(doc: minidom.Document, steering: DashSteering) -> None:
    """Replace the MPD-level ``BaseURL`` and ``ContentSteering`` elements of ``doc`` with one
    ``BaseURL serviceLocation=…`` per location and the ``ContentSteering`` element, first in the MPD."""
    if not steering.locations:
        raise MpdError("MPD: no service location to steer to")
    if steering.default_location not in {loc.id for loc in steering.locations}:
        raise MpdError(f"MPD: default service location {steering.default_location!r} is not one of the locations")
    root = doc.documentElement
    assert root is not None
    for old in (*_children(root, "BaseURL"), *_children(root, CONTENT_STEERING_ELEMENT)):
        root.removeChild(old)
    first = next((c for c in root.childNodes if c.nodeType == c.ELEMENT_NODE), None)
    cs = _element(doc, CONTENT_STEERING_ELEMENT, steering.server_uri,
                  defaultServiceLocation=steering.default_location,
                  queryBeforeStart="true" if steering.query_before_start else "false")
    root.insertBefore(cs, first)
    for loc in steering.locations:
        root.insertBefore(_element(doc, "BaseURL", loc.url, serviceLocation=loc.id), first)


__all__ = ["CONTENT_STEERING_ELEMENT", "MPD_CONTENT_TYPE", "DashSteering", "MpdError", "ServiceLocation",
           "dumps_mpd", "family_of", "iso_duration", "labels_as_elements", "mpd_from_title", "set_steering"]
