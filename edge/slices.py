"""Slices of large objects and the reading of upstream replies: pure arithmetic over byte ranges.

Ranges are ``[start, end)`` like Python slices; HTTP's inclusive ``bytes=a-b`` appears only in
:func:`range_header` and :func:`parse_content_range`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass


def slices_covering(start: int, end: int, slice_bytes: int) -> range:
    """Indexes of the slices holding bytes ``[start, end)``."""
    if end <= start:
        return range(0)
    return range(start // slice_bytes, (end - 1) // slice_bytes + 1)


def slice_bounds(n: int, size_bytes: int, slice_bytes: int) -> tuple[int, int]:
    """``[base, end)`` of slice ``n`` of an object of ``size_bytes``."""
    base = n * slice_bytes
    return base, min(base + slice_bytes, size_bytes)


def slice_count(size_bytes: int, slice_bytes: int) -> int:
    return (size_bytes + slice_bytes - 1) // slice_bytes


def range_header(start: int, end: int) -> str:
    """The ``Range`` request header for ``[start, end)``."""
    return f"bytes={start}-{end - 1}"


_CONTENT_RANGE_RE = re.compile(r"^\s*bytes\s+(\d+)-(\d+)/(\d+)\s*$", re.IGNORECASE)


def parse_content_range(value: str | None) -> tuple[int, int, int] | None:
    """``bytes a-b/total`` -> (a, b + 1, total); None if absent or not that shape."""
    if not value:
        return None
    m = _CONTENT_RANGE_RE.match(value)
    if not m:
        return None
    a, b, total = (int(g) for g in m.groups())
    if b < a or b >= total:
        return None
    return a, b + 1, total


_UNSATISFIED_RE = re.compile(r"^\s*bytes\s+\*/(\d+)\s*$", re.IGNORECASE)


def parse_unsatisfied_range(value: str | None) -> int | None:
    """A 416's ``Content-Range: bytes */total`` -> total (the object's size); None if absent or not that shape."""
    if not value:
        return None
    m = _UNSATISFIED_RE.match(value)
    return int(m.group(1)) if m else None


@dataclass(frozen=True, kw_only=True)
class UpstreamBody:
    """Where an upstream reply's body sits in the object: bytes ``[start, end)`` of ``size_bytes``
    (None: the size is unknown until the body ends)."""

    start: int
    end: int | None
    size_bytes: int | None


def locate_body(status: int, content_length: str | None, content_range: str | None) -> UpstreamBody | None:
    """Read a 200/206 reply's framing; None if it makes no sense (then the upstream is skipped)."""
    if status == 206:
        cr = parse_content_range(content_range)
        if cr is None:
            return None
        return UpstreamBody(start=cr[0], end=cr[1], size_bytes=cr[2])
    if status == 200:
        if content_length is None:
            return UpstreamBody(start=0, end=None, size_bytes=None)
        try:
            n = int(content_length)
        except ValueError:
            return None
        return UpstreamBody(start=0, end=n, size_bytes=n) if n >= 0 else None
    return None
