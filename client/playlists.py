"""HLS playlists for the player: defensive parsing (through the ``m3u8`` package) and fetching.

Parsing is pure: `parse_multivariant` and `parse_media` turn text into small frozen records and
raise `PlaylistError` for anything a hostile or broken server could send: a body over the size
limit, a missing ``#EXTM3U``/``#EXT-X-TARGETDURATION``/``#EXTINF``, absurd numbers (zero or
negative durations, a 10^12 bps BANDWIDTH, a 99999x99999 RESOLUTION), too many variants or
segments, a live playlist (no ``#EXT-X-ENDLIST``: the player is VoD only), a media playlist
where a multivariant one was expected and back (the usual way a playlist "loops" to itself),
URIs that are not http(s). Redirect loops and endless bodies are stopped in `fetch.py`.

URIs stay as written in the playlist (usually relative); `resolve` joins them to the URL the
playlist was fetched from. Keeping them relative lets thousands of sessions share one parsed
playlist (`PlaylistCache`, keyed by the text) even when each has its own token in the URL.

The content-steering manifest (JSON, RFC 8216bis section 7.2) is parsed here too, and the
segment sizes a vodstack ``title.json`` gives (`sizes_from_title_json`).
"""
from __future__ import annotations

import bisect
import hashlib
import json
import math
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit

import m3u8

from manifests import ByteRange, loads_title

from .cmcd import CmcdObject
from .errors import PlaylistError
from .fetch import Fetcher


__all__ = [
    "PlaylistLimits", "Variant", "Rendition", "MultivariantPlaylist", "InitSection",
    "Segment", "SegmentKey", "MediaPlaylist", "SteeringManifest", "PlaylistCache", "parse_multivariant",
    "parse_media", "parse_steering_manifest", "resolve", "DEFAULT_PATHWAY", "fetch_text",
    "fetch_multivariant", "fetch_media", "sizes_from_title_json",
]

#: The pathway of variants without a PATHWAY-ID attribute (RFC 8216bis 4.4.6.2).
DEFAULT_PATHWAY = "."


@dataclass(frozen=True)
class PlaylistLimits:
    """What the parser accepts before calling a playlist hostile."""

    max_playlist_bytes: int = 4 * 1024 * 1024
    """Largest playlist body read (a 3 h title at 2 s segments is ~0.5 MB)."""
    max_variants: int = 1000
    max_renditions: int = 500
    max_segments: int = 100_000
    max_segment_duration_s: float = 120.0
    max_total_duration_s: float = 7 * 24 * 3600.0
    max_bandwidth_bps: int = 1_000_000_000
    max_dimension_px: int = 16_384
    max_frame_rate: float = 1000.0
    max_uri_chars: int = 4096
    max_steering_ttl_s: float = 86_400.0


@dataclass(frozen=True, slots=True)
class Variant:
    """One ``#EXT-X-STREAM-INF`` entry."""

    uri: str
    bandwidth_bps: int
    average_bandwidth_bps: int | None
    codecs: tuple[str, ...]
    width: int | None
    height: int | None
    frame_rate: float | None
    video_range: str
    audio_group: str | None
    subtitles_group: str | None
    pathway_id: str = DEFAULT_PATHWAY
    stable_id: str | None = None

    @property
    def nominal_bps(self) -> int:
        """AVERAGE-BANDWIDTH when given, else BANDWIDTH: the rate ABR plans with."""
        return self.average_bandwidth_bps or self.bandwidth_bps


@dataclass(frozen=True, slots=True)
class Rendition:
    """One ``#EXT-X-MEDIA`` entry (audio, subtitles, closed captions, alternative video)."""

    type: str
    group_id: str
    name: str
    language: str | None
    uri: str | None
    default: bool = False
    autoselect: bool = False
    forced: bool = False
    channels: int | None = None
    characteristics: tuple[str, ...] = ()
    stable_id: str | None = None

    @property
    def sdh(self) -> bool:
        """Subtitles for the deaf and hard of hearing (Apple's characteristics)."""
        return "public.accessibility.transcribes-spoken-dialog" in self.characteristics and \
            "public.accessibility.describes-music-and-sound" in self.characteristics

    @property
    def describes_video(self) -> bool:
        """An audio description track."""
        return "public.accessibility.describes-video" in self.characteristics


