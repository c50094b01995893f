"""From the raw request target to a storage key, pure: the one place that decodes a URL path.

Rules, in order:

0. An absolute-form target (``http://host/t1/master.m3u8``, RFC 9112 §3.2.2, as a proxy-minded
   client sends it) is the path after its authority; the authority (which RFC 9112 says replaces
   ``Host``) is not looked at: an origin serves one storage whatever the host. A scheme other than
   ``http``/``https`` is ``InvalidKey``. The path then goes through the same rules as any other.
1. The query string and fragment are dropped; the path must start with ``/``.
2. The raw path is split on ``/`` *before* decoding, then each segment is percent-decoded
   exactly once, as UTF-8 (``%2e%2e`` becomes ``..``, which step 4 rejects; ``%252e`` stays
   ``%2e``, a harmless literal name).
3. A decoded segment holding ``/`` (from ``%2F``) is refused: an encoded slash must never
   become a path separator (``InvalidKey``). Invalid escapes or UTF-8 are refused too.
4. The key names ``{title}/{path}``: fewer than two segments (``/``, ``/t1``) is no object
   (``NotFound``).
5. The joined key goes through the storage rule ``validate_key`` (no ``..``, ``.``, empty
   parts, NUL or control characters, backslashes, absolute paths): ``InvalidKey``; a segment
   starting with ``.`` (a temporary file's name) is ``HiddenKey``, answered as a missing object.

Callers answer InvalidKey with 400 and NotFound and HiddenKey with 404 (``status_hint``); nothing here touches storage.
"""
from __future__ import annotations

import re
from urllib.parse import unquote_to_bytes

from origin.storage import InvalidKey, NotFound, validate_key

_HEX = frozenset("0123456789abcdefABCDEF")
#: ``scheme://authority`` of an absolute-form target (RFC 3986: the authority ends at ``/``, ``?`` or ``#``).
_ABSOLUTE_FORM = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/?#]*")


def key_for_request_path(raw_target: str) -> str:
    """The storage key ``title/path`` for a raw request target like ``/t1/video/r1/00001.m4s?x=1``
    (or its absolute form ``http://host/t1/video/r1/00001.m4s?x=1``)."""
    path = origin_form(raw_target).split("?", 1)[0].split("#", 1)[0]
    if not path.startswith("/"):
        raise InvalidKey(f"request path is not absolute: {raw_target!r}")
    segments = [_decode_segment(s) for s in path[1:].split("/")]
    if len(segments) < 2:
        raise NotFound(path)
    return validate_key("/".join(segments))


def origin_form(raw_target: str) -> str:
    """``raw_target`` with the ``scheme://authority`` of an absolute-form target removed (``/`` if
    nothing follows it); any other target as it is."""
    if raw_target.startswith("/"):
        return raw_target
    m = _ABSOLUTE_FORM.match(raw_target)
    if m is None:
        return raw_target  # refused below: not absolute
    scheme = raw_target[:raw_target.index(":")].lower()
    if scheme not in ("http", "https"):
        raise InvalidKey(f"request target is not an http URI: {raw_target!r}")
    rest = raw_target[m.end():]
    return rest if rest.startswith("/") else "/" + rest


def _decode_segment(segment: str) -> str:
    """Percent-decode one path segment once, strictly (bad escapes or UTF-8 are InvalidKey)."""
    if "%" not in segment:
        return segment
    _check_escapes(segment)
    try:
        decoded = unquote_to_bytes(segment).decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidKey(f"path segment is not UTF-8 once decoded: {segment!r}") from None
    if "/" in decoded:
        raise InvalidKey(f"encoded slash in path segment: {segment!r}")
    return decoded


def _check_escapes(segment: str) -> None:
    i = segment.find("%")
    while i != -1:
        if len(segment) < i + 3 or segment[i + 1] not in _HEX or segment[i + 2] not in _HEX:
            raise InvalidKey(f"bad percent-escape in path segment: {segment!r}")
        i = segment.find("%", i + 3)
