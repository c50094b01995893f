"""Freshness of a cached object, and the Cache-Control directives it is judged by. Pure: the clock is a parameter.

A cached object of age ``a`` (seconds since it was fetched or last revalidated) with freshness
lifetime ``max_age`` is, in this order (RFC 9111 §4.2, RFC 5861)::

    a < max_age                                    FRESH        served
    a < max_age + stale_while_revalidate           REVALIDATING served stale at once; one revalidation
                                                                runs in the background (coalesced)
    a < max_age + max(swr, stale_if_error)         STALE        revalidated; the request waits at most
                                                                the stale deadline, then (or if every
                                                                upstream fails) the stale copy is served
    otherwise                                      EXPIRED      revalidated; never served stale

``stale_while_revalidate`` and ``stale_if_error`` come from the upstream's ``Cache-Control``
(``stale-while-revalidate=N``, ``stale-if-error=N``) when it gives them, else from the edge's
config; ``must-revalidate``, ``proxy-revalidate`` and ``no-cache`` forbid serving stale at all.
"""
from __future__ import annotations

import enum
import re
from dataclasses import dataclass


class Freshness(enum.Enum):
    FRESH = "fresh"
    REVALIDATING = "revalidating"  # stale-while-revalidate: serve now, revalidate behind
    STALE = "stale"                # revalidate first (bounded wait); serve stale if that fails or is slow
    EXPIRED = "expired"            # past every stale window: never served


@dataclass(frozen=True, kw_only=True)
class StaleWindows:
    """How long past its freshness an object may be served stale, seconds (None: the edge's default)."""

    while_revalidate_s: float | None = None
    if_error_s: float | None = None


def freshness(fetched_at_s: float, max_age_s: float, now_s: float, stale_if_error_s: float,
              stale_while_revalidate_s: float = 0.0) -> Freshness:
    age_s = now_s - fetched_at_s
    if age_s < max_age_s:
        return Freshness.FRESH
    if age_s < max_age_s + stale_while_revalidate_s:
        return Freshness.REVALIDATING
    if age_s < max_age_s + max(stale_if_error_s, stale_while_revalidate_s):
        return Freshness.STALE
    return Freshness.EXPIRED


_MAX_AGE_RE = re.compile(r"(?:^|,)\s*(s-maxage|max-age)\s*=\s*\"?(\d+)\"?\s*(?=,|$)", re.IGNORECASE)
_STALE_RE = re.compile(r"(?:^|,)\s*(stale-while-revalidate|stale-if-error)\s*=\s*\"?(\d+)\"?\s*(?=,|$)",
                       re.IGNORECASE)
_NO_STALE_RE = re.compile(r"(?:^|,)\s*(must-revalidate|proxy-revalidate|no-cache|no-store)\s*(?=,|=|$)",
                          re.IGNORECASE)


def parse_max_age(cache_control: str | None, default_s: float) -> float:
    """Seconds of freshness from a Cache-Control value (``s-maxage`` wins over ``max-age``;
    ``no-cache``/``no-store`` -> 0); ``default_s`` if it says nothing."""
    if not cache_control:
        return default_s
    lowered = cache_control.lower()
    if "no-cache" in lowered or "no-store" in lowered:
        return 0.0
    found = {m.group(1).lower(): int(m.group(2)) for m in _MAX_AGE_RE.finditer(cache_control)}
    if "s-maxage" in found:
        return float(found["s-maxage"])
    if "max-age" in found:
        return float(found["max-age"])
    return default_s


def parse_stale_windows(cache_control: str | None) -> StaleWindows:
    """``stale-while-revalidate`` / ``stale-if-error`` seconds from a Cache-Control value; both 0 when it
    says ``must-revalidate``, ``proxy-revalidate``, ``no-cache`` or ``no-store``; None where it says nothing."""
    if not cache_control:
        return StaleWindows()
    if _NO_STALE_RE.search(cache_control):
        return StaleWindows(while_revalidate_s=0.0, if_error_s=0.0)
    found = {m.group(1).lower(): float(m.group(2)) for m in _STALE_RE.finditer(cache_control)}
    return StaleWindows(while_revalidate_s=found.get("stale-while-revalidate"),
                        if_error_s=found.get("stale-if-error"))
