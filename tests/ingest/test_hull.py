"""Per-title hull maths (`origin.transcode.hull`, pure): the frontier, and rungs along it.

Table tests on hand-made probe points: dominated points dropped, the hull concave, rungs monotone
and about one JND apart, the ceiling, the 3G floor, the source's height, the rung count bounds, and
an easy and a hard title giving different ladders.
"""
from __future__ import annotations

import math

import pytest

from origin.transcode.errors import LadderError
from origin.transcode.hull import HullSettings, RdPoint, choose_rungs, upper_hull

SIZES = [(416, 234), (640, 360), (960, 540), (1280, 720), (1920, 1080)]


def family(difficulty: float) -> list[RdPoint]:
    """Probe points of a title: each resolution saturates at its own ceiling, and needs
    ``difficulty`` times the bits to get there (a grainy film: large; a cartoon: small)."""
    out = []
    for (w, h), vmax, k0 in zip(SIZES, (60, 75, 86, 92, 97), (80, 200, 450, 800, 1500)):
        for f in (0.5, 1, 2, 4):
            kbps = k0 * f * difficulty
            out.append(RdPoint(kbps, vmax * (1 - math.exp(-1.2 * f)), w, h, f"x{f}"))
    return out


def p(kbps, vmaf, h=360):
    return RdPoint(kbps, vmaf, h * 16 // 9, h)


@pytest.mark.parametrize("name, points, hull", [
    ("one point", [p(100, 50)], [p(100, 50)]),
    ("a dominated point goes (dearer and worse)", [p(100, 50), p(200, 40), p(300, 70)], [p(100, 50), p(300, 70)]),
    ("a point under the chord goes", [p(100, 40), p(200, 45), p(300, 80)], [p(100, 40), p(300, 80)]),
    ("a point on the chord goes (collinear)", [p(100, 40), p(200, 50), p(300, 60)], [p(100, 40), p(300, 60)]),
    ("concave points all stay", [p(100, 40), p(200, 60), p(400, 70)], [p(100, 40), p(200, 60), p(400, 70)]),
    ("equal rate: the better one", [p(100, 40), p(100, 45), p(300, 70)], [p(100, 45), p(300, 70)]),
    ("a falling tail goes", [p(100, 40), p(200, 60), p(400, 55)], [p(100, 40), p(200, 60)]),
    ("zero or non-finite rates go", [p(0, 10), p(math.nan, 90), p(100, 40)], [p(100, 40)]),
])
def test_the_hull(name, points, hull):
    assert upper_hull(points) == hull


def test_the_hull_crosses_resolutions_and_is_concave():
    hull = upper_hull(family(1.0))
    heights = [x.height for x in hull]
    assert heights == sorted(heights) and len(set(heights)) >= 4  # low rates at low sizes, then up
    slopes = [(b.vmaf - a.vmaf) / (b.kbps - a.kbps) for a, b in zip(hull, hull[1:])]
    assert all(s > 0 for s in slopes) and slopes == sorted(slopes, reverse=True)


def test_rungs_are_monotone_about_a_jnd_apart_and_between_floor_and_ceiling():
    s = HullSettings()
    rungs = choose_rungs(family(1.0), s)
    assert [r.kbps for r in rungs] == sorted(r.kbps for r in rungs) and len({r.kbps for r in rungs}) == len(rungs)
    assert [r.height for r in rungs] == sorted(r.height for r in rungs)
    steps = [b.vmaf - a.vmaf for a, b in zip(rungs, rungs[1:])]
    assert all(x == pytest.approx(s.step_vmaf, abs=0.01) for x in steps[1:])  # the bottom step may be shorter
    assert 0 < steps[0] <= s.step_vmaf + 0.01
    assert rungs[-1].vmaf == s.ceiling_vmaf and rungs[-1].height == 1080 and "top: VMAF 95" in rungs[-1].why
    assert rungs[0].kbps <= s.floor_kbps and "bottom" in rungs[0].why
    assert s.min_rungs <= len(rungs) <= s.max_rungs


def test_each_rung_is_read_off_the_hull():
    hull = upper_hull(family(1.0))
    for r in choose_rungs(family(1.0)):
        for a, b in zip(hull, hull[1:]):
            if a.vmaf <= r.vmaf <= b.vmaf:
                t = (r.vmaf - a.vmaf) / (b.vmaf - a.vmaf)
                assert r.kbps == pytest.approx(a.kbps + t * (b.kbps - a.kbps), abs=0.1)
                assert r.height in (a.height, b.height)
                break


def test_an_easy_and_a_hard_title_get_different_ladders():
    easy, hard = choose_rungs(family(0.3)), choose_rungs(family(3.0))
    assert easy[-1].kbps < hard[-1].kbps / 5  # the same top quality for a fraction of the bits
    assert sum(r.kbps for r in easy) < sum(r.kbps for r in hard) / 5
    # at the same bitrate the easy title is shown taller
    assert max(r.height for r in easy if r.kbps <= 1000) > max(r.height for r in hard if r.kbps <= 1000)


def test_a_title_that_never_reaches_the_ceiling_tops_out_at_its_best():
    pts = [x for x in family(1.0) if x.height <= 720]  # best: 720p at 91.2
    rungs = choose_rungs(pts)
    best = max(pts, key=lambda x: x.vmaf)
    assert rungs[-1].kbps == pytest.approx(best.kbps) and rungs[-1].vmaf == pytest.approx(best.vmaf, abs=0.01)
    assert "does not reach 95" in rungs[-1].why


def test_never_above_the_source_height():
    rungs = choose_rungs(family(1.0), source_height=540)
    assert max(r.height for r in rungs) == 540
    with pytest.raises(LadderError, match="no usable probe point at or under 100 lines"):
        choose_rungs(family(1.0), source_height=100)


def test_a_hull_above_the_floor_ends_on_its_cheapest_point():
    rungs = choose_rungs(family(10.0), HullSettings(floor_kbps=300))
    cheapest = upper_hull(family(10.0))[0]
    assert rungs[0].kbps == pytest.approx(cheapest.kbps) and rungs[0].kbps > 300
    assert "still above the 300 kbps floor" in rungs[0].why


def test_rung_count_bounds():
    many = choose_rungs(family(1.0), HullSettings(step_vmaf=2.0, max_rungs=5))
    assert len(many) <= 5  # the step widened until they fit
    few = choose_rungs([p(200, 80, 360), p(400, 88, 540), p(800, 95, 720)],
                       HullSettings(step_vmaf=20, floor_kbps=1000, min_rungs=4))
    assert len(few) == 4 and any("added for min_rungs" in r.why for r in few)
    assert [r.kbps for r in few] == sorted(r.kbps for r in few)


def test_a_shorter_picture_never_sits_above_a_taller_one():
    # a 540p vertex cheaper than a 720p one that is in turn cheaper than a 360p-sized oddity
    pts = [RdPoint(100, 40, 960, 540), RdPoint(300, 70, 1280, 720), RdPoint(900, 90, 640, 360)]
    rungs = choose_rungs(pts, HullSettings(step_vmaf=10, ceiling_vmaf=90))
    assert [r.height for r in rungs] == sorted(r.height for r in rungs)
    assert "kept at 720p" in rungs[-1].why


@pytest.mark.parametrize("kwargs, message", [
    ({"step_vmaf": 0}, "per_title.step_vmaf must be a number > 0, got 0"),
    ({"floor_kbps": -5}, "per_title.floor_kbps must be a number > 0, got -5"),
    ({"ceiling_vmaf": 120}, "per_title.ceiling_vmaf must be within (0, 100], got 120"),
    ({"min_rungs": 5, "max_rungs": 3}, "per_title: need 1 <= min_rungs <= max_rungs, got 5 and 3"),
    ({"min_rungs": 0}, "per_title: need 1 <= min_rungs <= max_rungs, got 0 and 8"),
])
def test_bad_settings_are_one_line(kwargs, message):
    with pytest.raises(LadderError) as e:
        HullSettings(**kwargs)
    assert str(e.value) == message
