"""Track selection, pure: which video ladder, audio rendition and subtitles a device plays.

`select_tracks(master, device, prefs)` -> `TrackSelection`, in four steps, each leaving a reason:

1. **Video filter.** Keep variants whose every codec in CODECS the device decodes (RFC 6381
   prefixes, `devices.codec_matches`), whose resolution fits the decoder (either orientation),
   frame rate is at most ``max_fps``, VIDEO-RANGE is one the device shows, and bandwidth is under
   the device's cap. A variant without CODECS is taken as ``avc1,mp4a.40.2`` (hls.js does the same).
2. **Audio.** One language for the whole session: the first of ``prefs.audio_languages`` that
   an AUDIO rendition (within the device's channel count) offers, else the DEFAULT=YES one's.
   Then each video stream keeps the one variant (of those that differ only by AUDIO group) whose
   group has the best rendition in that language: audio description only when asked for, then
   most channels, then the device's preferred codec (read from the variant's CODECS), then
   DEFAULT=YES. So rungs may carry different audio (Apple's authoring pattern: a 64 kbps AAC
   under the low rungs, 128 kbps AAC or 5.1 E-AC-3 under the high ones); the session fetches
   the audio that goes with the rung it plays.
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
   FORCED=YES track in the audio's language, if any: forced narrative subtitles (signs, foreign
   dialogue) are shown even with subtitles off.

Steering: the choice is made on one pathway and carried to the others by STABLE-VARIANT-ID and
STABLE-RENDITION-ID; each `Rung` holds one `RungCopy` (variant, audio, subtitles) per pathway.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

from .devices import DeviceProfile
from .errors import NoPlayableTracks
from .playlists import MultivariantPlaylist, Rendition, Variant

__all__ = ["TrackPreferences", "Rung", "RungCopy", "TrackSelection", "PathwayClone", "select_tracks", "add_clones",
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
class RungCopy:
    """A rung as one pathway offers it: the variant and the audio/subtitle renditions to fetch."""

    pathway: str
    variant: Variant
    audio: Rendition | None
    subtitles: Rendition | None


@dataclass(frozen=True)
class Rung:
    """One rung of the device's ladder: a video stream paired with its best audio rendition,
    offered on one or more pathways (``copies``, in the playlist's pathway order)."""

    key: str
    bandwidth_bps: int
    nominal_bps: int
    width: int | None
    height: int | None
    frame_rate: float | None
    video_codec: str
    video_range: str
    copies: tuple[RungCopy, ...]

    def copy_for(self, pathway: str) -> RungCopy | None:
        for c in self.copies:
            if c.pathway == pathway:
                return c
        return None

    def variant_for(self, pathway: str) -> Variant | None:
        c = self.copy_for(pathway)
        return c.variant if c else None

    @property
    def variants(self) -> tuple[Variant, ...]:
        return tuple(c.variant for c in self.copies)

    @property
    def audio(self) -> Rendition | None:
        return self.copies[0].audio

    @property
    def label(self) -> str:
        res = f"{self.height}p" if self.height else "audio-only"
        return f"{res} {self.video_codec.split('.')[0]} {self.nominal_bps // 1000}kbps"


@dataclass(frozen=True)
class TrackSelection:
    """The chosen tracks; ``ladder`` is ascending by bitrate and is what ABR indexes.

    ``audio`` is the top rung's audio rendition (rungs may pair with different audio groups, as
    Apple's authoring spec does: low rungs with a cheap AAC, high ones with a richer one, all in
    the chosen language); ``subtitles`` the chosen subtitle rendition (primary pathway).
    """

    ladder: tuple[Rung, ...]
    audio: Rendition | None
    subtitles: Rendition | None
    pathways: tuple[str, ...] = ()
    """Pathways that carry every rung, in playlist order."""
    reasons: tuple[str, ...] = field(default=(), compare=False)

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
                        "audio": rendition(r.audio)} for r in self.ladder],
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