@dataclass(frozen=True)
class MultivariantPlaylist:
    """A parsed multivariant (master) playlist; URIs relative to the URL it came from."""

    variants: tuple[Variant, ...]
    renditions: tuple[Rendition, ...]
    steering_uri: str | None = None
    steering_pathway: str | None = None

    @property
    def pathways(self) -> tuple[str, ...]:
        """Pathway ids in order of first appearance."""
        return tuple(dict.fromkeys(v.pathway_id for v in self.variants))


@dataclass(frozen=True, slots=True)
class InitSection:
    uri: str
    byterange: ByteRange | None = None


@dataclass(frozen=True, slots=True)
class SegmentKey:
    """The ``#EXT-X-KEY`` a segment is encrypted with (RFC 8216 4.3.2.4): ``AES-128`` (the whole
    segment, AES-128-CBC with PKCS7 padding) or ``SAMPLE-AES``/``SAMPLE-AES-CTR`` (samples inside),
    the key at ``uri`` (relative to the playlist), the IV when the tag gives one (else the segment's
    media sequence number, big-endian in 16 bytes, RFC 8216 5.2)."""

    method: str
    uri: str
    iv: bytes | None = None
    keyformat: str = "identity"

    def iv_for(self, sequence: int) -> bytes:
        return self.iv if self.iv is not None else sequence.to_bytes(16, "big")


@dataclass(frozen=True, slots=True)
class Segment:
    uri: str
    duration_s: float
    start_s: float
    byterange: ByteRange | None = None
    init: InitSection | None = None
    key: SegmentKey | None = None
    sequence: int = 0
    """Its media sequence number (``#EXT-X-MEDIA-SEQUENCE`` + position)."""


@dataclass(frozen=True)
class MediaPlaylist:
    """A parsed VoD media playlist; segment start times are cumulative EXTINF durations."""

    target_duration_s: float
    segments: tuple[Segment, ...]
    starts_s: tuple[float, ...] = field(repr=False, default=())

    @property
    def duration_s(self) -> float:
        last = self.segments[-1]
        return last.start_s + last.duration_s

    def index_at(self, t_s: float) -> int:
        """Index of the segment playing at media time ``t_s`` (clamped to the playlist)."""
        i = bisect.bisect_right(self.starts_s, t_s + 1e-6) - 1
        return min(max(i, 0), len(self.segments) - 1)

    def sizes_bytes(self) -> tuple[int, ...] | None:
        """Segment sizes when every segment has a byte range, else None."""
        ranges = [s.byterange for s in self.segments]
        lengths = tuple(r.length for r in ranges if r is not None)
        return lengths if len(lengths) == len(ranges) else None


@dataclass(frozen=True)
class SteeringManifest:
    """An HLS content-steering manifest: TTL, where to reload it, the pathway order."""

    ttl_s: float
    reload_uri: str | None
    pathway_priority: tuple[str, ...]
    clones: tuple[tuple[str, str, str | None, tuple[tuple[str, str], ...]], ...] = ()
    """PATHWAY-CLONES as ``(base_id, id, host or None, ((param, value), ...))``."""


def resolve(base_url: str, uri: str) -> str:
    """``uri`` joined to ``base_url`` (the playlist's final URL, after redirects)."""
    return urljoin(base_url, uri)


def _fail(url: str, why: str) -> PlaylistError:
    return PlaylistError(f"bad playlist {url}: {why}")


def _check_uri(uri: object, url: str, limits: PlaylistLimits, what: str) -> str:
    if not isinstance(uri, str) or not uri.strip():
        raise _fail(url, f"{what} has no URI")
    uri = uri.strip()
    if len(uri) > limits.max_uri_chars:
        raise _fail(url, f"{what} URI is {len(uri)} characters long")
    scheme = urlsplit(uri).scheme.lower()
    if scheme not in ("", "http", "https"):
        raise _fail(url, f"{what} URI has scheme {scheme!r} (only http and https are fetched)")
    return uri


def _check_text(text: str, url: str, limits: PlaylistLimits) -> None:
    if len(text) > limits.max_playlist_bytes:
        raise _fail(url, f"{len(text)} bytes, over the {limits.max_playlist_bytes} byte limit")
    if not text.lstrip("\ufeff").startswith("#EXTM3U"):
        raise _fail(url, "does not start with #EXTM3U")


