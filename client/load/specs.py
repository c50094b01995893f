"""Parsing of the load tester's command-line specs: mixes, chaos schedules and SLOs (pure).

    mix       "iphone:0.5,tv-4k:0.2,laptop-chrome:0.3"     name:weight, weights > 0, normalised
              "3g:0.3,4g:0.4,trace:/traces/dir:0.3"         the weight is after the LAST colon
    chaos     "kill:edge-a@30s,restart:edge-a@60s,evacuate:us-west-2@90s,origin-slow:500ms@40s"
    slo       "startup_p95=2s,rebuffer_ratio=0.01,failed=0"
    popularity "zipf:0.9" | "uniform"

Every parser raises SpecError with a one-line message naming the bad part.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from errorbase import VodstackError


class SpecError(VodstackError, ValueError):
    """A mix, chaos schedule, SLO or popularity spec cannot be read; the message names the bad part."""

CHAOS_ACTIONS = ("kill", "restart", "evacuate", "restore", "origin-slow", "origin-fast")

#: SLO name -> (what it measures, unit). A run misses an SLO when the measured value is above it.
SLO_METRICS: dict[str, str] = {
    "startup_p50": "s", "startup_p95": "s", "startup_p99": "s",
    "rebuffer_ratio": "ratio", "stalls_per_session": "count",
    "failed": "count", "failed_ratio": "ratio", "media_errors": "count",
}


#: What a load session asks the steering service for: HLS, DASH, or ``device``: the device's own
#: first format (``client.devices``: ``android-phone`` and ``tv-4k`` DASH first, ``iphone`` HLS only).
FORMATS = ("hls", "dash", "device")


@dataclass(frozen=True)
class MixEntry:
    name: str
    weight: float  # normalised: the weights of a mix sum to 1


def parse_mix(text: str, *, what: str, known: tuple[str, ...] | None = None,
              allow_prefix: tuple[str, ...] = ()) -> tuple[MixEntry, ...]:
    """``a:0.5,b:0.5`` -> entries with weights normalised to 1; names checked against ``known``
    unless they start with one of ``allow_prefix`` (e.g. ``trace:``)."""
    if not text or not text.strip():
        raise SpecError(f"{what}: empty mix")
    raw: list[tuple[str, float]] = []
    for part in text.split(","):
        part = part.strip()
        name, sep, weight_text = part.rpartition(":")
        if not sep or not name:
            name, weight_text = part, "1"
        try:
            weight = float(weight_text)
        except ValueError:
            raise SpecError(f"{what}: bad weight {weight_text!r} in {part!r} (expected NAME:WEIGHT)") from None
        if not weight > 0 or weight != weight or weight == float("inf"):
            raise SpecError(f"{what}: weight must be a positive number in {part!r}")
        if known is not None and name not in known and not name.startswith(allow_prefix):
            raise SpecError(f"{what}: unknown {name!r} (known: {', '.join(known)})")
        if any(n == name for n, _ in raw):
            raise SpecError(f"{what}: {name!r} listed twice")
        raw.append((name, weight))
    total = sum(w for _, w in raw)
    return tuple(MixEntry(n, w / total) for n, w in raw)


_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|min)?\s*$")


def parse_duration_s(text: str, *, what: str) -> float:
    """``500ms`` -> 0.5, ``30s``/``30`` -> 30.0, ``2m`` -> 120.0."""
    m = _DURATION_RE.match(text)
    if not m:
        raise SpecError(f"{what}: bad duration {text!r} (e.g. 500ms, 30s, 2m)")
    value = float(m.group(1))
    unit = m.group(2) or "s"
    return value / 1000 if unit == "ms" else value * 60 if unit in ("m", "min") else value


@dataclass(frozen=True)
class ChaosEvent:
    at_s: float
    action: str      # one of CHAOS_ACTIONS
    target: str      # edge name, region, or "" for origin-slow/origin-fast
    value_s: float = 0.0  # the delay for origin-slow


def parse_chaos(text: str) -> tuple[ChaosEvent, ...]:
    """``kill:edge-a@30s,origin-slow:500ms@40s`` -> events sorted by time."""
    if not text or not text.strip():
        return ()
    events = []
    for part in text.split(","):
        part = part.strip()
        body, at, when = part.rpartition("@")
        if not at:
            raise SpecError(f"chaos: {part!r} has no time (e.g. kill:edge-a@30s)")
        action, colon, target = body.partition(":")
        if action not in CHAOS_ACTIONS:
            raise SpecError(f"chaos: unknown action {action!r} in {part!r} (known: {', '.join(CHAOS_ACTIONS)})")
        if not colon or not target:
            raise SpecError(f"chaos: {part!r} names no target (e.g. {action}:NAME@30s)")
        at_s = parse_duration_s(when, what=f"chaos {part!r}")
        if action in ("origin-slow", "origin-fast"):
            events.append(ChaosEvent(at_s, action, "", parse_duration_s(target, what=f"chaos {part!r}")))
        else:
            events.append(ChaosEvent(at_s, action, target))
    return tuple(sorted(events, key=lambda e: e.at_s))


@dataclass(frozen=True)
class Slo:
    metric: str   # a key of SLO_METRICS
    limit: float  # the run misses the SLO when the measured value is above this

    def missed(self, measured: float) -> bool:
        return measured > self.limit


def parse_slos(text: str) -> tuple[Slo, ...]:
    """``startup_p95=2s,rebuffer_ratio=0.01,failed=0``."""
    if not text or not text.strip():
        return ()
    slos = []
    for part in text.split(","):
        name, eq, value = part.strip().partition("=")
        name = name.strip()
        if not eq:
            raise SpecError(f"slo: {part.strip()!r} is not NAME=VALUE")
        if name not in SLO_METRICS:
            raise SpecError(f"slo: unknown {name!r} (known: {', '.join(SLO_METRICS)})")
        if SLO_METRICS[name] == "s":
            limit = parse_duration_s(value, what=f"slo {name}")
        else:
            try:
                limit = float(value)
            except ValueError:
                raise SpecError(f"slo: {name} needs a number, got {value!r}") from None
            if limit < 0 or limit != limit:
                raise SpecError(f"slo: {name} must be >= 0, got {value!r}")
        slos.append(Slo(name, limit))
    return tuple(slos)


@dataclass(frozen=True)
class Popularity:
    kind: str          # "zipf" or "uniform"
    exponent: float = 0.0

    def weights(self, n: int) -> list[float]:
        """Probability of the i-th title (i = 0 most popular), summing to 1."""
        if n <= 0:
            return []
        raw = [1.0 / (i + 1) ** self.exponent for i in range(n)] if self.kind == "zipf" else [1.0] * n
        total = sum(raw)
        return [w / total for w in raw]


def parse_popularity(text: str) -> Popularity:
    kind, _, value = text.strip().partition(":")
    if kind == "uniform" and not value:
        return Popularity("uniform")
    if kind == "zipf":
        try:
            s = float(value)
        except ValueError:
            raise SpecError(f"popularity: zipf needs an exponent, e.g. zipf:0.9 (got {text!r})") from None
        if not 0 <= s <= 5:
            raise SpecError(f"popularity: zipf exponent must be in [0, 5], got {s}")
        return Popularity("zipf", s)
    raise SpecError(f"popularity: unknown {text!r} (zipf:S or uniform)")
