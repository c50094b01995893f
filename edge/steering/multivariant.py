"""The steered multivariant playlist: the stored ``master.m3u8`` copied once per pathway.

Pure text in, text out. For each pathway (edge) every ``EXT-X-STREAM-INF`` and
``EXT-X-I-FRAME-STREAM-INF`` is repeated with ``PATHWAY-ID`` (the edge name) and a
``STABLE-VARIANT-ID`` that is the same on every pathway, and every ``EXT-X-MEDIA`` group is
repeated under a per-pathway ``GROUP-ID`` (``{group}@{pathway}``, with the same
``STABLE-RENDITION-ID`` everywhere), so that audio and subtitles follow the pathway too. URIs
become absolute, on the edge: ``{edge}/t/{token}/{title}/{uri as stored}``. The playlist opens
with ``EXT-X-CONTENT-STEERING:SERVER-URI=...,PATHWAY-ID=...`` (rfc8216bis §4.4.6.6).

Attribute lists are read with a small parser that keeps the other attributes as written; the
result is checked by tests with the ``m3u8`` package and with ffprobe.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence
from urllib.parse import urljoin

_ATTR = re.compile(r'\s*([A-Z0-9-]+)=("[^"\r\n]*"|[^,]*)\s*(?:,|$)')
_STABLE_BAD = re.compile(r"[^A-Za-z0-9+/=._-]")

#: Tags that describe the whole playlist: kept once, before the steering tag.
_HEADER_TAGS = ("#EXTM3U", "#EXT-X-VERSION", "#EXT-X-INDEPENDENT-SEGMENTS", "#EXT-X-START",
                "#EXT-X-DEFINE", "#EXT-X-SESSION-DATA", "#EXT-X-SESSION-KEY")


class PlaylistError(ValueError):
    """The stored multivariant playlist cannot be steered (the message says why)."""


@dataclass(frozen=True, kw_only=True)
class PathwayTarget:
    """Where one pathway's copy points: the edge's base URL."""

    id: str
    url: str


def parse_attributes(text: str) -> list[tuple[str, str]]:
    """``A=1,B="x,y"`` -> ``[("A", "1"), ("B", '"x,y"')]`` (values as written, quotes kept)."""
    pairs: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        m = _ATTR.match(text, pos)
        if m is None or m.end() == pos:
            raise PlaylistError(f"cannot read attribute list {text!r} at {pos}")
        pairs.append((m.group(1), m.group(2)))
        pos = m.end()
    return pairs


def format_attributes(pairs: Sequence[tuple[str, str]]) -> str:
    return ",".join(f"{k}={v}" for k, v in pairs)


def _get(pairs: Sequence[tuple[str, str]], key: str) -> str | None:
    for k, v in pairs:
        if k == key:
            return v[1:-1] if v.startswith('"') else v
    return None


def _set(pairs: list[tuple[str, str]], key: str, quoted_value: str) -> None:
    for i, (k, _) in enumerate(pairs):
        if k == key:
            pairs[i] = (key, quoted_value)
            return
    pairs.append((key, quoted_value))


def _q(text: str) -> str:
    if '"' in text or "\n" in text or "\r" in text:
        raise PlaylistError(f"value {text!r} cannot be quoted")
    return f'"{text}"'


def _stable_id(uri: str) -> str:
    stem = uri.split("?", 1)[0]
    for suffix in ("/index.m3u8", ".m3u8"):
        if stem.endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    return _STABLE_BAD.sub("_", stem).strip("/") or "v"


@dataclass
class _Variant:
    attrs: list[tuple[str, str]]
    uri: str
    iframe: bool


def steer_multivariant(stored: str, pathways: Sequence[PathwayTarget], *, token: str, title: str,
                       server_uri: str, initial_pathway: str | None = None) -> str:
    """The steered copy of ``stored`` (see the module docstring); pathways in the order given."""
    if not pathways:
        raise PlaylistError("no pathway to steer to")
    lines = [ln.strip() for ln in stored.splitlines()]
    if not lines or lines[0] != "#EXTM3U":
        raise PlaylistError("not an HLS playlist (no #EXTM3U first line)")
    header: list[str] = []
    media: list[list[tuple[str, str]]] = []
    variants: list[_Variant] = []
    pending: list[tuple[str, str]] | None = None
    for ln in lines:
        if not ln:
            continue
        if pending is not None and not ln.startswith("#"):
            variants.append(_Variant(attrs=pending, uri=ln, iframe=False))
            pending = None
        elif ln.startswith("#EXT-X-STREAM-INF:"):
            pending = parse_attributes(ln.split(":", 1)[1])
        elif ln.startswith("#EXT-X-I-FRAME-STREAM-INF:"):
            attrs = parse_attributes(ln.split(":", 1)[1])
            uri = _get(attrs, "URI")
            if uri is None:
                raise PlaylistError("EXT-X-I-FRAME-STREAM-INF without URI")
            variants.append(_Variant(attrs=attrs, uri=uri, iframe=True))
        elif ln.startswith("#EXT-X-MEDIA:"):
            media.append(parse_attributes(ln.split(":", 1)[1]))
        elif ln.startswith("#EXTINF") or ln.startswith("#EXT-X-TARGETDURATION"):
            raise PlaylistError("a media playlist, not a multivariant one")
        elif ln.startswith("#EXT-X-CONTENT-STEERING"):
            continue
        elif ln.startswith(_HEADER_TAGS) and ln not in header:
            header.append(ln)
    if pending is not None:
        raise PlaylistError("EXT-X-STREAM-INF without a URI line")
    if not variants:
        raise PlaylistError("no variant streams")

    stable: list[str] = []
    seen: set[str] = set()
    for v in variants:
        sid = _get(v.attrs, "STABLE-VARIANT-ID") or _stable_id(v.uri)
        if sid in seen:
            sid = f"{sid}+{_STABLE_BAD.sub('_', _get(v.attrs, 'AUDIO') or '')}".rstrip("+")
        n = 2
        base = sid
        while sid in seen:
            sid, n = f"{base}+{n}", n + 1
        seen.add(sid)
        stable.append(sid)

    out = list(header)
    steering = [("SERVER-URI", _q(server_uri)), ("PATHWAY-ID", _q(initial_pathway or pathways[0].id))]
    out.append("#EXT-X-CONTENT-STEERING:" + format_attributes(steering))
    for p in pathways:
        base_url = f"{p.url.rstrip('/')}/t/{token}/{title}/"
        for m in media:
            attrs = list(m)
            group = _get(attrs, "GROUP-ID")
            if group is not None:
                _set(attrs, "GROUP-ID", _q(f"{group}@{p.id}"))
            uri = _get(attrs, "URI")
            if uri is not None:
                _set(attrs, "URI", _q(urljoin(base_url, uri)))
                if _get(attrs, "STABLE-RENDITION-ID") is None:
                    _set(attrs, "STABLE-RENDITION-ID", _q(_stable_id(uri)))
            out.append("#EXT-X-MEDIA:" + format_attributes(attrs))
        for v, sid in zip(variants, stable):
            attrs = list(v.attrs)
            for group_attr in ("AUDIO", "SUBTITLES", "VIDEO", "CLOSED-CAPTIONS"):
                group = _get(attrs, group_attr)
                if group is not None and not (group_attr == "CLOSED-CAPTIONS" and group == "NONE"):
                    if any(_get(m, "GROUP-ID") == group for m in media):
                        _set(attrs, group_attr, _q(f"{group}@{p.id}"))
            _set(attrs, "PATHWAY-ID", _q(p.id))
            _set(attrs, "STABLE-VARIANT-ID", _q(sid))
            if v.iframe:
                _set(attrs, "URI", _q(urljoin(base_url, v.uri)))
                out.append("#EXT-X-I-FRAME-STREAM-INF:" + format_attributes(attrs))
            else:
                out.append("#EXT-X-STREAM-INF:" + format_attributes(attrs))
                out.append(urljoin(base_url, v.uri))
    return "\n".join(out) + "\n"
