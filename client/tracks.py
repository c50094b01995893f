"""Track selection, pure: which video ladder, audio rendition and subtitles a device plays.

`select_tracks(master, device, prefs)` -> `TrackSelection`, in four steps, each leaving a reason:

1. **Video filter.** Keep variants whose every codec in CODECS the device decodes (RFC 6381
   prefixes, `devices.codec_matches`), whose resolution fits the decoder (either orientation),
   frame rate is at most ``max_fps``, VIDEO-RANGE is one the device shows, and bandwidth is under
   the device's cap. A variant without CODECS is taken as ``avc1,mp4a.40.2`` (hls.js does the same).
2. **Audio.** Among the AUDIO renditions of the surviving variants' groups whose codec (read from
   the CODECS of the variants that use the group) the device decodes and whose channel count it
   can output: the language is the first of ``prefs.audio_languages`` present, else the DEFAULT
   rendition's, else the first one's. Within it, audio description is skipped unless asked for,
   then most channels wins, then the device's preferred codec, then DEFAULT=YES.
   Variants are narrowed to those that use the chosen rendition's group.
3. **Ladder.** One video range is kept (switching range mid-stream flips a TV's display mode):
   HDR (PQ, then HLG) before SDR when the device shows it, unless that range's lowest rung costs
   more than twice the cheapest rung overall (an HDR ladder that starts at 3 Mbps would stall on
   a slow network; SDR then wins). Variants are grouped into rungs by STABLE-VARIANT-ID (or by
   bitrate+resolution+codecs), one variant per pathway. Codecs may mix (as AVPlayer does), but a
   rung is dropped when another rung with a more preferred codec is at least as tall for no more
   bits (a 1080p H.264 rung next to a cheaper 1080p HEVC one). Last, hls.js's cap-to-screen: no
   rung taller than the smallest rung that covers the screen.
4. **Subtitles.** ``prefs.subtitle_language`` = a language: its full (non-forced) track, SDH only
   when ``prefs.prefer_sdh`` (else non-SDH first). Otherwise (None, "off", or no such track): a
   FORCED=YES track in the audio's language, if any — forced narrative subtitles (signs, foreign
   dialogue) are shown even with subtitles off.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

from .devices import DeviceProfile
from .errors import NoPlayableTracks
from .playlists import MultivariantPlaylist, Rendition, Variant

__all__ = ["TrackPreferences", "Rung", "TrackSelection", "PathwayClone", "select_tracks", "add_clones",
           "codec_kind", "language_matches"]

_VIDEO = ("avc1", "avc3", "hvc1", "hev1", "av01", "vp09", "vp08", "vp8", "vp9", "dvh1", "dvhe", "dva1", "dvav")
_AUDIO = ("mp4a", "ec-3", "ac-3", "ac-4", "opus", "flac", "mp3", "alac", "dtsc", "dtse", "dtsx")
_TEXT = ("wvtt", "stpp", "tx3g")
_RANGE_ORDER_HDR_FIRST = ("PQ", "HLG", "SDR")


def codec_kind(codec: str) -> str:
    """``video``, ``audio``, ``text`` or ``unknown`` for one RFC 6381 codec string."""
    fourcc = codec.strip().lower().split(".")[0]
    if fourcc in _VIDEO:
        return "video"
    if fourcc in _AUDIO:
        return "audio"
    if fourcc in _TEXT:
        return "text"
    return "unknown"


def language_matches(wanted: str, language: str | None) -> bool:
    """BCP 47 match on the primary subtag: ``en`` matches ``en-US`` and ``en-us`` matches ``en``."""
    if not language:
        return False
    return wanted.lower().split("-")[0] == language.lower().split("-")[0]


@dataclass(frozen=True)
class TrackPreferences:
    """What the viewer asked for."""

    audio_languages: tuple[str, ...] = ()
    """Most preferred first, e.g. ("fr", "en")."""
    subtitle_language: str | None = None
    """A language, "off", or None (not asked: forced subtitles only)."""
    prefer_sdh: bool = False
    audio_description: bool = False


@dataclass(frozen=True)
class Rung:
    """One rung of the device's ladder: the same stream offered on one or more pathways."""

    key: str
    bandwidth_bps: int
    nominal_bps: int
    width: int | None
    height: int | None
    frame_rate: float | None
    video_codec: str
    video_range: str
    variants: tuple[Variant, ...]
    """One per pathway, in the order the playlist lists the pathways."""

    def variant_for(self, pathway: str) -> Variant | None:
        for v in self.variants:
            if v.pathway_id == pathway:
                return v
        return None

    @property
    def label(self) -> str:
        res = f"{self.height}p" if self.height else "audio-only"
        return f"{res} {self.video_codec.split('.')[0]} {self.nominal_bps // 1000}kbps"


