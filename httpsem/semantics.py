"""HTTP semantics of serving a stored object (RFC 9110), as pure functions: no I/O, no clock.

The origin and the edge both answer ``GET``/``HEAD`` for objects with ranges, validators and
caching headers; both call :func:`plan_response`, which turns the request's method and headers
plus the object's metadata into a :class:`ResponsePlan` (status, headers, byte range to send).
Sending the bytes is the caller's business.

Decisions, in RFC 9110 §13.2.2 order: If-Match → If-Unmodified-Since → If-None-Match →
If-Modified-Since → (If-)Range. A single byte range is served as 206; a malformed Range header,
or one asking for several ranges, is ignored (200 with the whole object, which RFC 9110 §14.2
allows); a well-formed range that cannot be satisfied is 416 with ``Content-Range: bytes */size``.
"""
from __future__ import annotations

import enum
import functools
import posixpath
import re
from dataclasses import dataclass, field
from datetime import timezone
from email.utils import formatdate, parsedate_to_datetime
from types import MappingProxyType
from typing import Mapping

from manifests.title import version_in_path

#: Content types by extension, for the files a title is made of.
CONTENT_TYPES: Mapping[str, str] = MappingProxyType({
    ".m3u8": "application/vnd.apple.mpegurl",
    ".mpd": "application/dash+xml",
    ".mp4": "video/mp4",
    ".m4s": "video/iso.segment",
    ".m4v": "video/mp4",
    ".m4a": "audio/mp4",
    ".vtt": "text/vtt; charset=utf-8",
    ".ts": "video/mp2t",
    ".json": "application/json",
    ".aac": "audio/aac",
})
DEFAULT_CONTENT_TYPE = "application/octet-stream"

#: Media objects never change under a key: cache them for a year; playlists briefly.
PLAYLIST_SUFFIXES = (".m3u8", ".mpd", ".json")


def content_type_for(path: str) -> str:
    """The Content-Type for an object key, by extension."""
    return CONTENT_TYPES.get(posixpath.splitext(path)[1].lower(), DEFAULT_CONTENT_TYPE)


def is_playlist(path: str) -> bool:
    """Playlists and catalogues that may change under their name (short-lived), as opposed to media
    segments and everything under a title's ``v/{version}/``, playlists included (immutable: a
    re-ingest writes a new version). ``path`` is a storage key or a path relative to the title."""
    return path.lower().endswith(PLAYLIST_SUFFIXES) and version_in_path(path) is None


def cache_control_for(path: str, playlist_max_age_s: int = 2, media_max_age_s: int = 31536000) -> str:
    """Long and immutable for media, short for playlists and title.json."""
    if is_playlist(path):
        return f"public, max-age={playlist_max_age_s}"
    return f"public, max-age={media_max_age_s}, immutable"


def http_date(ts_s: float) -> str:
    """IMF-fixdate (``Sun, 06 Nov 1994 08:49:37 GMT``) for a POSIX time."""
    return _http_date(int(ts_s))


@functools.lru_cache(maxsize=4096)
def _http_date(second: int) -> str:  # every response carries its object's Last-Modified: format each once
    return formatdate(second, usegmt=True)


def parse_http_date(value: str | None) -> float | None:
    """POSIX seconds of an HTTP date, or None if absent or unparsable (then the header is ignored)."""
    if not value:
        return None
    try:
        dt = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if dt is None:
        return None
    if dt.tzinfo is None:  # asctime-date ("Sun Nov  6 08:49:37 1994") carries no zone: it is GMT
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.timestamp()


def quote_etag(etag: str) -> str:
    """The ETag header value for an opaque tag: a strong validator in double quotes."""
    return f'"{etag}"'


# ---------------------------------------------------------------- Range
class RangeKind(enum.Enum):
    NONE = "none"                # no Range header, or one to ignore (malformed, multi-range, other unit)
    SATISFIABLE = "satisfiable"  # one range, within the object
    UNSATISFIABLE = "unsatisfiable"


@dataclass(frozen=True)
class RequestRange:
    """A request's ``Range`` header against one object (RFC 9110 §14.2): ``start`` inclusive, ``end``
    exclusive (Python slice convention). Not a playlist byte range: that is ``manifests.ByteRange``."""

    kind: RangeKind
    start: int = 0
    end: int = 0


_RANGE_RE = re.compile(r"[ \t]*bytes[ \t]*=[ \t]*([0-9]*)[ \t]*-[ \t]*([0-9]*)[ \t]*", re.IGNORECASE | re.ASCII)
_MAX_DIGITS = 19  # beyond int64: treat as "very large", never parse megabyte-long numbers


def parse_range(header: str | None, size_bytes: int) -> RequestRange:
    """Resolve a Range header against an object of ``size_bytes`` (RFC 9110 §14.1.2).

    ``bytes=a-b`` (b clamped to the end), ``bytes=a-``, ``bytes=-n`` (last n bytes). A first
    position at or past the end, or ``bytes=-0``, is unsatisfiable. Anything else (garbage,
    ``b < a``, several ranges, another unit) is ignored: NONE.
    """
    if header is None or len(header) > 200:
        return RequestRange(RangeKind.NONE)
    m = _RANGE_RE.fullmatch(header)
    if not m:
        return RequestRange(RangeKind.NONE)
    first, last = m.group(1), m.group(2)
    if first == "" and last == "":
        return RequestRange(RangeKind.NONE)
    if first == "":  # suffix range: the last n bytes
        n = _bounded_int(last)
        if n == 0:
            return RequestRange(RangeKind.UNSATISFIABLE)
        if size_bytes == 0:
            return RequestRange(RangeKind.NONE)  # nothing to cut a suffix from: the whole (empty) object
        return RequestRange(RangeKind.SATISFIABLE, max(0, size_bytes - n), size_bytes)
    start = _bounded_int(first)
    if last != "" and _bounded_int(last) < start:
        return RequestRange(RangeKind.NONE)
    if start >= size_bytes:
        return RequestRange(RangeKind.UNSATISFIABLE)
    end = size_bytes if last == "" else min(_bounded_int(last) + 1, size_bytes)
    return RequestRange(RangeKind.SATISFIABLE, start, end)