def _parse(text: str, url: str) -> dict[str, Any]:
    try:
        parsed: dict[str, Any] = m3u8.parse(text)  # m3u8 has no type information
        return parsed
    except Exception as e:  # noqa: BLE001 - m3u8 raises anything (ValueError, IndexError...) on garbage
        raise _fail(url, f"unparseable ({type(e).__name__}: {e})") from None


def _number(value: Any, url: str, what: str, lo: float, hi: float) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise _fail(url, f"{what} is not a number: {value!r}") from None
    if not math.isfinite(x) or x < lo or x > hi:
        raise _fail(url, f"{what} = {value!r} is out of range [{lo:g}, {hi:g}]")
    return x


def _yes(value: Any) -> bool:
    return str(value).upper() == "YES"


def parse_multivariant(text: str, url: str, limits: PlaylistLimits = PlaylistLimits()) -> MultivariantPlaylist:
    """Parse a multivariant playlist; `PlaylistError` if it is not one or is hostile."""
    _check_text(text, url, limits)
    data = _parse(text, url)
    if not data.get("is_variant"):
        raise _fail(url, "expected a multivariant playlist (no #EXT-X-STREAM-INF)")
    if data.get("segments"):
        raise _fail(url, "mixes #EXT-X-STREAM-INF with media segments")
    raw_variants = data.get("playlists") or []
    raw_media = data.get("media") or []
    if len(raw_variants) > limits.max_variants:
        raise _fail(url, f"{len(raw_variants)} variants (limit {limits.max_variants})")
    if len(raw_media) > limits.max_renditions:
        raise _fail(url, f"{len(raw_media)} renditions (limit {limits.max_renditions})")
    variants = []
    for i, raw in enumerate(raw_variants):
        info = raw.get("stream_info") or {}
        what = f"variant {i + 1}"
        uri = _check_uri(raw.get("uri"), url, limits, what)
        if info.get("bandwidth") is None:
            raise _fail(url, f"{what} has no BANDWIDTH")
        bandwidth = int(_number(info["bandwidth"], url, f"{what} BANDWIDTH", 1, limits.max_bandwidth_bps))
        average = info.get("average_bandwidth")
        if average is not None:
            average = int(_number(average, url, f"{what} AVERAGE-BANDWIDTH", 1, limits.max_bandwidth_bps))
        width = height = None
        if info.get("resolution"):
            parts = str(info["resolution"]).lower().split("x")
            if len(parts) != 2:
                raise _fail(url, f"{what} RESOLUTION {info['resolution']!r} is not WxH")
            width = int(_number(parts[0], url, f"{what} width", 1, limits.max_dimension_px))
            height = int(_number(parts[1], url, f"{what} height", 1, limits.max_dimension_px))
        frame_rate = info.get("frame_rate")
        if frame_rate is not None:
            frame_rate = _number(frame_rate, url, f"{what} FRAME-RATE", 0.001, limits.max_frame_rate)
        codecs = tuple(c.strip() for c in str(info.get("codecs") or "").split(",") if c.strip())
        variants.append(Variant(
            uri=uri, bandwidth_bps=bandwidth, average_bandwidth_bps=average, codecs=codecs,
            width=width, height=height, frame_rate=frame_rate,
            video_range=str(info.get("video_range") or "SDR").upper(),
            audio_group=info.get("audio") or None, subtitles_group=info.get("subtitles") or None,
            pathway_id=info.get("pathway_id") or DEFAULT_PATHWAY,
            stable_id=info.get("stable_variant_id") or None,
        ))
    if not variants:
        raise _fail(url, "no variants")
    renditions = []
    for i, raw in enumerate(raw_media):
        what = f"rendition {i + 1}"
        kind = str(raw.get("type") or "").upper()
        if kind not in ("AUDIO", "SUBTITLES", "CLOSED-CAPTIONS", "VIDEO"):
            raise _fail(url, f"{what} has TYPE {raw.get('type')!r}")
        if not raw.get("group_id"):
            raise _fail(url, f"{what} has no GROUP-ID")
        uri = raw.get("uri")
        if uri is not None:
            uri = _check_uri(uri, url, limits, what)
        elif kind == "SUBTITLES":
            raise _fail(url, f"{what} (SUBTITLES) has no URI")
        channels = None
        if raw.get("channels"):
            channels = int(_number(str(raw["channels"]).split("/")[0], url, f"{what} CHANNELS", 1, 64))
        chars = tuple(c.strip() for c in str(raw.get("characteristics") or "").split(",") if c.strip())
        language = raw.get("language")
        renditions.append(Rendition(
            type=kind, group_id=str(raw["group_id"]), name=str(raw.get("name") or ""),
            language=str(language).lower() if language else None, uri=uri,
            default=_yes(raw.get("default")), autoselect=_yes(raw.get("autoselect")),
            forced=_yes(raw.get("forced")), channels=channels, characteristics=chars,
            stable_id=raw.get("stable_rendition_id") or None,
        ))
    steering = data.get("content_steering") or {}
    steering_uri = steering.get("server_uri")
    if steering_uri is not None:
        steering_uri = _check_uri(steering_uri, url, limits, "EXT-X-CONTENT-STEERING")
    return MultivariantPlaylist(variants=tuple(variants), renditions=tuple(renditions),
                                steering_uri=steering_uri, steering_pathway=steering.get("pathway_id"))