def _audio_language(variants: list[Variant], renditions: tuple[Rendition, ...], device: DeviceProfile,
                    prefs: TrackPreferences, reasons: list[str]) -> str | None:
    """The audio language: the first preferred one offered, else the DEFAULT rendition's."""
    groups = {v.audio_group for v in variants if v.audio_group}
    all_audio = [r for r in renditions if r.type == "AUDIO" and r.group_id in groups]
    candidates = [r for r in all_audio if (r.channels or 2) <= device.max_audio_channels]
    if not candidates:
        raise NoPlayableTracks(
            f"no audio track with at most {device.max_audio_channels} channels for {device.name} "
            f"(have {sorted({r.channels or 2 for r in all_audio})})")
    for wanted in prefs.audio_languages:
        match = next((r for r in candidates if language_matches(wanted, r.language)), None)
        if match is not None:
            reasons.append(f"audio: language {match.language} (preference {wanted})")
            return match.language
    default = next((r for r in candidates if r.default), candidates[0])
    why = "DEFAULT=YES" if default.default else "first listed"
    if prefs.audio_languages:
        reasons.append(f"audio: none of {','.join(prefs.audio_languages)} offered; "
                       f"language {default.language} ({why})")
    else:
        reasons.append(f"audio: language {default.language} ({why})")
    return default.language


def _best_audio(v: Variant, renditions: tuple[Rendition, ...], language: str | None, device: DeviceProfile,
                prefs: TrackPreferences) -> tuple[tuple[object, ...], Rendition] | None:
    """The variant's best audio rendition in ``language`` with its score (lower is better)."""
    codec_rank = max((device.audio_codec_rank(c) or 0 for c in _audio_codecs(v)), default=0)
    best = None
    for r in renditions:
        if r.type != "AUDIO" or r.group_id != v.audio_group or (r.channels or 2) > device.max_audio_channels:
            continue
        if not (language_matches(language, r.language) if language else not r.language):
            continue
        score = (r.describes_video != prefs.audio_description, -(r.channels or 2), codec_rank, not r.default)
        if best is None or score < best[0]:
            best = (score, r)
    return best


def _rung_key(v: Variant) -> str:
    if v.stable_id:
        return v.stable_id
    return f"{v.bandwidth_bps}/{v.width}x{v.height}/{','.join(v.codecs)}/{v.video_range}"


def _short_side(r: Rung) -> int:
    return min(r.width or 0, r.height or 0) if r.width and r.height else (r.height or 0)


def _build_ladder(paired: list[tuple[Variant, Rendition | None]], device: DeviceProfile,
                  reasons: list[str]) -> list[Rung]:
    cheapest = min(v.nominal_bps for v, _ in paired)
    bottoms: dict[str, int] = {}
    for v, _ in paired:
        bottoms[v.video_range] = min(bottoms.get(v.video_range, v.nominal_bps), v.nominal_bps)
    ranges = [r for r in _RANGE_ORDER_HDR_FIRST if r in bottoms] + sorted(set(bottoms) - set(_RANGE_ORDER_HDR_FIRST))
    chosen_range = next((r for r in ranges if bottoms[r] <= 2 * cheapest), ranges[0])
    skipped = ranges[:ranges.index(chosen_range)]
    reasons.append(f"video: range {chosen_range}" + (
        f" ({'/'.join(skipped)} skipped: its lowest rung costs over twice the cheapest)" if skipped else ""))
    rungs = [Rung(key=_rung_key(v), bandwidth_bps=v.bandwidth_bps, nominal_bps=v.nominal_bps, width=v.width,
                  height=v.height, frame_rate=v.frame_rate, video_codec=_video_codec(v), video_range=v.video_range,
                  copies=(RungCopy(pathway=v.pathway_id, variant=v, audio=a, subtitles=None),))
             for v, a in paired if v.video_range == chosen_range]

    def rank(r: Rung) -> int:
        return (device.video_codec_rank(r.video_codec) or 0) if r.video_codec else 0

    kept = []
    for r in rungs:
        dominated = any(rank(s) < rank(r) and s.nominal_bps <= r.nominal_bps and _short_side(s) >= _short_side(r)
                        and (s.frame_rate or 0) >= (r.frame_rate or 0) - 1 for s in rungs if s is not r)
        if dominated:
            reasons.append(f"video: drop {r.label} (a better codec gives as much for fewer bits)")
        else:
            kept.append(r)
    screen = min(device.screen_width, device.screen_height)
    covering = [_short_side(r) for r in kept if _short_side(r) >= screen]
    if covering:
        cap = min(covering)
        capped = [r for r in kept if _short_side(r) <= cap]
        if len(capped) < len(kept):
            reasons.append(f"video: capped to {cap}p for a {device.screen_width}x{device.screen_height} screen")
        kept = capped
    kept.sort(key=lambda r: (r.nominal_bps, _short_side(r)))
    return kept