@dataclass(frozen=True)
class TrackSelection:
    """The chosen tracks; ``ladder`` is ascending by bitrate and is what ABR indexes."""

    ladder: tuple[Rung, ...]
    audio: Rendition | None
    subtitles: Rendition | None
    pathways: tuple[str, ...] = ()
    """Pathways that carry every chosen track, in playlist order."""
    audio_by_pathway: dict[str, Rendition | None] = field(default_factory=dict, compare=False)
    subtitles_by_pathway: dict[str, Rendition | None] = field(default_factory=dict, compare=False)
    reasons: tuple[str, ...] = field(default=(), compare=False)

    def audio_for(self, pathway: str) -> Rendition | None:
        return self.audio_by_pathway.get(pathway, self.audio)

    def subtitles_for(self, pathway: str) -> Rendition | None:
        return self.subtitles_by_pathway.get(pathway, self.subtitles)

    @property
    def ladder_bps(self) -> tuple[int, ...]:
        return tuple(r.nominal_bps for r in self.ladder)

    @property
    def subtitles_forced(self) -> bool:
        return self.subtitles is not None and self.subtitles.forced

    def describe(self) -> dict[str, object]:
        """A JSON-friendly summary for reports."""
        def rendition(r: Rendition | None) -> dict[str, object] | None:
            if r is None:
                return None
            return {"name": r.name, "language": r.language, "group": r.group_id, "channels": r.channels,
                    "forced": r.forced, "sdh": r.sdh}
        return {
            "ladder": [{"label": r.label, "bandwidth_bps": r.bandwidth_bps, "nominal_bps": r.nominal_bps,
                        "resolution": f"{r.width}x{r.height}" if r.height else None,
                        "codec": r.video_codec, "video_range": r.video_range,
                        "pathways": [v.pathway_id for v in r.variants]} for r in self.ladder],
            "audio": rendition(self.audio),
            "subtitles": rendition(self.subtitles),
            "pathways": list(self.pathways),
            "reasons": list(self.reasons),
        }


def _codecs(v: Variant) -> tuple[str, ...]:
    return v.codecs or ("avc1", "mp4a.40.2")


def _video_codec(v: Variant) -> str:
    for c in _codecs(v):
        if codec_kind(c) == "video":
            return c
    return ""


def _audio_codecs(v: Variant) -> list[str]:
    return [c for c in _codecs(v) if codec_kind(c) == "audio"]


def _video_ok(v: Variant, device: DeviceProfile) -> str | None:
    """None if the device can play the variant's video, else why not."""
    for c in _codecs(v):
        kind = codec_kind(c)
        if kind == "video" and device.video_codec_rank(c) is None:
            return f"video codec {c}"
        if kind == "audio" and device.audio_codec_rank(c) is None:
            return f"audio codec {c}"
        if kind == "unknown":
            return f"unknown codec {c}"
    if v.width and v.height and not device.fits_resolution(v.width, v.height):
        return f"resolution {v.width}x{v.height}"
    if v.frame_rate and v.frame_rate > device.max_fps + 0.01:
        return f"frame rate {v.frame_rate:g}"
    if v.video_range not in device.video_ranges:
        return f"video range {v.video_range}"
    if device.max_bitrate_kbps and v.bandwidth_bps > device.max_bitrate_kbps * 1000:
        return f"bitrate {v.bandwidth_bps // 1000} kbps"
    return None


