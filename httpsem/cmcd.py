"""CMCD, Common Media Client Data (CTA-5004, version 1): what a player tells the server with a request.

Pure. The player encodes, the edge parses; both through this module, so the two never disagree::

    encode(CmcdData(sid="s1", ot="v", br_kbps=3200, bl_ms=21340, ...))
        -> 'bl=21300,br=3200,ot=v,sid="s1"'
    query_pair(data)   -> ('CMCD', 'bl=21300,...')       # the query argument (URL-encode it as any value)
    header_fields(data) -> {"CMCD-Object": "br=3200,ot=v", "CMCD-Request": "bl=21300", "CMCD-Session": ...}
    parse(text)        -> {"bl": 21300, "br": 3200, "ot": "v", "sid": "s1"}   (CmcdError if malformed)
    from_request(query_value, header_values) -> the merged dict, or None when the request carries none

The payload is an RFC 8941 structured-field dictionary: keys in alphabetical order, no whitespace
(as hls.js, dash.js and Shaka send it), integers, strings (``"..."``), tokens (``ot``, ``sf``,
``st``) and booleans (a true one is the bare key; a false one is never sent). Values are rounded
as the spec says: ``bl``, ``dl``, ``mtp``, ``rtp`` to the nearest 100, ``br``, ``d``, ``tb`` to
integers; ``nor`` is URL-encoded; ``v`` and ``pr`` are left out when 1.

Parsing has two ways: a split-and-check of the plain form every player sends (about 5 µs for all
fifteen keys: the edge parses every request; ``http_sfv`` takes 40), and ``http_sfv`` for anything
else (whitespace, parameters, escapes, byte sequences, ...), which also says when the text is not a
structured-field dictionary at all. A property test holds the first to ``http_sfv``'s answers.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from decimal import Decimal
from types import MappingProxyType
from typing import Iterable, Mapping

from http_sfv.types import Token
from urllib.parse import quote

__all__ = ["CmcdData", "CmcdError", "CmcdValue", "HEADER_OF", "HEADER_NAMES", "OBJECT_TYPES", "QUERY_KEY",
           "encode", "header_fields", "object_type", "parse", "query_pair", "from_request"]

#: The query argument's name.
QUERY_KEY = "CMCD"
CmcdValue = int | float | str | bool
#: ``ot``: m manifest/playlist, a audio, v video, av muxed, i init segment, c caption or subtitle,
#: tt ISOBMFF timed text, k key or licence, o other.
OBJECT_TYPES = ("m", "a", "v", "av", "i", "c", "tt", "k", "o")
#: The header each v1 key travels in (a key not listed goes in CMCD-Request, as the spec says of custom keys).
HEADER_OF: Mapping[str, str] = MappingProxyType({
    **dict.fromkeys(("br", "d", "ot", "tb"), "CMCD-Object"),
    **dict.fromkeys(("bl", "dl", "mtp", "nor", "nrr", "su"), "CMCD-Request"),
    **dict.fromkeys(("cid", "pr", "sf", "sid", "st", "v"), "CMCD-Session"),
    **dict.fromkeys(("bs", "rtp"), "CMCD-Status"),
})
HEADER_NAMES = ("CMCD-Object", "CMCD-Request", "CMCD-Session", "CMCD-Status")
_TOKENS = frozenset(("ot", "sf", "st"))
MAX_STRING = 64  # sid and cid: at most 64 characters (CTA-5004)


class CmcdError(ValueError):
    """The CMCD text is not a structured-field dictionary (the edge ignores it and counts it)."""


@dataclass(frozen=True, kw_only=True, slots=True)
class CmcdData:
    """The CMCD keys of one request; None (or False) leaves a key out. Units as the spec has them."""

    sid: str | None = None           #: session id (<= 64 chars)
    cid: str | None = None           #: content id: the title
    ot: str | None = None            #: object type (`OBJECT_TYPES`)
    br_kbps: float | None = None     #: encoded bitrate of the object
    bl_ms: float | None = None       #: buffer length when the request is sent
    mtp_kbps: float | None = None    #: measured throughput
    d_ms: float | None = None        #: object duration
    tb_kbps: float | None = None     #: top bitrate the player may choose
    dl_ms: float | None = None       #: deadline: buffer left at the current rate of play
    rtp_kbps: float | None = None    #: requested maximum throughput
    nor: str | None = None           #: next object request, relative to this one
    nrr: str | None = None           #: next range request, ``start-end``
    su: bool = False                 #: start-up: needed urgently (start, seek, after a stall)
    bs: bool = False                 #: the buffer ran dry since the last request
    sf: str | None = None            #: streaming format: d DASH, h HLS, s Smooth, o other
    st: str | None = None            #: stream type: v VOD, l live
    pr: float | None = None          #: playback rate (1 is left out)
    v: int = 1                       #: CMCD version (1 is left out)

    def as_dict(self) -> dict[str, CmcdValue]:
        """The keys as sent (rounded, ``nor`` URL-encoded, defaults left out), alphabetically."""
        out: dict[str, CmcdValue] = {}
        for key, value in (("bl", _hundred(self.bl_ms)), ("br", _int(self.br_kbps)), ("bs", self.bs or None),
                           ("cid", self.cid), ("d", _int(self.d_ms)), ("dl", _hundred(self.dl_ms)),
                           ("mtp", _hundred(self.mtp_kbps)),
                           ("nor", quote(self.nor, safe="") if self.nor else None), ("nrr", self.nrr or None),
                           ("ot", self.ot), ("pr", None if self.pr in (None, 1) else round(float(self.pr), 3)),
                           ("rtp", _hundred(self.rtp_kbps)), ("sf", self.sf), ("sid", self.sid), ("st", self.st),
                           ("su", self.su or None), ("tb", _int(self.tb_kbps)), ("v", None if self.v == 1 else self.v)):
            if value is not None:
                out[key] = value
        return out


def _int(value: float | None) -> int | None:
    """Rounded half up, as the players' ``Math.round`` does (Python's ``round`` goes to even)."""
    return None if value is None else math.floor(value + 0.5)


def _hundred(value: float | None) -> int | None:
    return None if value is None else math.floor(value / 100.0 + 0.5) * 100


def object_type(path: str) -> str | None:
    """``ot`` of an object path in the vodstack layout (CMCD and CMSD alike): m playlists and MPDs, i init segments, v video (I-frame
    renditions too), a audio, c subtitles, o title.json; None when the layout does not say."""
    name = path.rsplit("/", 1)[-1]
    if name.endswith((".m3u8", ".mpd")):
        return "m"
    if name.endswith(".vtt"):
        return "c"
    if name == "title.json":
        return "o"
    if name.startswith("init"):
        return "i"
    parts = path.split("/")
    for kind, ot in (("video", "v"), ("iframes", "v"), ("audio", "a"), ("subs", "c")):
        if kind in parts:
            return ot
    return None



# ---------------------------------------------------------------------------------- encoding
def encode(data: CmcdData | Mapping[str, CmcdValue]) -> str:
    """The structured-field dictionary of ``data``: sorted keys, no whitespace."""
    items = data.as_dict() if isinstance(data, CmcdData) else data
    return ",".join(_member(k, items[k]) for k in sorted(items))


def _member(key: str, value: CmcdValue) -> str:
    if value is True:
        return key
    if value is False:
        raise ValueError(f"CMCD {key}: a false boolean is never sent")
    if isinstance(value, int):
        if not -999_999_999_999_999 <= value <= 999_999_999_999_999:
            raise ValueError(f"CMCD {key}: integer {value} out of range")
        return f"{key}={value}"
    if isinstance(value, float):
        text = f"{round(value, 3):.3f}".rstrip("0")
        return f"{key}={text}0" if text.endswith(".") else f"{key}={text}"
    if key in _TOKENS:
        if not _TOKEN.fullmatch(value):
            raise ValueError(f"CMCD {key}: {value!r} is not a token")
        return f"{key}={value}"
    if not _PRINTABLE.fullmatch(value):
        raise ValueError(f"CMCD {key}: {value!r} holds characters a structured-field string cannot")
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'{key}="{escaped}"'


_TOKEN = re.compile(r"[A-Za-z*][!#$%&'*+\-.^_`|~:/0-9A-Za-z]*")
_PRINTABLE = re.compile(r"[ -~]*")


def query_pair(data: CmcdData | Mapping[str, CmcdValue]) -> tuple[str, str]:
    """``("CMCD", payload)``: the query argument, to URL-encode as any other (``urlencode`` does)."""
    return QUERY_KEY, encode(data)


def header_fields(data: CmcdData | Mapping[str, CmcdValue]) -> dict[str, str]:
    """The ``CMCD-*`` request headers (only those with a key in them)."""
    items = data.as_dict() if isinstance(data, CmcdData) else data
    shards: dict[str, dict[str, CmcdValue]] = {}
    for key, value in items.items():
        shards.setdefault(HEADER_OF.get(key, "CMCD-Request"), {})[key] = value
    return {name: encode(shards[name]) for name in HEADER_NAMES if name in shards}


# ---------------------------------------------------------------------------------- parsing
_KEY = re.compile(r"[a-z*][a-z0-9_\-.*]*")
_INTEGER = re.compile(r"-?[0-9]{1,15}")
_DECIMAL = re.compile(r"-?[0-9]{1,12}\.[0-9]{1,3}")
_V1_KEYS = frozenset(HEADER_OF)  #: every CMCD v1 key has its header


def parse(text: str) -> dict[str, CmcdValue]:
    """The keys of a CMCD payload (tokens and strings as ``str``, booleans as ``bool``); an empty
    text is no keys. `CmcdError` when it is not a structured-field dictionary."""
    if not text:
        return {}
    out: dict[str, CmcdValue] = {}
    for member in text.split(","):  # a string holding a comma fails its member's check: http_sfv decides
        key, eq, value = member.partition("=")
        if key not in _V1_KEYS and not _KEY.fullmatch(key):
            return _parse_sfv(text)
        if not eq:
            out[key] = True
        elif value.isdigit() and value.isascii() and len(value) <= 15:
            out[key] = int(value)
        elif value[:1] == '"':
            inner = value[1:-1]
            if (len(value) < 2 or value[-1] != '"' or '"' in inner or "\\" in inner or not inner.isascii()
                    or not inner.isprintable()):
                return _parse_sfv(text)
            out[key] = inner
        elif value.isalpha() and value.isascii():
            out[key] = value
        elif _INTEGER.fullmatch(value):
            out[key] = int(value)
        elif _DECIMAL.fullmatch(value):
            out[key] = float(value)
        elif _TOKEN.fullmatch(value):
            out[key] = value
        else:
            return _parse_sfv(text)
    if len(out) != text.count(",") + 1:  # a key twice: the last one wins, as http_sfv has it
        return _parse_sfv(text)
    return out


def _parse_sfv(text: str) -> dict[str, CmcdValue]:
    from http_sfv.dictionary import Dictionary

    d = Dictionary()
    try:
        d.parse(text.encode("latin-1"))
    except Exception as e:  # noqa: BLE001 - whatever http_sfv raises on bad input is "not CMCD"
        raise CmcdError(f"not a structured-field dictionary: {e}") from None
    return _plain_values(d.items())


def _plain_values(items: Iterable[tuple[str, object]]) -> dict[str, CmcdValue]:
    """The CMCD v1 values of parsed members: integers, decimals, booleans, tokens and strings of printable
    ASCII. The rest (inner lists, byte sequences, dates, RFC 9651 display strings, which may hold any
    character, a newline too) are left out."""
    out: dict[str, CmcdValue] = {}
    for key, member in items:
        value = getattr(member, "value", member)
        if isinstance(value, Decimal):
            out[key] = float(value)
        elif isinstance(value, (bool, int)):
            out[key] = value
        elif (type(value) is str or isinstance(value, Token)) and value.isascii() and value.isprintable():
            out[key] = str(value)
    return out


def from_request(query_value: str | None, header_values: Iterable[str]) -> dict[str, CmcdValue] | None:
    """The CMCD of one request: the ``CMCD`` query argument (decoded) and the ``CMCD-*`` header
    values merged (headers last); None when it carries neither. `CmcdError` if any part is malformed."""
    got: dict[str, CmcdValue] | None = None
    if query_value is not None:
        got = parse(query_value)
    for value in header_values:
        parsed = parse(value)
        got = parsed if got is None else {**got, **parsed}
    return got