def _byterange(raw: Any, previous_end: int | None, url: str, what: str) -> ByteRange:
    text = str(raw)
    length_text, _, offset_text = text.partition("@")
    length = int(_number(length_text, url, f"{what} BYTERANGE length", 1, 2**40))
    if offset_text:
        offset = int(_number(offset_text, url, f"{what} BYTERANGE offset", 0, 2**48))
    elif previous_end is not None:
        offset = previous_end
    else:
        raise _fail(url, f"{what} BYTERANGE {text!r} has no offset and follows no range")
    return ByteRange(length=length, offset=offset)


#: The ``#EXT-X-KEY`` methods a player fetches the key of (``identity`` KEYFORMAT); others name a DRM.
KEY_METHODS = frozenset({"AES-128", "SAMPLE-AES", "SAMPLE-AES-CTR"})


def _key(raw: Any, url: str, limits: PlaylistLimits, what: str) -> SegmentKey | None:
    method = str(raw.get("method") or "").upper()
    if method in ("", "NONE"):
        return None
    keyformat = str(raw.get("keyformat") or "identity")
    if method not in KEY_METHODS:
        raise _fail(url, f"{what} EXT-X-KEY METHOD={method} is not AES-128, SAMPLE-AES or SAMPLE-AES-CTR")
    if keyformat != "identity":
        raise _fail(url, f"{what} EXT-X-KEY KEYFORMAT={keyformat!r} names a DRM this player has no CDM for "
                         "(only identity keys are fetched)")
    uri = _check_uri(raw.get("uri"), url, limits, f"{what} EXT-X-KEY")
    iv = None
    if raw.get("iv"):
        text = str(raw["iv"])
        digits = text[2:] if text[:2].lower() == "0x" else ""
        try:
            iv = bytes.fromhex(digits.rjust(32, "0")) if 0 < len(digits) <= 32 else None
        except ValueError:
            iv = None
        if iv is None:
            raise _fail(url, f"{what} EXT-X-KEY IV {text!r} is not a 128-bit hexadecimal-sequence")
    return SegmentKey(method=method, uri=uri, iv=iv, keyformat=keyformat)