def _choose_audio(variants: list[Variant], renditions: tuple[Rendition, ...], device: DeviceProfile,
                  prefs: TrackPreferences, reasons: list[str]) -> Rendition | None:
    groups = {v.audio_group for v in variants if v.audio_group}
    all_audio = [r for r in renditions if r.type == "AUDIO" and r.group_id in groups]
    if not all_audio:
        reasons.append("audio: muxed in the variants (no audio renditions)")
        return None
    group_codecs: dict[str, set[str]] = {}
    for v in variants:
        if v.audio_group:
            group_codecs.setdefault(v.audio_group, set()).update(_audio_codecs(v))

    def group_rank(group: str) -> int:
        ranks = [device.audio_codec_rank(c) for c in group_codecs.get(group, set())]
        return max((r for r in ranks if r is not None), default=0)

    candidates = [r for r in all_audio if (r.channels or 2) <= device.max_audio_channels]
    if not candidates:
        raise NoPlayableTracks(
            f"no audio track with at most {device.max_audio_channels} channels for {device.name} "
            f"(have {sorted({r.channels or 2 for r in all_audio})})")
    language = None
    for wanted in prefs.audio_languages:
        if any(language_matches(wanted, r.language) for r in candidates):
            language = wanted
            reasons.append(f"audio: language {wanted} (preference)")
            break
    if language is None:
        default = next((r for r in candidates if r.default), candidates[0])
        language = default.language
        why = "DEFAULT=YES" if default.default else "first listed"
        if prefs.audio_languages:
            reasons.append(f"audio: none of {','.join(prefs.audio_languages)} offered; language {language} ({why})")
        else:
            reasons.append(f"audio: language {language} ({why})")
    same = [r for r in candidates if (language_matches(language, r.language) if language else not r.language)]
    best = min(same, key=lambda r: (r.describes_video != prefs.audio_description, -(r.channels or 2),
                                    group_rank(r.group_id), not r.default))
    reasons.append(f"audio: {best.name or best.group_id} ({best.channels or 2} ch, "
                   f"{'/'.join(sorted(group_codecs.get(best.group_id, set()))) or 'codec unknown'})")
    return best


def _rung_key(v: Variant) -> str:
    if v.stable_id:
        return v.stable_id
    return f"{v.bandwidth_bps}/{v.width}x{v.height}/{','.join(v.codecs)}/{v.video_range}"


def _build_ladder(variants: list[Variant], device: DeviceProfile, reasons: list[str]) -> list[Rung]:
    cheapest = min(v.nominal_bps for v in variants)
    bottoms: dict[str, int] = {}
    for v in variants:
        bottoms[v.video_range] = min(bottoms.get(v.video_range, v.nominal_bps), v.nominal_bps)
    ranges = [r for r in _RANGE_ORDER_HDR_FIRST if r in bottoms] + sorted(set(bottoms) - set(_RANGE_ORDER_HDR_FIRST))
    chosen_range = next((r for r in ranges if bottoms[r] <= 2 * cheapest), ranges[0])
    skipped = [r for r in ranges[:ranges.index(chosen_range)]]
    variants = [v for v in variants if v.video_range == chosen_range]
    reasons.append(f"video: range {chosen_range}" + (
        f" ({'/'.join(skipped)} skipped: its lowest rung costs over twice the cheapest)" if skipped else ""))

    grouped: dict[str, list[Variant]] = {}
    for v in variants:
        grouped.setdefault(_rung_key(v), []).append(v)
    rungs = []
    for key, group in grouped.items():
        per_pathway: dict[str, Variant] = {}
        for v in group:
            per_pathway.setdefault(v.pathway_id, v)
        first = group[0]
        rungs.append(Rung(key=key, bandwidth_bps=first.bandwidth_bps, nominal_bps=first.nominal_bps,
                          width=first.width, height=first.height, frame_rate=first.frame_rate,
                          video_codec=_video_codec(first), video_range=first.video_range,
                          variants=tuple(per_pathway.values())))

    def rank(r: Rung) -> int:
        return device.video_codec_rank(r.video_codec) if r.video_codec else 0  # type: ignore[return-value]

    def short_side(r: Rung) -> int:
        return min(r.width or 0, r.height or 0) if r.width and r.height else (r.height or 0)

    kept = []
    for r in rungs:
        dominated = any(rank(s) < rank(r) and s.nominal_bps <= r.nominal_bps and short_side(s) >= short_side(r)
                        and (s.frame_rate or 0) >= (r.frame_rate or 0) - 1 for s in rungs if s is not r)
        if dominated:
            reasons.append(f"video: drop {r.label} (a better codec gives as much for fewer bits)")
        else:
            kept.append(r)
    screen = min(device.screen_width, device.screen_height)
    covering = [short_side(r) for r in kept if short_side(r) >= screen]
    if covering:
        cap = min(covering)
        capped = [r for r in kept if short_side(r) <= cap]
        if len(capped) < len(kept):
            reasons.append(f"video: capped to {cap}p for a {device.screen_width}x{device.screen_height} screen")
        kept = capped
    kept.sort(key=lambda r: (r.nominal_bps, short_side(r)))
    return kept


