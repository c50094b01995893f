"""Per-title ladders: the rate-quality convex hull of a title's probe encodes, and rungs along it (pure).

    hull = upper_hull(points)                      # the frontier over every resolution
    rungs = choose_rungs(points, HullSettings(), source_height=1080)

A probe encode of the title at one resolution and one quality setting is an `RdPoint`: its bitrate
and its VMAF at the display resolution. Netflix's per-title encoding picks, for each quality, the
resolution that gets there with the fewest bits: the *upper convex hull* of all the points in the
(kbps, VMAF) plane, across resolutions. Points under it (a resolution past its best, or one not
yet worth its bits) are dropped, and so are points that are not better than a cheaper one.

`choose_rungs` walks the hull from the top down:

* **top**: the hull's bitrate for ``ceiling_vmaf`` (≈ 95: past it VMAF stops paying), or the
  hull's best when the title never gets there (the source's own quality); never a point taller
  than the source;
* **steps**: each next rung ``step_vmaf`` (≈ 6, one JND) below the one above, its bitrate read
  off the hull by linear interpolation between the two vertices around that quality, at the
  resolution of the nearer of the two (so each rung is at the resolution where the hull has it);
* **bottom**: the walk stops at the first rung at or under ``floor_kbps`` (the 3G budget); if the
  hull's cheapest point is still above it, the cheapest point is the bottom rung (and says so);
* **bounds**: more than ``max_rungs``, and the step is widened until they fit; fewer than
  ``min_rungs``, and the hull's cheapest point is added at the bottom, then rungs in the widest
  gaps (by bitrate ratio) between neighbours;
* rungs go up in bitrate and in VMAF, and their heights never go down.

Every rung says why it was chosen (``why``), for ``title.json``. Linear bitrate is the hull's
axis, as in rate-distortion optimisation (a convex combination of two encodes is achievable by
switching between them).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from .errors import LadderError

__all__ = ["RdPoint", "HullSettings", "Rung", "upper_hull", "choose_rungs"]


@dataclass(frozen=True, slots=True)
class RdPoint:
    """One probe encode: ``kbps`` at ``width``x``height`` scored ``vmaf`` (at display size)."""

    kbps: float
    vmaf: float
    width: int
    height: int
    setting: str = ""
    """How it was encoded (``crf=23``), for the record."""

    @property
    def label(self) -> str:
        return f"{self.height}p" + (f" {self.setting}" if self.setting else "")


@dataclass(frozen=True, slots=True)
class HullSettings:
    """How rungs are chosen along the hull (the ladder TOML's ``[per_title]``)."""

    step_vmaf: float = 6.0
    floor_kbps: float = 300.0
    ceiling_vmaf: float = 95.0
    min_rungs: int = 3
    max_rungs: int = 8

    def __post_init__(self) -> None:
        for name in ("step_vmaf", "floor_kbps", "ceiling_vmaf"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise LadderError(f"per_title.{name} must be a number > 0, got {v!r}")
        if not 0 < self.ceiling_vmaf <= 100:
            raise LadderError(f"per_title.ceiling_vmaf must be within (0, 100], got {self.ceiling_vmaf!r}")
        if not (isinstance(self.min_rungs, int) and isinstance(self.max_rungs, int) and 1 <= self.min_rungs
                <= self.max_rungs):
            raise LadderError(f"per_title: need 1 <= min_rungs <= max_rungs, got {self.min_rungs!r} and "
                              f"{self.max_rungs!r}")


@dataclass(frozen=True, slots=True)
class Rung:
    """A chosen rung: encode at ``width``x``height`` and ``kbps``; ``vmaf`` is what the hull expects."""

    kbps: float
    vmaf: float
    width: int
    height: int
    why: str


def _cross(o: RdPoint, a: RdPoint, b: RdPoint) -> float:
    return (a.kbps - o.kbps) * (b.vmaf - o.vmaf) - (a.vmaf - o.vmaf) * (b.kbps - o.kbps)


def upper_hull(points: list[RdPoint] | tuple[RdPoint, ...]) -> list[RdPoint]:
    """The rate-quality frontier: the upper convex hull of ``points``, cheapest first, each vertex
    better than the one before (dominated points and the hull's falling tail dropped)."""
    good = [p for p in points if math.isfinite(p.kbps) and math.isfinite(p.vmaf) and p.kbps > 0]
    pts = sorted(good, key=lambda p: (p.kbps, -p.vmaf))
    frontier: list[RdPoint] = []
    for p in pts:  # keep only points better than every cheaper one
        if not frontier or p.vmaf > frontier[-1].vmaf:
            frontier.append(p)
    hull: list[RdPoint] = []
    for p in frontier:  # Andrew's monotone chain, upper half (the frontier already rises)
        while len(hull) >= 2 and _cross(hull[-2], hull[-1], p) >= 0:
            hull.pop()
        hull.append(p)
    return hull


def _at_quality(hull: list[RdPoint], q: float) -> tuple[float, RdPoint]:
    """The hull's bitrate for quality ``q`` (linear between vertices) and the nearer vertex."""
    if q <= hull[0].vmaf:
        return hull[0].kbps, hull[0]
    for a, b in zip(hull, hull[1:]):
        if a.vmaf <= q <= b.vmaf:
            t = (q - a.vmaf) / (b.vmaf - a.vmaf)
            kbps = a.kbps + t * (b.kbps - a.kbps)
            return kbps, (a if kbps - a.kbps <= b.kbps - kbps else b)
    return hull[-1].kbps, hull[-1]


def _walk(hull: list[RdPoint], top: tuple[float, float, RdPoint], step: float,
          floor_kbps: float) -> list[tuple[float, float, RdPoint]]:
    """(kbps, vmaf, vertex) from ``top`` down in ``step`` until a rung is at or under the floor."""
    out = [top]
    q = top[1]
    while out[-1][0] > floor_kbps and q - step >= hull[0].vmaf - 1e-9:
        q -= step
        kbps, vertex = _at_quality(hull, q)
        out.append((kbps, q, vertex))
    cheapest = (hull[0].kbps, hull[0].vmaf, hull[0])
    if out[-1][0] > floor_kbps and out[-1][0] > cheapest[0]:  # the hull's cheapest point is the last resort
        if len(out) > 1 and out[-1][1] - cheapest[1] < step / 2:
            out[-1] = cheapest  # in place of a rung less than half a step above it
        else:
            out.append(cheapest)
    return out[::-1]


def choose_rungs(points: list[RdPoint] | tuple[RdPoint, ...], settings: HullSettings = HullSettings(), *,
                 source_height: int | None = None) -> list[Rung]:
    """The rungs of one codec family's ladder from its probe points (module docstring), cheapest first."""
    usable = [p for p in points if source_height is None or p.height <= source_height]
    hull = upper_hull(usable)
    if not hull:
        raise LadderError("per-title: no usable probe point" + (f" at or under {source_height} lines"
                                                                 if source_height is not None else ""))
    best = hull[-1]
    if best.vmaf >= settings.ceiling_vmaf:  # VMAF stops paying there: the hull's bitrate for it
        kbps, vertex = _at_quality(hull, settings.ceiling_vmaf)
        top = (kbps, settings.ceiling_vmaf, vertex)
        top_why = f"top: VMAF {settings.ceiling_vmaf:g}, where more bits stop paying"
    else:
        top = (best.kbps, best.vmaf, best)
        top_why = (f"top: the hull's best, VMAF {best.vmaf:.1f}: the title does not reach "
                   f"{settings.ceiling_vmaf:g} at the probed settings")
    step = settings.step_vmaf
    walk = _walk(hull, top, step, settings.floor_kbps)
    while len(walk) > settings.max_rungs:
        step *= 1.25
        walk = _walk(hull, top, step, settings.floor_kbps)
    picks: list[tuple[float, float, RdPoint, str]] = [(k, q, v, "") for k, q, v in walk]
    if len(picks) < settings.min_rungs and picks[0][0] > hull[0].kbps:
        picks.insert(0, (hull[0].kbps, hull[0].vmaf, hull[0], "added for min_rungs: the hull's cheapest point"))
    while len(picks) < settings.min_rungs:
        gaps = [(b[0] / a[0], i) for i, (a, b) in enumerate(zip(picks, picks[1:])) if b[1] - a[1] > 1.0]
        if not gaps:
            break
        _, i = max(gaps)
        q = (picks[i][1] + picks[i + 1][1]) / 2
        kbps, vertex = _at_quality(hull, q)
        picks.insert(i + 1, (kbps, q, vertex, "added for min_rungs, in the widest gap"))
    out: list[Rung] = []
    last = len(picks) - 1
    for k, (kbps, q, vertex, why) in enumerate(picks):
        if not why:
            if k == last:
                why = top_why
            elif k == 0:
                why = (f"bottom: at or under the {settings.floor_kbps:g} kbps floor" if kbps <= settings.floor_kbps
                       else f"bottom: the hull's cheapest point, still above the {settings.floor_kbps:g} kbps floor")
            else:
                why = f"{picks[k + 1][1] - q:.1f} VMAF under the rung above"
        why += f" (hull vertex {vertex.label}: {vertex.kbps:.0f} kbps, VMAF {vertex.vmaf:.1f})"
        width, height = vertex.width, vertex.height
        if out and height < out[-1].height:  # never a shorter picture above a taller one
            width, height = out[-1].width, out[-1].height
            why += f"; kept at {height}p, the rung below's size"
        out.append(Rung(kbps=round(kbps, 1), vmaf=round(q, 2), width=width, height=height, why=why))
    return out