def parse_media(text: str, url: str, limits: PlaylistLimits = PlaylistLimits()) -> MediaPlaylist:
    """Parse a VoD media playlist; `PlaylistError` if it is not one or is hostile."""
    _check_text(text, url, limits)
    if "#EXT-X-STREAM-INF" in text:
        raise _fail(url, "expected a media playlist, got a multivariant playlist (loop?)")
    if "#EXT-X-TARGETDURATION" not in text:
        raise _fail(url, "missing #EXT-X-TARGETDURATION")
    data = _parse(text, url)
    target = _number(data.get("targetduration"), url, "TARGETDURATION", 0.001, limits.max_segment_duration_s)
    if not data.get("is_endlist"):
        raise _fail(url, "no #EXT-X-ENDLIST: live playlists are not supported (VoD only)")
    raw_segments = data.get("segments") or []
    if not raw_segments:
        raise _fail(url, "no segments")
    if len(raw_segments) > limits.max_segments:
        raise _fail(url, f"{len(raw_segments)} segments (limit {limits.max_segments})")
    uri_lines = sum(1 for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#"))
    if uri_lines != len(raw_segments) or text.count("#EXTINF") != len(raw_segments):
        raise _fail(url, f"{uri_lines} segment URIs for {text.count('#EXTINF')} #EXTINF tags")
    inits: dict[tuple[str, ByteRange | None], InitSection] = {}
    segments = []
    starts = []
    t = 0.0
    previous_end: int | None = None
    max_duration = min(limits.max_segment_duration_s, 2 * target + 1)
    first_sequence = int(_number(data.get("media_sequence") or 0, url, "MEDIA-SEQUENCE", 0, 2**63))
    keys: dict[tuple[str, str, str | None], SegmentKey | None] = {}
    for i, raw in enumerate(raw_segments):
        what = f"segment {i + 1}"
        uri = _check_uri(raw.get("uri"), url, limits, what)
        duration = _number(raw.get("duration"), url, f"{what} EXTINF", 0.0, max_duration)
        if duration <= 0:
            raise _fail(url, f"{what} EXTINF duration is {duration:g}")
        byterange = None
        if raw.get("byterange"):
            byterange = _byterange(raw["byterange"], previous_end, url, what)
            previous_end = byterange.end
        init = None
        init_raw = raw.get("init_section")
        if init_raw:
            init_uri = _check_uri(init_raw.get("uri"), url, limits, f"{what} EXT-X-MAP")
            init_range = _byterange(init_raw["byterange"], None, url, f"{what} EXT-X-MAP") \
                if init_raw.get("byterange") else None
            init = inits.setdefault((init_uri, init_range), InitSection(init_uri, init_range))
        key = None
        key_raw = raw.get("key")
        if key_raw:
            ident = (str(key_raw.get("method")), str(key_raw.get("uri")), key_raw.get("iv"))
            key = keys[ident] if ident in keys else keys.setdefault(ident, _key(key_raw, url, limits, what))
        segments.append(Segment(uri=uri, duration_s=duration, start_s=t, byterange=byterange, init=init, key=key,
                                sequence=first_sequence + i))
        starts.append(t)
        t += duration
        if t > limits.max_total_duration_s:
            raise _fail(url, f"longer than {limits.max_total_duration_s:g} s")
    return MediaPlaylist(target_duration_s=target, segments=tuple(segments), starts_s=tuple(starts))


def parse_steering_manifest(text: str, url: str, limits: PlaylistLimits = PlaylistLimits()) -> SteeringManifest:
    """Parse ``{"VERSION":1,"TTL":300,"RELOAD-URI":"...","PATHWAY-PRIORITY":["a","b"]}``."""
    if len(text) > 256 * 1024:
        raise PlaylistError(f"bad steering manifest {url}: {len(text)} bytes")
    try:
        data = json.loads(text)
    except ValueError as e:
        raise PlaylistError(f"bad steering manifest {url}: not JSON ({e})") from None
    if not isinstance(data, dict):
        raise PlaylistError(f"bad steering manifest {url}: not a JSON object")
    if data.get("VERSION") != 1:
        raise PlaylistError(f"bad steering manifest {url}: VERSION is {data.get('VERSION')!r}, not 1")
    try:
        ttl = float(data.get("TTL", 300))
    except (TypeError, ValueError):
        raise PlaylistError(f"bad steering manifest {url}: TTL {data.get('TTL')!r}") from None
    if not math.isfinite(ttl) or ttl <= 0:
        raise PlaylistError(f"bad steering manifest {url}: TTL {ttl!r}")
    ttl = min(ttl, limits.max_steering_ttl_s)
    priority = data.get("PATHWAY-PRIORITY")
    if not isinstance(priority, list) or not priority or \
            not all(isinstance(p, str) and p and len(p) < 256 for p in priority) or len(priority) > 1000:
        raise PlaylistError(f"bad steering manifest {url}: PATHWAY-PRIORITY must be a non-empty list of ids")
    reload_uri = data.get("RELOAD-URI")
    if reload_uri is not None:
        reload_uri = _check_uri(reload_uri, url, limits, "RELOAD-URI")
    clones = []
    raw_clones = data.get("PATHWAY-CLONES") or []
    if not isinstance(raw_clones, list) or len(raw_clones) > 100:
        raise PlaylistError(f"bad steering manifest {url}: PATHWAY-CLONES must be a short list")
    for c in raw_clones:
        rep = c.get("URI-REPLACEMENT") if isinstance(c, dict) else None
        if not isinstance(rep, dict) or not isinstance(c.get("BASE-ID"), str) or not isinstance(c.get("ID"), str):
            raise PlaylistError(f"bad steering manifest {url}: a pathway clone needs BASE-ID, ID, URI-REPLACEMENT")
        host = rep.get("HOST")
        params = rep.get("PARAMS") or {}
        if (host is not None and (not isinstance(host, str) or "/" in host)) or not isinstance(params, dict):
            raise PlaylistError(f"bad steering manifest {url}: bad URI-REPLACEMENT {rep!r}")
        clones.append((c["BASE-ID"], c["ID"], host, tuple((str(k), str(v)) for k, v in params.items())))
    return SteeringManifest(ttl_s=ttl, reload_uri=reload_uri, pathway_priority=tuple(dict.fromkeys(priority)),
                            clones=tuple(clones))


class PlaylistCache:
    """A small LRU of parsed playlists keyed by a digest of their text, shared between sessions.

    Parsed playlists hold relative URIs only, so sessions with different tokens share entries.
    """

    def __init__(self, max_entries: int = 256) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[tuple[str, bytes], Any] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get_or_parse(self, kind: str, text: str, parse: Any) -> Any:
        key = (kind, hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest())
        hit = self._entries.get(key)
        if hit is not None:
            self._entries.move_to_end(key)
            self.hits += 1
            return hit
        self.misses += 1
        value = parse()
        self._entries[key] = value
        if len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
        return value


async def fetch_text(fetcher: Fetcher, url: str, limits: PlaylistLimits = PlaylistLimits(),
                     pathway: str | None = None, send_cmcd: bool = True) -> tuple[str, str]:
    """GET a playlist-sized text body: ``(text, final URL after redirects)``; CMCD ``ot=m`` unless
    ``send_cmcd`` is False (a steering manifest)."""
    result = await fetcher.get(url, max_bytes=limits.max_playlist_bytes, keep_body=True, pathway=pathway,
                               cmcd=_MANIFEST, send_cmcd=send_cmcd)
    body = result.body or b""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as e:
        raise _fail(url, f"not UTF-8 text (byte {e.start})") from None
    if "\x00" in text:
        raise _fail(url, "contains NUL bytes (binary, not a playlist)")
    return text, result.url


_MANIFEST = CmcdObject(ot="m")


async def fetch_multivariant(fetcher: Fetcher, url: str, limits: PlaylistLimits = PlaylistLimits(),
                             cache: PlaylistCache | None = None) -> tuple[MultivariantPlaylist, str]:
    """Fetch and parse a multivariant playlist: ``(playlist, final URL)``."""
    text, final = await fetch_text(fetcher, url, limits)
    if cache is None:
        return parse_multivariant(text, final, limits), final
    return cache.get_or_parse("multivariant", text, lambda: parse_multivariant(text, final, limits)), final


async def fetch_media(fetcher: Fetcher, url: str, limits: PlaylistLimits = PlaylistLimits(),
                      cache: PlaylistCache | None = None, pathway: str | None = None) -> tuple[MediaPlaylist, str]:
    """Fetch and parse a media playlist: ``(playlist, final URL)``."""
    text, final = await fetch_text(fetcher, url, limits, pathway)
    if cache is None:
        return parse_media(text, final, limits), final
    return cache.get_or_parse("media", text, lambda: parse_media(text, final, limits)), final


def sizes_from_title_json(body: bytes, video_urls: list[str], audio_urls: list[str | None],
                           n: int, *, by: str = "playlist") -> tuple[tuple[int, ...], ...]:
    """``sizes[segment][rung]``: the rung's video segment plus its audio rendition's segment, from
    ``title.json`` (read as a ``manifests.Title``), matching each URL to a track's ``playlist``
    path (HLS) or, ``by="segment"``, to the path of its first segment (DASH: a Representation has
    no playlist of its own); ValueError when it is not a title or does not cover the ladder."""
    doc = loads_title(body)  # TitleFormatError (a ValueError) when it is not a vodstack title
    by_path = {(track.playlist if by == "playlist" else track.segments[0].path if track.segments else ""):
               [seg.size_bytes for seg in track.segments] for track in doc.media_tracks()}

    def column(url: str) -> list[int]:
        path = urlsplit(url).path
        match = next((sizes for p, sizes in by_path.items() if path.endswith("/" + p)), None)
        if match is None or len(match) < n:
            raise ValueError(f"title.json does not describe {path}")
        return match[:n]

    columns = []
    for video_url, audio_url in zip(video_urls, audio_urls):
        video = column(video_url)
        audio = column(audio_url) if audio_url else [0] * n
        columns.append([v + a for v, a in zip(video, audio)])
    return tuple(tuple(col[k] for col in columns) for k in range(n))