def _choose_subtitles(variants: list[Variant], renditions: tuple[Rendition, ...], audio_language: str | None,
                      prefs: TrackPreferences, reasons: list[str]) -> Rendition | None:
    groups = {v.subtitles_group for v in variants if v.subtitles_group}
    subs = [r for r in renditions if r.type == "SUBTITLES" and r.group_id in groups]
    wanted = prefs.subtitle_language
    if wanted and wanted.lower() != "off":
        full = [r for r in subs if not r.forced and language_matches(wanted, r.language)]
        if full:
            best = min(full, key=lambda r: (r.sdh != prefs.prefer_sdh, not r.default))
            reasons.append(f"subtitles: {best.name or best.language} ({'SDH' if best.sdh else 'full'}, asked {wanted})")
            return best
        reasons.append(f"subtitles: no {wanted} track")
    forced = [r for r in subs if r.forced and audio_language and language_matches(audio_language, r.language)]
    if forced:
        best = min(forced, key=lambda r: not r.default)
        reasons.append(f"subtitles: forced {best.language} (matches the audio language)")
        return best
    reasons.append("subtitles: off")
    return None


def _rendition_key(r: Rendition) -> tuple[object, ...]:
    if r.stable_id:
        return (r.type, r.stable_id)
    return (r.type, r.language, r.name, r.channels, r.forced, r.characteristics)


def _match_rendition(wanted: Rendition | None, group: str | None,
                     renditions: tuple[Rendition, ...]) -> Rendition | None:
    if wanted is None or group is None:
        return None
    key = _rendition_key(wanted)
    return next((r for r in renditions if r.group_id == group and _rendition_key(r) == key), None)


def select_tracks(master: MultivariantPlaylist, device: DeviceProfile,
                  prefs: TrackPreferences = TrackPreferences(), primary_pathway: str | None = None) -> TrackSelection:
    """Choose the ladder, audio and subtitles; `NoPlayableTracks` says which filter left nothing.

    The choice is made on one pathway's variants (``primary_pathway``, else the playlist's
    steering PATHWAY-ID, else the first listed) and then carried over to every other pathway by
    STABLE-VARIANT-ID / STABLE-RENDITION-ID (or by attributes when the ids are missing). A
    pathway that lacks any chosen rung or rendition is left out of ``pathways``.
    """
    all_pathways = master.pathways
    primary = next((p for p in (primary_pathway, master.steering_pathway) if p in all_pathways), all_pathways[0])
    reasons: list[str] = [f"device: {device.name}"]
    variants = []
    rejected: dict[str, int] = {}
    for v in master.variants:
        if v.pathway_id != primary:
            continue
        why = _video_ok(v, device)
        if why is None:
            variants.append(v)
        else:
            rejected[why] = rejected.get(why, 0) + 1
    if not variants:
        details = ", ".join(f"{n}x {why}" for why, n in sorted(rejected.items()))
        raise NoPlayableTracks(f"no variant playable on {device.name} (rejected: {details})")
    if rejected:
        reasons.append("video: skipped " + ", ".join(f"{n}x {why}" for why, n in sorted(rejected.items())))
    audio = _choose_audio(variants, master.renditions, device, prefs, reasons)
    if audio is not None:
        variants = [v for v in variants if v.audio_group == audio.group_id]
    ladder = _build_ladder(variants, device, reasons)
    if not ladder:
        raise NoPlayableTracks(f"no video rung left for {device.name}")
    final_variants = [v for r in ladder for v in r.variants]
    subtitles = _choose_subtitles(final_variants, master.renditions, audio.language if audio else None,
                                  prefs, reasons)
    reasons.append("ladder: " + ", ".join(r.label for r in ladder))
    selection = TrackSelection(ladder=tuple(ladder), audio=audio, subtitles=subtitles,
                               pathways=(primary,), audio_by_pathway={primary: audio},
                               subtitles_by_pathway={primary: subtitles}, reasons=tuple(reasons))
    others = [p for p in all_pathways if p != primary]
    return _extend_to_pathways(selection, master, others) if others else selection


