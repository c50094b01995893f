"""Reading DASH MPDs into the title model, defensively: an MPD comes from the network.

At most ``MAX_MPD_BYTES``, no DTD (so no entity expansion and no external entity, via
``defusedxml``), at most ``MAX_SEGMENTS`` segments in all and ``MAX_DURATION_S`` of presentation;
anything else is an ``MpdError`` with one line saying what. ``loads_mpd`` gives the ``Title``;
``loads_steered_mpd`` also the service locations (MPD-level ``BaseURL@serviceLocation``) and the
``ContentSteering`` element a steered MPD carries. What the writer puts where: ``dash.py``.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from fractions import Fraction
from xml.dom import minidom

import defusedxml.minidom
from defusedxml import DefusedXmlException
from mpegdash.nodes import MPEGDASH, AdaptationSet, Representation, SegmentTimeline
from mpegdash.utils import parse_child_nodes

from .dash import (CICP_CHANNELS_SCHEME, CICP_OF_CHANNELS, CONTENT_STEERING_ELEMENT, DOLBY_CHANNELS_SCHEME,
                   DOLBY_MASK_OF_CHANNELS, IFRAMES_SUFFIX, MAX_DURATION_S, MAX_MPD_BYTES, MAX_SEGMENTS, ROLE_SCHEME,
                   TRICKMODE_SCHEME, DashSteering, MpdError, ServiceLocation, family_of)

__all__ = ["SteeredMpd", "loads_mpd", "loads_steered_mpd", "parse_iso_duration", "parse_mpd_document"]
from .title import AudioTrack, IFrameTrack, InitSegment, Segment, SubtitleTrack, Title, VideoRendition

_ISO = re.compile(r"P(?:(\d+(?:\.\d+)?)D)?(?:T(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?)?")


def parse_iso_duration(text: str | None, what: str) -> float:
    """Seconds of an xs:duration without years or months (``PT1H2M3.5S``, ``P1DT2H``)."""
    m = _ISO.fullmatch((text or "").strip())
    if not text or m is None or not any(m.groups()):
        raise MpdError(f"MPD: {what} is not a duration: {text!r}")
    days, hours, minutes, seconds = (float(g) if g else 0.0 for g in m.groups())
    return days * 86400 + hours * 3600 + minutes * 60 + seconds


def parse_mpd_document(text: str | bytes) -> minidom.Document:
    """The XML document of an MPD, bounded and with DTDs refused (``MpdError`` otherwise)."""
    if len(text) > MAX_MPD_BYTES:
        raise MpdError(f"MPD: {len(text)} bytes, more than the {MAX_MPD_BYTES} an MPD may have")
    try:
        doc: minidom.Document = defusedxml.minidom.parseString(text, forbid_dtd=True)
        return doc
    except DefusedXmlException as e:
        raise MpdError(f"MPD: refused: {type(e).__name__} (a DTD or entity)") from None
    except Exception as e:  # expat's ExpatError and friends
        raise MpdError(f"MPD: not XML: {e}") from None


@dataclass
class _Budget:
    segments: int = 0


def _expand_timeline(tl: SegmentTimeline | None, timescale: int, budget: _Budget, what: str) -> list[float]:
    """The durations (s) a SegmentTimeline names, refusing more than ``MAX_SEGMENTS`` in all."""
    out: list[float] = []
    at = None
    for s in (tl.Ss or []) if tl is not None else []:
        if s.d is None or s.d <= 0:
            raise MpdError(f"MPD: {what}: a SegmentTimeline S without a positive @d")
        if s.t is not None and at is not None and s.t != at:
            raise MpdError(f"MPD: {what}: a SegmentTimeline with a gap or overlap at t={s.t}")
        repeat = s.r or 0
        if repeat < 0:
            raise MpdError(f"MPD: {what}: open-ended SegmentTimeline (@r=-1) in a static MPD")
        budget.segments += repeat + 1
        if budget.segments > MAX_SEGMENTS:
            raise MpdError(f"MPD: more than {MAX_SEGMENTS} segments")
        at = (s.t if s.t is not None else at or 0) + s.d * (repeat + 1)
        out.extend([s.d / timescale] * (repeat + 1))
    return out


def _range(text: str | None, what: str) -> tuple[int, int]:
    m = re.fullmatch(r"(\d+)-(\d+)", text or "")
    if m is None or int(m.group(2)) < int(m.group(1)):
        raise MpdError(f"MPD: {what}: bad byte range {text!r}")
    return int(m.group(1)), int(m.group(2)) - int(m.group(1)) + 1


def _segments_of(rep: Representation, duration_s: float, budget: _Budget
                 ) -> tuple[InitSegment | None, tuple[Segment, ...]]:
    what = f"Representation {rep.id}"
    base = rep.base_urls[0].base_url_value if rep.base_urls else None
    if rep.segment_templates:
        st = rep.segment_templates[0]
        timescale = st.timescale or 1
        if not st.media:
            raise MpdError(f"MPD: {what}: SegmentTemplate without @media")
        if st.segment_timelines:
            durations = _expand_timeline(st.segment_timelines[0], timescale, budget, what)
        elif st.duration:
            count = math.ceil(duration_s * timescale / st.duration - 1e-9)
            budget.segments += count
            if budget.segments > MAX_SEGMENTS:
                raise MpdError(f"MPD: {what}: the SegmentTemplate expands to more than {MAX_SEGMENTS} segments")
            durations = [min(st.duration / timescale, duration_s - i * st.duration / timescale) for i in range(count)]
        else:
            raise MpdError(f"MPD: {what}: SegmentTemplate with neither SegmentTimeline nor @duration")
        first = st.start_number if st.start_number is not None else 1

        def fill(template: str, number: int) -> str:
            out = template.replace("$RepresentationID$", str(rep.id)).replace("$Bandwidth$", str(rep.bandwidth))
            out = re.sub(r"\$Number(?:%0(\d+)d)?\$", lambda m: f"{number:0{int(m.group(1) or 1)}d}", out)
            return out.replace("$$", "$")

        init = InitSegment(path=fill(st.initialization, first), size_bytes=0) if st.initialization else None
        segs = tuple(Segment(path=fill(st.media, first + i), duration_s=d, size_bytes=0)
                     for i, d in enumerate(durations))
        return init, segs
    if rep.segment_lists:
        sl = rep.segment_lists[0]
        timescale = sl.timescale or 1
        urls = sl.segment_urls or []
        if sl.segment_timelines:
            durations = _expand_timeline(sl.segment_timelines[0], timescale, budget, what)
        elif sl.duration:
            durations = [sl.duration / timescale] * len(urls)
        else:
            raise MpdError(f"MPD: {what}: SegmentList with neither SegmentTimeline nor @duration")
        if len(durations) != len(urls):
            raise MpdError(f"MPD: {what}: {len(urls)} SegmentURLs but a timeline of {len(durations)}")
        init = None
        if sl.initializations:
            u = sl.initializations[0]
            path = u.source_url or base
            if path is None:
                raise MpdError(f"MPD: {what}: Initialization without sourceURL or BaseURL")
            offset, size = _range(u.range, what) if u.range else (None, 0)
            init = InitSegment(path=path, size_bytes=size, offset_bytes=offset)
        listed: list[Segment] = []
        for su, d in zip(urls, durations):
            path = su.media or base
            if path is None:
                raise MpdError(f"MPD: {what}: SegmentURL without @media or BaseURL")
            offset, size = _range(su.media_range, what) if su.media_range else (None, 0)
            listed.append(Segment(path=path, duration_s=d, size_bytes=size, offset_bytes=offset))
        return init, tuple(listed)
    raise MpdError(f"MPD: {what}: no SegmentTemplate or SegmentList (SegmentBase with a sidx is not read)")


def _fps(text: str | None) -> float:
    if not text:
        return 0.0
    try:
        return float(Fraction(text))
    except (ValueError, ZeroDivisionError):
        raise MpdError(f"MPD: bad frameRate {text!r}") from None


def _roles(aset: AdaptationSet) -> set[str]:
    return {d.value or "" for d in (aset.roles or []) if d.scheme_id_uri == ROLE_SCHEME}


def _channels(rep: Representation, aset: AdaptationSet) -> int:
    for d in (rep.audio_channel_configurations or aset.audio_channel_configurations or []):
        if d.scheme_id_uri == CICP_CHANNELS_SCHEME and d.value and d.value.isdigit():
            inverse = {v: k for k, v in CICP_OF_CHANNELS.items()}
            return inverse.get(int(d.value), int(d.value))
        if d.scheme_id_uri == DOLBY_CHANNELS_SCHEME and d.value:
            inverse_dolby = {v: k for k, v in DOLBY_MASK_OF_CHANNELS.items()}
            return inverse_dolby.get(d.value.upper(), 2)
        if d.scheme_id_uri == "urn:mpeg:dash:23003:3:audio_channel_configuration:2011" and (d.value or "").isdigit():
            return int(d.value or 2)
    return 2


def _need(value: object, what: str) -> None:
    if value is None or value == "":
        raise MpdError(f"MPD: {what} is missing")


@dataclass(frozen=True, kw_only=True)
class SteeredMpd:
    """An MPD read whole: its title, its MPD-level service locations (``BaseURL``; ids are the
    ``serviceLocation``, or ``base-N`` without one) and its ``ContentSteering``, if any."""

    title: Title
    locations: tuple[ServiceLocation, ...]
    steering: DashSteering | None


def loads_mpd(text: str | bytes, *, title_id: str | None = None) -> Title:
    """The ``Title`` a static MPD describes. Fields an MPD does not carry (VMAF, devices, nominal
    bitrates, average bandwidths, HLS playlist paths and audio pairing) are left empty; segment sizes
    are known only from byte ranges (else 0)."""
    return loads_steered_mpd(text, title_id=title_id).title


def loads_steered_mpd(text: str | bytes, *, title_id: str | None = None) -> SteeredMpd:
    """``loads_mpd`` with the MPD's service locations and content steering."""
    doc = parse_mpd_document(text)
    _labels_from_elements(doc)
    title = _title_of(doc, title_id)
    root = doc.documentElement
    assert root is not None  # parse_mpd_document gave a whole document
    locations = tuple(ServiceLocation(id=e.getAttribute("serviceLocation") or f"base-{n}", url=_text(e))
                      for n, e in enumerate(_children(root, "BaseURL")))
    steering = None
    found = _children(root, CONTENT_STEERING_ELEMENT)
    if found and locations:
        cs = found[0]
        uri = _text(cs)
        if not uri:
            raise MpdError("MPD: ContentSteering without a steering server URI")
        default = cs.getAttribute("defaultServiceLocation") or locations[0].id
        steering = DashSteering(locations=locations, server_uri=uri, default_location=default,
                                query_before_start=cs.getAttribute("queryBeforeStart").lower() == "true")
    return SteeredMpd(title=title, locations=locations, steering=steering)


