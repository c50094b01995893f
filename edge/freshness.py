"""Freshness of a cached object: fresh (serve), stale (revalidate; serve if every upstream fails), or
too old to serve even on error. Pure: the clock is a parameter."""
from __future__ import annotations

import enum
import re


class Freshness(enum.Enum):
    FRESH = "fresh"
    STALE = "stale"        # revalidate first; may still be served if every upstream fails
    EXPIRED = "expired"    # past stale-if-error too: never served


def freshness(fetched_at_s: float, max_age_s: float, now_s: float, stale_if_error_s: float) -> Freshness:
    age_s = now_s - fetched_at_s
    if age_s < max_age_s:
        return Freshness.FRESH
    if age_s < max_age_s + stale_if_error_s:
        return Freshness.STALE
    return Freshness.EXPIRED


_MAX_AGE_RE = re.compile(r"(?:^|,)\s*(s-maxage|max-age)\s*=\s*\"?(\d+)\"?\s*(?=,|$)", re.IGNORECASE)


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