def _extend_to_pathways(selection: TrackSelection, master: MultivariantPlaylist,
                        pathways: list[str]) -> TrackSelection:
    by_key: dict[tuple[str, str], Variant] = {}
    for v in master.variants:
        by_key.setdefault((v.pathway_id, _rung_key(v)), v)
    usable = list(selection.pathways)
    extra: dict[str, list[Variant]] = {r.key: list(r.variants) for r in selection.ladder}
    audio_by = dict(selection.audio_by_pathway)
    subs_by = dict(selection.subtitles_by_pathway)
    reasons = list(selection.reasons)
    for p in pathways:
        found = [by_key.get((p, r.key)) for r in selection.ladder]
        if any(v is None for v in found):
            reasons.append(f"pathway {p}: left out (lacks a rung)")
            continue
        audio = _match_rendition(selection.audio, found[0].audio_group, master.renditions)  # type: ignore[union-attr]
        subs = _match_rendition(selection.subtitles, found[0].subtitles_group, master.renditions)  # type: ignore[union-attr]
        if (selection.audio is not None and audio is None) or (selection.subtitles is not None and subs is None):
            reasons.append(f"pathway {p}: left out (lacks the chosen audio or subtitles)")
            continue
        usable.append(p)
        audio_by[p] = audio
        subs_by[p] = subs
        for r, v in zip(selection.ladder, found):
            extra[r.key].append(v)  # type: ignore[arg-type]
    ladder = tuple(dataclasses.replace(r, variants=tuple(extra[r.key])) for r in selection.ladder)
    return dataclasses.replace(selection, ladder=ladder, pathways=tuple(usable), audio_by_pathway=audio_by,
                               subtitles_by_pathway=subs_by, reasons=tuple(reasons))


@dataclass(frozen=True)
class PathwayClone:
    """A ``PATHWAY-CLONES`` entry of a steering manifest: ``id`` is ``base_id`` with URIs rewritten."""

    base_id: str
    id: str
    host: str | None = None
    params: tuple[tuple[str, str], ...] = ()

    def rewrite(self, url: str) -> str:
        parts = urlsplit(url)
        if self.host:
            parts = parts._replace(netloc=self.host)
        if self.params:
            query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
                     if k not in dict(self.params)]
            parts = parts._replace(query=urlencode(query + list(self.params)))
        return urlunsplit(parts)


def add_clones(selection: TrackSelection, clones: list[PathwayClone], base_url: str) -> TrackSelection:
    """The selection with cloned pathways added (URIs resolved against ``base_url`` and rewritten).
    Clones of unknown pathways and ids already present are ignored."""
    new = [c for c in clones if c.base_id in selection.pathways and c.id not in selection.pathways]
    if not new:
        return selection

    def cloned(r: Rendition | None, c: PathwayClone) -> Rendition | None:
        if r is None or r.uri is None:
            return r
        return dataclasses.replace(r, uri=c.rewrite(urljoin(base_url, r.uri)), group_id=f"{r.group_id}~{c.id}")

    ladder = []
    for rung in selection.ladder:
        variants = list(rung.variants)
        for c in new:
            base = rung.variant_for(c.base_id)
            if base is not None:
                variants.append(dataclasses.replace(base, uri=c.rewrite(urljoin(base_url, base.uri)), pathway_id=c.id))
        ladder.append(dataclasses.replace(rung, variants=tuple(variants)))
    audio_by = dict(selection.audio_by_pathway)
    subs_by = dict(selection.subtitles_by_pathway)
    for c in new:
        audio_by[c.id] = cloned(selection.audio_by_pathway.get(c.base_id), c)
        subs_by[c.id] = cloned(selection.subtitles_by_pathway.get(c.base_id), c)
    return dataclasses.replace(selection, ladder=tuple(ladder),
                               pathways=selection.pathways + tuple(c.id for c in new),
                               audio_by_pathway=audio_by, subtitles_by_pathway=subs_by)