def _choose_subtitles(subs: list[Rendition], audio_language: str | None, prefs: TrackPreferences,
                      reasons: list[str]) -> Rendition | None:
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

    # audio: one language for the whole ladder; each video stream keeps its best-paired variant
    has_audio = any(r.type == "AUDIO" for r in master.renditions) and any(v.audio_group for v in variants)
    best_by_video: dict[str, tuple[tuple[object, ...], Variant, Rendition | None]] = {}
    if has_audio:
        language = _audio_language(variants, master.renditions, device, prefs, reasons)
        for v in variants:
            found = _best_audio(v, master.renditions, language, device, prefs)
            if found is None:
                continue
            score, rendition = found
            held = best_by_video.get(v.uri)
            if held is None or score < held[0]:
                best_by_video[v.uri] = (score, v, rendition)
        if not best_by_video:
            raise NoPlayableTracks(f"no variant pairs with a playable {language} audio track on {device.name}")
    else:
        reasons.append("audio: muxed in the variants (no audio renditions)")
        for v in variants:
            best_by_video.setdefault(v.uri, ((), v, None))
    paired = [(v, a) for _, v, a in best_by_video.values()]
    ladder = _build_ladder(paired, device, reasons)
    if not ladder:
        raise NoPlayableTracks(f"no video rung left for {device.name}")
    top_audio = ladder[-1].audio
    if top_audio is not None:
        names = dict.fromkeys(f"{r.audio.name or r.audio.group_id} ({r.audio.channels or 2} ch)"
                              for r in ladder if r.audio)
        reasons.append("audio: " + ", ".join(names))

    sub_groups = {r.copies[0].variant.subtitles_group for r in ladder} - {None}
    subs = [r for r in master.renditions if r.type == "SUBTITLES" and r.group_id in sub_groups]
    subtitles = _choose_subtitles(subs, top_audio.language if top_audio else None, prefs, reasons)
    if subtitles is not None:
        ladder = [dataclasses.replace(r, copies=(dataclasses.replace(
            r.copies[0], subtitles=_match_rendition(subtitles, r.copies[0].variant.subtitles_group,
                                                    master.renditions)),)) for r in ladder]
    reasons.append("ladder: " + ", ".join(r.label for r in ladder))
    selection = TrackSelection(ladder=tuple(ladder), audio=top_audio, subtitles=subtitles, pathways=(primary,),
                               reasons=tuple(reasons))
    others = [p for p in all_pathways if p != primary]
    return _extend_to_pathways(selection, master, others) if others else selection


def _extend_to_pathways(selection: TrackSelection, master: MultivariantPlaylist,
                        pathways: list[str]) -> TrackSelection:
    by_key: dict[tuple[str, str], Variant] = {}
    for v in master.variants:
        by_key.setdefault((v.pathway_id, _rung_key(v)), v)
    usable = list(selection.pathways)
    copies: dict[str, list[RungCopy]] = {r.key: list(r.copies) for r in selection.ladder}
    reasons = list(selection.reasons)
    for p in pathways:
        found = []
        for r in selection.ladder:
            variant = by_key.get((p, r.key))
            if variant is None:
                break
            primary = r.copies[0]
            audio = _match_rendition(primary.audio, variant.audio_group, master.renditions)
            subs = _match_rendition(primary.subtitles, variant.subtitles_group, master.renditions)
            if (primary.audio is not None and audio is None) or (primary.subtitles is not None and subs is None):
                break
            found.append(RungCopy(pathway=p, variant=variant, audio=audio, subtitles=subs))
        if len(found) < len(selection.ladder):
            reasons.append(f"pathway {p}: left out (lacks a chosen rung or rendition)")
            continue
        usable.append(p)
        for r, c in zip(selection.ladder, found):
            copies[r.key].append(c)
    ladder = tuple(dataclasses.replace(r, copies=tuple(copies[r.key])) for r in selection.ladder)
    return dataclasses.replace(selection, ladder=ladder, pathways=tuple(usable), reasons=tuple(reasons))


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
        copies = list(rung.copies)
        for c in new:
            base = rung.copy_for(c.base_id)
            if base is not None:
                variant = dataclasses.replace(base.variant, uri=c.rewrite(urljoin(base_url, base.variant.uri)),
                                              pathway_id=c.id)
                copies.append(RungCopy(pathway=c.id, variant=variant, audio=cloned(base.audio, c),
                                       subtitles=cloned(base.subtitles, c)))
        ladder.append(dataclasses.replace(rung, copies=tuple(copies)))
    return dataclasses.replace(selection, ladder=tuple(ladder),
                               pathways=selection.pathways + tuple(c.id for c in new))
