"""What a viewer does besides watching: where they start, when they seek, pause and quit (pure).

    script = ViewerScript(start=Position(fraction=0.4), watch_s=300.0,
                          seeks=(Seek(at_s=60.0, to=Position(by_s=30.0)),),
                          pauses=(Pause(at_s=120.0, duration_s=20.0),))
    script = parse_script(start="90", seeks=["+30@60", "50%@120"], pauses=["20@90"], watch_s=None)

Every ``at_s`` is **watched time**: seconds of media the viewer has been shown since pressing
play (stalls, seek waits and pauses do not count), so one script replays the same on any network.
A position is absolute seconds, a fraction of the title, or (seeks only) a jump relative to the
playhead; `resolve` turns it into seconds once the title's length is known. ``watch_s`` is when
the viewer quits (None: at the end of the title). The buffer model that plays a script is
`playback.PlaybackState`; `client/load/behaviour.py` draws scripts for load sessions.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

__all__ = ["Position", "Seek", "Pause", "ViewerScript", "ScriptError", "parse_position", "parse_script",
           "PLAY_FROM_0"]

#: A seek or start never lands closer to the end of the title than this (there would be nothing to play).
END_MARGIN_S = 1.0


class ScriptError(ValueError):
    """A script that cannot be played: the message is one line for the user."""


@dataclass(frozen=True, slots=True)
class Position:
    """Where in the title: ``at_s`` seconds, a ``fraction`` of its length, or ``by_s`` from the playhead."""

    at_s: float | None = None
    fraction: float | None = None
    by_s: float | None = None

    def __post_init__(self) -> None:
        given = [v for v in (self.at_s, self.fraction, self.by_s) if v is not None]
        if len(given) != 1 or not all(math.isfinite(v) for v in given):
            raise ScriptError("a position is one of: seconds, a fraction of the title, or a jump (+S/-S)")
        if self.at_s is not None and self.at_s < 0:
            raise ScriptError(f"position {self.at_s:g} s is before the start of the title")
        if self.fraction is not None and not 0.0 <= self.fraction <= 1.0:
            raise ScriptError(f"position {100 * self.fraction:g}% is not within the title")

    def resolve(self, content_s: float, playhead_s: float = 0.0) -> float:
        """Seconds into a title of ``content_s``, kept ``END_MARGIN_S`` from its end (never below 0)."""
        if self.at_s is not None:
            t = self.at_s
        elif self.fraction is not None:
            t = self.fraction * content_s
        else:
            assert self.by_s is not None
            t = playhead_s + self.by_s
        return min(max(t, 0.0), max(content_s - END_MARGIN_S, 0.0))

    def describe(self) -> str:
        """As `parse_position` reads it back, exactly (``90``, ``40%``, ``+30``)."""
        if self.at_s is not None:
            return _num(self.at_s)
        if self.fraction is not None:  # in decimal, so that 0.88938 reads back as 0.88938
            return format((Decimal(repr(self.fraction)) * 100).normalize(), "f") + "%"
        assert self.by_s is not None
        return ("+" if self.by_s >= 0 else "") + _num(self.by_s)


@dataclass(frozen=True, slots=True)
class Seek:
    """At ``at_s`` watched seconds, jump to ``to``."""

    at_s: float
    to: Position


@dataclass(frozen=True, slots=True)
class Pause:
    """At ``at_s`` watched seconds, pause for ``duration_s`` (the buffer keeps filling)."""

    at_s: float
    duration_s: float


@dataclass(frozen=True, slots=True)
class ViewerScript:
    """One viewer's behaviour (module docstring); the default plays from 0 to the end."""

    start: Position = field(default_factory=lambda: Position(at_s=0.0))
    watch_s: float | None = None
    seeks: tuple[Seek, ...] = ()
    pauses: tuple[Pause, ...] = ()
    name: str = "play-from-0"
    """The behaviour profile it was drawn from (what reports group by)."""

    def __post_init__(self) -> None:
        if self.start.by_s is not None:
            raise ScriptError("a start position is seconds or a fraction of the title, not a jump")
        if self.watch_s is not None and not (math.isfinite(self.watch_s) and self.watch_s > 0):
            raise ScriptError(f"watch time {self.watch_s:g} s: it must be > 0")
        for s in self.seeks:
            if not (math.isfinite(s.at_s) and s.at_s >= 0):
                raise ScriptError(f"a seek at {s.at_s:g} s of watching: it must be >= 0")
        for p in self.pauses:
            if not (math.isfinite(p.at_s) and p.at_s >= 0 and math.isfinite(p.duration_s) and p.duration_s > 0):
                raise ScriptError(f"a pause of {p.duration_s:g} s at {p.at_s:g} s: both must be >= 0, "
                                  "the duration > 0")
        object.__setattr__(self, "seeks", tuple(sorted(self.seeks, key=lambda s: s.at_s)))
        object.__setattr__(self, "pauses", tuple(sorted(self.pauses, key=lambda p: p.at_s)))

    @property
    def plays_from_0(self) -> bool:
        return (self.start.resolve(1.0) == 0.0 and self.start.fraction in (None, 0.0) and self.watch_s is None
                and not self.seeks and not self.pauses)

    def as_dict(self) -> dict[str, Any]:
        """The script in the flags' own words (`from_dict` reads it back exactly)."""
        return {"name": self.name, "start": self.start.describe(), "watch_s": self.watch_s,
                "seeks": [f"{s.to.describe()}@{_num(s.at_s)}" for s in self.seeks],
                "pauses": [f"{_num(p.duration_s)}@{_num(p.at_s)}" for p in self.pauses]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ViewerScript:
        return parse_script(start=str(d.get("start", "0")), seeks=list(d.get("seeks") or ()),
                            pauses=list(d.get("pauses") or ()), watch_s=d.get("watch_s"),
                            name=str(d.get("name") or "scripted"), always=True)


def _num(x: float) -> str:
    """``x`` short when that is exact (``90``, ``12.5``), else every digit (a drawn script round-trips)."""
    short = f"{x:g}"
    return short if float(short) == x else repr(float(x))


PLAY_FROM_0 = ViewerScript()


def parse_position(text: str, *, relative: bool = True) -> Position:
    """``90`` (seconds), ``40%`` (of the title), ``+30`` / ``-10`` (a jump, when ``relative``)."""
    t = text.strip()
    try:
        if t.endswith("%"):
            try:
                share = Decimal(t[:-1].strip()) / 100
            except ArithmeticError:
                raise ValueError(t) from None
            return Position(fraction=float(share))
        if t[:1] in "+-" and t[:1]:
            if not relative:
                raise ScriptError(f"position {t!r}: a start is seconds or a percentage, not a jump")
            return Position(by_s=float(t))
        return Position(at_s=float(t))
    except ValueError as e:
        if isinstance(e, ScriptError):
            raise
        raise ScriptError(f"position {text!r}: give seconds (90), a percentage (40%) or a jump (+30, -10)") from None


def _at(text: str, what: str) -> tuple[str, float]:
    value, sep, at = text.partition("@")
    if not sep or not value.strip():
        raise ScriptError(f"{what} {text!r}: write it as VALUE@WATCHED_SECONDS, e.g. {'+30@60' if what == 'seek' else '20@90'}")
    try:
        return value, float(at)
    except ValueError:
        raise ScriptError(f"{what} {text!r}: {at!r} is not a number of watched seconds") from None


def parse_script(*, start: str | None = None, seeks: list[str] | tuple[str, ...] = (),
                 pauses: list[str] | tuple[str, ...] = (), watch_s: float | None = None,
                 name: str = "scripted", always: bool = False) -> ViewerScript:
    """A script from the player's flags: ``--start 90``, ``--seek +30@60``, ``--pause 20@90``, ``--watch S``
    (none of them: `PLAY_FROM_0`, unless ``always``)."""
    if start is None and not seeks and not pauses and watch_s is None and not always:
        return PLAY_FROM_0
    seek_list = []
    for text in seeks:
        value, at = _at(text, "seek")
        seek_list.append(Seek(at_s=at, to=parse_position(value)))
    pause_list = []
    for text in pauses:
        value, at = _at(text, "pause")
        try:
            duration = float(value)
        except ValueError:
            raise ScriptError(f"pause {text!r}: {value!r} is not a number of seconds") from None
        pause_list.append(Pause(at_s=at, duration_s=duration))
    return ViewerScript(start=parse_position(start, relative=False) if start is not None else Position(at_s=0.0),
                        watch_s=watch_s, seeks=tuple(seek_list), pauses=tuple(pause_list), name=name)