def _children(node: minidom.Element, name: str) -> list[minidom.Element]:
    return [c for c in node.childNodes if c.nodeType == c.ELEMENT_NODE and c.localName == name]


def _text(node: minidom.Element) -> str:
    return "".join(c.data for c in node.childNodes if c.nodeType == c.TEXT_NODE).strip()


def _labels_from_elements(doc: minidom.Document) -> None:
    """A ``<Label>`` element as the ``label`` attribute ``mpegdash`` reads (see ``labels_as_elements``)."""
    for aset in doc.getElementsByTagName("AdaptationSet"):
        labels = _children(aset, "Label")
        if labels and not aset.hasAttribute("label"):
            aset.setAttribute("label", _text(labels[0]))


def _title_of(doc: minidom.Document, title_id: str | None) -> Title:
    try:
        found = parse_child_nodes(doc, "MPD", MPEGDASH)
    except (ValueError, TypeError) as e:  # mpegdash converts attributes with int()/float() as it reads
        raise MpdError(f"MPD: an attribute is malformed: {e}") from None
    if not found:
        raise MpdError("MPD: no MPD element")
    mpd = found[0]
    if (mpd.type or "static") != "static":
        raise MpdError(f"MPD: type {mpd.type!r}: only static (VOD) presentations are played")
    duration_s = parse_iso_duration(mpd.media_presentation_duration, "mediaPresentationDuration")
    if not 0 < duration_s <= MAX_DURATION_S:
        raise MpdError(f"MPD: mediaPresentationDuration {duration_s:g} s is not within (0, {MAX_DURATION_S:g}] s")
    if not mpd.periods:
        raise MpdError("MPD: no Period")
    if len(mpd.periods) > 1:
        raise MpdError(f"MPD: {len(mpd.periods)} Periods; one is played")
    budget = _Budget()
    video: list[VideoRendition] = []
    audio: list[AudioTrack] = []
    subs: list[SubtitleTrack] = []
    trick: list[tuple[Representation, InitSegment | None, tuple[Segment, ...]]] = []
    ranged = False
    for aset in mpd.periods[0].adaptation_sets or []:
        kind = aset.content_type or (aset.mime_type or "").split("/", 1)[0]
        tricky = any(d.scheme_id_uri == TRICKMODE_SCHEME for d in aset.essential_properties or [])
        for rep in aset.representations or []:
            _need(rep.id, "Representation@id")
            _need(rep.bandwidth, f"Representation {rep.id}: @bandwidth")
            codec = rep.codecs or aset.codecs
            mime = rep.mime_type or aset.mime_type or ""
            init, segs = _segments_of(rep, duration_s, budget)
            ranged = ranged or any(s.offset_bytes is not None for s in segs)
            if kind == "video" and tricky:
                trick.append((rep, init, segs))
            elif kind == "video":
                _need(codec, f"Representation {rep.id}: @codecs")
                _need(init, f"Representation {rep.id}: its initialization segment")
                assert codec is not None and init is not None
                width, height = rep.width or aset.width, rep.height or aset.height
                _need(width, f"Representation {rep.id}: @width")
                _need(height, f"Representation {rep.id}: @height")
                video.append(VideoRendition(
                    id=rep.id, codec=codec, codec_family=family_of(codec), width=int(width), height=int(height),
                    frame_rate=_fps(rep.frame_rate or aset.frame_rate), bandwidth_bps=int(rep.bandwidth),
                    average_bandwidth_bps=0, nominal_bitrate_kbps=0, playlist="", init=init, segments=segs))
            elif kind == "audio":
                _need(codec, f"Representation {rep.id}: @codecs")
                _need(init, f"Representation {rep.id}: its initialization segment")
                assert codec is not None and init is not None
                rate = rep.audio_sampling_rate or aset.audio_sampling_rate
                audio.append(AudioTrack(
                    id=rep.id, codec=codec, language=aset.lang or "und", name=aset.label or aset.lang or rep.id,
                    channels=_channels(rep, aset), bitrate_kbps=round(int(rep.bandwidth) / 1000),
                    group=f"aset-{aset.id}", default="main" in _roles(aset), bandwidth_bps=int(rep.bandwidth),
                    average_bandwidth_bps=0, playlist="", init=init, segments=segs,
                    sample_rate_hz=int(rate) if rate and str(rate).isdigit() else None))
            elif kind == "text" and mime == "text/vtt":
                roles = _roles(aset)
                subs.append(SubtitleTrack(
                    id=rep.id, language=aset.lang or "und", name=aset.label or aset.lang or rep.id,
                    forced="forced-subtitle" in roles, sdh="caption" in roles, default="main" in roles,
                    playlist="", segments=segs))
    if not video and not audio:
        raise MpdError("MPD: no video or audio Representation")
    by_id = {v.id: v for v in video}
    iframes = []
    for rep, _, segs in trick:
        rid = str(rep.id)
        main = by_id.get(rid[: -len(IFRAMES_SUFFIX)]) if rid.endswith(IFRAMES_SUFFIX) else None
        main = main or next((v for v in video if (v.width, v.height) == (rep.width, rep.height)), None)
        if main is not None:
            iframes.append(IFrameTrack(rendition=main.id, playlist="", bandwidth_bps=int(rep.bandwidth),
                                       segments=segs))
    longest = max((s.duration_s for v in video for s in v.segments), default=0.0)
    if longest <= 0:
        longest = max((s.duration_s for a in audio for s in a.segments), default=duration_s)
    return Title(title=title_id or str(mpd.id or "title"), duration_s=duration_s,
                 segment_duration_s=round(longest, 3), layout="byterange" if ranged else "segments",
                 video=tuple(video), audio=tuple(audio), subtitles=tuple(subs), iframes=tuple(iframes))

