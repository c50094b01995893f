"""Viewer behaviour profiles for load sessions: who resumes, who quits early, who seeks and pauses (pure).

    mix = load_behaviours("default")           # the shipped client/load/behaviour.toml
    mix = load_behaviours("viewers.toml")      # BehaviourError: one line naming the file and key
    script = draw_script(mix, random.Random("behaviour-7"))   # a client.script.ViewerScript

A profile is a TOML table ``[profile.NAME]``; every key is optional and the defaults play from 0
to the end (the ``play-from-0`` baseline):

    [profile.sampler]
    weight = 0.2              # share of sessions (normalised over the file's profiles)
    start = "0"               # "0", or "resume": a uniform share of the title from resume_range
    resume_range = [0.05, 0.9]
    watch = "exponential"     # "full" (to the end), "exponential" (mean watch_mean_s) or
    watch_mean_s = 120.0      # "uniform" (watch_range_s): when the viewer quits, in watched seconds
    watch_range_s = [30.0, 600.0]
    seeks_per_min = 1.0       # a Poisson process over watched time
    seek_random = 0.3         # share of seeks to a uniformly random position of the title
    seek_forward = 0.8        # of the other seeks (jumps): the share that jump forward
    seek_jump_s = [10.0, 120.0]   # jump length, uniform
    pauses_per_min = 0.0      # a Poisson process over watched time
    pause_s = [5.0, 60.0]     # pause length, uniform

The draw (`draw_script`) uses only the RNG it is given, and how many numbers it takes from it
depends only on the profile drawn, so a plan's scripts are the same for a seed. Acts are drawn
over the watch time, or ``horizon_s`` of watching for ``watch = "full"`` (acts past the end of a
title never happen: the session has ended), at most `MAX_EVENTS` seeks and as many pauses.
"""
from __future__ import annotations

import bisect
import itertools
import math
import random
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from client.script import Pause, Position, Seek, ViewerScript

from .errors import LoadError

__all__ = ["BehaviourError", "BehaviourProfile", "BehaviourMix", "PLAY_FROM_0_MIX", "DEFAULT_FILE", "MAX_EVENTS",
           "load_behaviours", "draw_script", "summarize_mix"]

#: At most this many seeks, and as many pauses, per session.
MAX_EVENTS = 64
#: The shipped profiles (``--behaviour default``).
DEFAULT_FILE = Path(__file__).with_name("behaviour.toml")
#: Acts of a viewer who watches to the end are drawn over this much watching.
HORIZON_S = 3 * 3600.0


class BehaviourError(LoadError):
    """A behaviour file that cannot be used; the message is one line naming the file and the key."""


@dataclass(frozen=True, slots=True)
class BehaviourProfile:
    """One kind of viewer (module docstring); the defaults play from 0 to the end."""

    name: str
    weight: float = 1.0
    start: str = "0"
    resume_range: tuple[float, float] = (0.05, 0.9)
    watch: str = "full"
    watch_mean_s: float = 600.0
    watch_range_s: tuple[float, float] = (60.0, 1800.0)
    seeks_per_min: float = 0.0
    seek_random: float = 0.0
    seek_forward: float = 0.5
    seek_jump_s: tuple[float, float] = (10.0, 60.0)
    pauses_per_min: float = 0.0
    pause_s: tuple[float, float] = (5.0, 60.0)

    def describe(self) -> str:
        start = "from 0" if self.start == "0" else \
            f"resume at {100 * self.resume_range[0]:g}-{100 * self.resume_range[1]:g}% of the title"
        watch = {"full": "to the end", "exponential": f"quit after ~{self.watch_mean_s:g} s (exponential)",
                 "uniform": f"quit after {self.watch_range_s[0]:g}-{self.watch_range_s[1]:g} s"}[self.watch]
        acts = []
        if self.seeks_per_min:
            acts.append(f"{self.seeks_per_min:g} seeks/min ({100 * self.seek_random:g}% random, jumps "
                        f"{self.seek_jump_s[0]:g}-{self.seek_jump_s[1]:g} s, {100 * self.seek_forward:g}% forward)")
        if self.pauses_per_min:
            acts.append(f"{self.pauses_per_min:g} pauses/min of {self.pause_s[0]:g}-{self.pause_s[1]:g} s")
        return f"{start}, {watch}" + (", " + ", ".join(acts) if acts else "")


@dataclass(frozen=True, slots=True)
class BehaviourMix:
    """The profiles sessions are drawn from, with their weights; ``source`` says where they came from."""

    profiles: tuple[BehaviourProfile, ...]
    source: str

    def draw_profile(self, rng: random.Random) -> BehaviourProfile:
        cum = list(itertools.accumulate(p.weight for p in self.profiles))
        x = rng.random() * cum[-1]
        return self.profiles[min(bisect.bisect_right(cum, x), len(self.profiles) - 1)]


PLAY_FROM_0_MIX = BehaviourMix((BehaviourProfile("play-from-0"),), "play-from-0")

_RANGES = {"resume_range", "watch_range_s", "seek_jump_s", "pause_s"}
_SHARES = {"seek_random", "seek_forward"}
_CHOICES = {"start": ("0", "resume"), "watch": ("full", "exponential", "uniform")}