def _bounded_int(digits: str) -> int:
    """ASCII digits as an int, any value past int64 as 2**63 (larger than every object)."""
    digits = digits.lstrip("0") or "0"
    return int(digits) if len(digits) <= _MAX_DIGITS else 2**63


# ---------------------------------------------------------------- preconditions
def _etag_list(value: str) -> list[str]:
    """Entity tags of an If-Match/If-None-Match header; ``*`` stays ``*``; W/ marks kept."""
    return [t.strip() for t in value.split(",") if t.strip()]


def _weak_match(tags: list[str], etag_header: str) -> bool:
    bare = etag_header.removeprefix("W/")
    return any(t == "*" or t.removeprefix("W/") == bare for t in tags)


def _strong_match(tags: list[str], etag_header: str) -> bool:
    return any(t == "*" or (not t.startswith("W/") and t == etag_header) for t in tags)


@dataclass(frozen=True, kw_only=True)
class ResponsePlan:
    """What to answer: status, headers, and the byte range ``[start, end)`` of the body (if any)."""

    status: int
    headers: Mapping[str, str] = field(default_factory=dict)  # the edge keeps a CIMultiDict (serve.plain_plan)
    start: int = 0
    end: int = 0
    send_body: bool = False

    @property
    def length(self) -> int:
        return self.end - self.start


def plan_response(method: str, request_headers: Mapping[str, str], *, path: str, size_bytes: int,
                  etag: str, last_modified_s: float, playlist_max_age_s: int = 2,
                  media_max_age_s: int = 31536000) -> ResponsePlan:
    """Decide the answer to ``GET``/``HEAD`` of an object; ``request_headers`` is any case-insensitive mapping."""
    get = request_headers.get
    etag_h = quote_etag(etag)
    base = {
        "ETag": etag_h,
        "Last-Modified": http_date(last_modified_s),
        "Cache-Control": cache_control_for(path, playlist_max_age_s, media_max_age_s),
        "Accept-Ranges": "bytes",
    }
    lm_s = int(last_modified_s)

    if_match = get("If-Match")
    if if_match is not None:
        if not _strong_match(_etag_list(if_match), etag_h):
            return ResponsePlan(status=412, headers=base)
    else:
        ius = parse_http_date(get("If-Unmodified-Since"))
        if ius is not None and lm_s > ius:
            return ResponsePlan(status=412, headers=base)

    inm = get("If-None-Match")
    if inm is not None:
        if _weak_match(_etag_list(inm), etag_h):
            return ResponsePlan(status=304, headers=base)
    else:
        ims = parse_http_date(get("If-Modified-Since"))
        if ims is not None and lm_s <= ims:
            return ResponsePlan(status=304, headers=base)

    headers = dict(base, **{"Content-Type": content_type_for(path)})
    rng = parse_range(get("Range"), size_bytes)
    if rng.kind is not RangeKind.NONE:
        if_range = get("If-Range")
        if if_range is not None and not _if_range_holds(if_range.strip(), etag_h, lm_s):
            rng = RequestRange(RangeKind.NONE)
    send = method.upper() != "HEAD"
    if rng.kind is RangeKind.UNSATISFIABLE:
        headers["Content-Range"] = f"bytes */{size_bytes}"
        headers["Content-Length"] = "0"
        return ResponsePlan(status=416, headers=headers)
    if rng.kind is RangeKind.SATISFIABLE:
        headers["Content-Range"] = f"bytes {rng.start}-{rng.end - 1}/{size_bytes}"
        headers["Content-Length"] = str(rng.end - rng.start)
        return ResponsePlan(status=206, headers=headers, start=rng.start, end=rng.end, send_body=send)
    headers["Content-Length"] = str(size_bytes)
    return ResponsePlan(status=200, headers=headers, start=0, end=size_bytes, send_body=send)


def _if_range_holds(value: str, etag_h: str, lm_s: int) -> bool:
    """If-Range: a strong ETag that matches exactly, or a date equal to Last-Modified."""
    if value.startswith('"') or value.startswith("W/"):
        return not value.startswith("W/") and value == etag_h
    date = parse_http_date(value)
    return date is not None and int(date) == lm_s


# ---------------------------------------------------------------- CORS
#: Media and playlists are public (the edge's token guards them), so any page may read them:
#: hls.js on the steering service's watch page fetches from edges on other origins. Players may send
#: CMCD as request headers (CTA-5004) and read the edge's CMSD answer headers (CTA-5006).
CORS_HEADERS: Mapping[str, str] = MappingProxyType({
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Expose-Headers": "Content-Length, Content-Range, ETag, Last-Modified, Accept-Ranges, "
                                     "CMSD-Static, CMSD-Dynamic",
})
#: The answer to a CORS preflight (``OPTIONS``) for a media path.
PREFLIGHT_HEADERS: Mapping[str, str] = MappingProxyType({
    **CORS_HEADERS,
    "Access-Control-Allow-Methods": "GET, HEAD, OPTIONS",
    "Access-Control-Allow-Headers": "Range, If-None-Match, If-Modified-Since, If-Range, "
                                    "CMCD-Object, CMCD-Request, CMCD-Session, CMCD-Status",
    "Access-Control-Max-Age": "86400",
})
