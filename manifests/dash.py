"""DASH MPDs of a title over the very segments its HLS playlists name, written and read with ``mpegdash``.

``dumps_mpd(title)`` writes one static MPD (``{title}/manifest.mpd``, paths relative to the title
root like ``master.m3u8``'s) and ``loads_mpd(text)`` reads an MPD back into a ``Title``: pure text in,
text out. What the MPD says, per the title's layout:

* ``segments``: each Representation has a ``SegmentTemplate`` with ``$Number%05d$`` over its
  ``init.mp4`` / ``NNNNN.m4s`` and a ``SegmentTimeline`` (exact durations, runs folded with ``@r``);
  paths that do not follow the template get a ``SegmentList`` instead.
* ``byterange``: a ``SegmentList`` per Representation: ``Initialization@range`` and one
  ``SegmentURL@mediaRange`` per segment of the one file (its ``BaseURL``), with the same timeline.

One video ``AdaptationSet`` per codec family (H.264, HEVC, AV1), one audio ``AdaptationSet`` per
language and codec (``lang``, ``Label``, ``Role`` main/alternate, ``AudioChannelConfiguration``:
MPEG's CICP scheme for AAC, Dolby's for AC-3/E-AC-3), WebVTT subtitles (``Role`` ``subtitle``,
``caption`` for SDH, ``forced-subtitle``) and the I-frame renditions as trick-mode sets
(``EssentialProperty`` ``http://dashif.org/guidelines/trickmode`` naming the video set) whose
segments are the keyframe byte ranges the HLS I-frame playlists name -- only when asked
(``trick_mode=True``): those ranges are a fragment's ``moof`` and its first sample, which HLS allows
but a DASH client reads as a truncated segment (Debian's ffmpeg waits for the rest of the ``mdat``
and never returns), so the published MPD has no trick-mode sets until ingest writes I-frame-only
fragments. Codec strings are the HLS
``CODECS`` ones; ``@bandwidth`` is the track's peak (``measured_bandwidth``).

Reading is defensive (an MPD comes from the network): at most ``MAX_MPD_BYTES``, no DTD (so no
entity expansion and no external entity, via ``defusedxml``), at most ``MAX_SEGMENTS`` segments in
all and ``MAX_DURATION_S`` of presentation; anything else is an ``MpdError`` with one line saying what.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Iterable, Sequence
from xml.dom import minidom

import defusedxml.minidom
from defusedxml import DefusedXmlException
from mpegdash.nodes import (S, URL, AdaptationSet, BaseURL, Descriptor, MPEGDASH, Period, Representation,
                            SegmentList, SegmentTemplate, SegmentTimeline, SegmentURL)
from mpegdash.parser import MPEGDASHParser
from mpegdash.utils import parse_child_nodes

from .title import (AudioTrack, IFrameTrack, InitSegment, Segment, SubtitleTrack, Title, VideoRendition)

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
MAX_MPD_BYTES = 16 * 1024 * 1024
MAX_SEGMENTS = 1_000_000
MAX_DURATION_S = 7 * 24 * 3600.0
_CICP = {1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 6: 6, 8: 12}  # channel count -> ISO/IEC 23001-8 ChannelConfiguration
_DOLBY = {1: "4000", 2: "A000", 6: "F801", 8: "FA01"}  # channel count -> Dolby's 16-bit speaker mask
_FAMILY_OF = (("avc1", "h264"), ("avc3", "h264"), ("hvc1", "hevc"), ("hev1", "hevc"), ("av01", "av1"))
_NUMBERED = re.compile(r"(.*/)?(\d{5})(\.[A-Za-z0-9]+)")


class MpdError(ValueError):
    """MPD text that cannot be read as a static presentation: what is wrong, in one line."""


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
    one_file = {s.path for s in segments} | ({init.path} if init is not None else set())
    ranged = all(s.offset_bytes is not None for s in segments) and len(one_file) == 1
    if ranged:
        base = BaseURL()
        base.base_url_value = segments[0].path
        rep.base_urls = [base]
    if init is not None:
        u = URL()
        if ranged:
            u.range = _range_text(init.offset_bytes or 0, init.size_bytes)
        else:
            u.source_url = init.path
            if init.offset_bytes is not None:
                u.range = _range_text(init.offset_bytes, init.size_bytes)
        sl.initializations = [u]
    urls = []
    for s in segments:
        su = SegmentURL()
        if not ranged:
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


def _family(codec: str) -> str:
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
    if a.codec.startswith(("ec-3", "ac-3")) and a.channels in _DOLBY:
        return _descriptor(DOLBY_CHANNELS_SCHEME, _DOLBY[a.channels])
    return _descriptor(CICP_CHANNELS_SCHEME, str(_CICP.get(a.channels, a.channels)))


def _audio_sets(title: Title, first_id: int) -> list[AdaptationSet]:
    keyed: dict[tuple[str, str], list[AudioTrack]] = {}
    for a in title.audio:
        keyed.setdefault((a.language, _family(a.codec)), []).append(a)
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
    sets = []
    by_id = {v.id: v for v in title.video}
    for n, i in enumerate(title.iframes):
        v = by_id[i.rendition]
        aset = AdaptationSet()
        aset.id = first_id + n
        aset.content_type = "video"
        aset.mime_type = "video/mp4"
        aset.essential_properties = [_descriptor(TRICKMODE_SCHEME, str(set_of[v.id]))]
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
        aset.representations = [rep]
        sets.append(aset)
    return sets


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


def dumps_mpd(title: Title, *, trick_mode: bool = False) -> str:
    """``manifest.mpd`` text: UTF-8 XML declaration, two-space indent, trailing newline."""
    doc = MPEGDASHParser.get_as_doc(mpd_from_title(title, trick_mode=trick_mode))
    text: bytes = doc.toprettyxml(indent="  ", encoding="UTF-8")
    return text.decode("utf-8")


# --- reading --------------------------------------------------------------------------------------

_ISO = re.compile(r"P(?:(\d+(?:\.\d+)?)D)?(?:T(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?)?")


def parse_iso_duration(text: str | None, what: str) -> float:
    """Seconds of an xs:duration without years or months (``PT1H2M3.5S``, ``P1DT2H``)."""
    m = _ISO.fullmatch((text or "").strip())
    if not text or m is None or not any(m.groups()):
        raise MpdError(f"MPD: {what} is not a duration: {text!r}")
    days, hours, minutes, seconds = (float(g) if g else 0.0 for g in m.groups())
    return days * 86400 + hours * 3600 + minutes * 60 + seconds


def _parse_document(text: str | bytes) -> minidom.Document:
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
            inverse = {v: k for k, v in _CICP.items()}
            return inverse.get(int(d.value), int(d.value))
        if d.scheme_id_uri == DOLBY_CHANNELS_SCHEME and d.value:
            inverse_dolby = {v: k for k, v in _DOLBY.items()}
            return inverse_dolby.get(d.value.upper(), 2)
        if d.scheme_id_uri == "urn:mpeg:dash:23003:3:audio_channel_configuration:2011" and (d.value or "").isdigit():
            return int(d.value or 2)
    return 2


def _need(value: object, what: str) -> None:
    if value is None or value == "":
        raise MpdError(f"MPD: {what} is missing")


def loads_mpd(text: str | bytes, *, title_id: str | None = None) -> Title:
    """The ``Title`` a static MPD describes. Fields an MPD does not carry (VMAF, devices, nominal
    bitrates, average bandwidths, HLS playlist paths and audio pairing) are left empty; segment sizes
    are known only from byte ranges (else 0)."""
    doc = _parse_document(text)
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
                    id=rep.id, codec=codec, codec_family=_family(codec), width=int(width), height=int(height),
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


__all__ = ["MPD_CONTENT_TYPE", "MpdError", "dumps_mpd", "iso_duration", "loads_mpd", "mpd_from_title",
           "parse_iso_duration"]