def load_behaviours(source: str | Path | None) -> BehaviourMix:
    """None or ``play-from-0``: everyone plays from 0; ``default``: the shipped file; else a TOML file."""
    if source is None or str(source) == "play-from-0":
        return PLAY_FROM_0_MIX
    path = DEFAULT_FILE if str(source) == "default" else Path(source)
    name = path.name
    try:
        doc = tomllib.loads(path.read_text())
    except OSError as e:
        raise BehaviourError(f"behaviour file {path}: {e.strerror or e}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise BehaviourError(f"{name}: not TOML: {e}") from None
    extra = set(doc) - {"profile"}
    if extra:
        raise BehaviourError(f"{name}: unknown table or key {sorted(extra)[0]!r} (profiles are [profile.NAME])")
    tables = doc.get("profile")
    if not isinstance(tables, dict) or not tables:
        raise BehaviourError(f"{name}: no profiles (write [profile.NAME] tables)")
    return BehaviourMix(tuple(_profile(name, key, t) for key, t in tables.items()), str(path))


def _profile(file: str, name: str, table: Any) -> BehaviourProfile:
    where = f"{file}: profile {name!r}"
    if not isinstance(table, dict):
        raise BehaviourError(f"{where}: must be a table")
    known = {f.name for f in fields(BehaviourProfile)} - {"name"}
    values: dict[str, Any] = {}
    for key, v in table.items():
        if key not in known:
            raise BehaviourError(f"{where}: unknown key {key!r} (known: {', '.join(sorted(known))})")
        if key in _CHOICES:
            if v not in _CHOICES[key]:
                raise BehaviourError(f"{where}: {key} must be one of {', '.join(map(repr, _CHOICES[key]))}")
            values[key] = v
        elif key in _RANGES:
            if (not isinstance(v, list) or len(v) != 2 or not all(_is_number(x) for x in v)
                    or not math.isfinite(v[0]) or not math.isfinite(v[1])):
                raise BehaviourError(f"{where}: {key} must be [low, high], two numbers")
            lo, hi = float(v[0]), float(v[1])
            if lo > hi or lo < 0:
                raise BehaviourError(f"{where}: {key} must be [low, high] with 0 <= low <= high")
            if key == "resume_range" and hi > 1:
                raise BehaviourError(f"{where}: resume_range is a share of the title, within [0, 1]")
            if key in ("watch_range_s", "pause_s") and lo <= 0:
                raise BehaviourError(f"{where}: {key} must be > 0")
            values[key] = (lo, hi)
        else:
            if not _is_number(v) or not math.isfinite(v):
                raise BehaviourError(f"{where}: {key} must be a number")
            x = float(v)
            if key in _SHARES and not 0 <= x <= 1:
                raise BehaviourError(f"{where}: {key} is a share, within [0, 1]")
            if key in ("weight", "watch_mean_s") and x <= 0:
                raise BehaviourError(f"{where}: {key} must be > 0")
            if x < 0:
                raise BehaviourError(f"{where}: {key} must be >= 0")
            values[key] = x
    return BehaviourProfile(name=name, **values)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _poisson_times(rng: random.Random, per_min: float, until_s: float) -> list[float]:
    """Event times of a Poisson process of ``per_min`` a minute over [0, until_s), at most MAX_EVENTS."""
    out: list[float] = []
    if per_min <= 0:
        return out
    t = rng.expovariate(per_min / 60.0)
    while t < until_s and len(out) < MAX_EVENTS:
        out.append(round(t, 3))
        t += rng.expovariate(per_min / 60.0)
    return out


def draw_script(mix: BehaviourMix, rng: random.Random, horizon_s: float = HORIZON_S) -> ViewerScript:
    """One session's script: a profile by weight, then its start, watch time, seeks and pauses
    (seconds rounded to ms and shares to 1e-5, so that the script's words read it back exactly)."""
    p = mix.draw_profile(rng)
    start = Position(at_s=0.0) if p.start == "0" else Position(fraction=round(rng.uniform(*p.resume_range), 5))
    watch_s: float | None = None
    if p.watch == "exponential":
        watch_s = max(round(rng.expovariate(1.0 / p.watch_mean_s), 3), 1.0)
    elif p.watch == "uniform":
        watch_s = max(round(rng.uniform(*p.watch_range_s), 3), 1.0)
    until = watch_s if watch_s is not None else horizon_s
    seeks = []
    for at in _poisson_times(rng, p.seeks_per_min, until):
        if rng.random() < p.seek_random:
            to = Position(fraction=round(rng.random(), 5))
        else:
            jump = round(rng.uniform(*p.seek_jump_s), 3)
            to = Position(by_s=jump if rng.random() < p.seek_forward else -jump)
        seeks.append(Seek(at_s=at, to=to))
    pauses = [Pause(at_s=at, duration_s=round(rng.uniform(*p.pause_s), 3)) for at in _poisson_times(rng, p.pauses_per_min, until)]
    return ViewerScript(start=start, watch_s=watch_s, seeks=tuple(seeks), pauses=tuple(pauses), name=p.name)


def summarize_mix(mix: BehaviourMix) -> list[dict[str, Any]]:
    """The profiles for a report: name, share of sessions, what they do."""
    total = sum(p.weight for p in mix.profiles)
    return [{"name": p.name, "share": round(p.weight / total, 4), "does": p.describe()} for p in mix.profiles]
