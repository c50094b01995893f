"""The gc planner and the leftover rules, table-driven (pure: no storage, the clock passed in)."""
from __future__ import annotations

import pytest

from manifests import UNVERSIONED, PreviousVersion, Title, versions_named_in
from origin.storage import ObjectInfo
from origin.transcode.gc import GcReason, plan_gc
from origin.transcode.sweep import Leftover, LeftoverReason, leftover_reason

CUR, OLD, OLDER, HALF = "c" * 16, "0" * 16, "1" * 16, "2" * 16
NOW, GRACE = 1_000_000.0, 100.0
LONG_AGO, RECENT = NOW - 1000, NOW - 10


def _obj(rel: str, modified_s: float = LONG_AGO) -> ObjectInfo:
    return ObjectInfo(key=f"t1/{rel}", size_bytes=10, etag="e", last_modified_s=modified_s)


def _title(version: str | None, *previous: tuple[str, float]) -> Title:
    return Title(title="t1", duration_s=4, segment_duration_s=2, version=version,
                 previous_versions=tuple(PreviousVersion(version=v, superseded_at_s=t) for v, t in previous))


ENTRY = [_obj("master.m3u8"), _obj("title.json"), _obj("manifest.mpd")]


def _v(version: str, modified_s: float = LONG_AGO) -> list[ObjectInfo]:
    return [_obj(f"v/{version}/video/r/init.mp4", modified_s), _obj(f"v/{version}/video/r/index.m3u8", modified_s)]


CASES = [
    # (name, listing, current title, expected {version: reason} removed, kept versions)
    ("only the current version", ENTRY + _v(CUR), _title(CUR), {}, [CUR]),
    ("superseded past the grace", ENTRY + _v(CUR) + _v(OLD), _title(CUR, (OLD, LONG_AGO)),
     {OLD: GcReason.SUPERSEDED}, [CUR]),
    ("superseded within the grace: a viewer may still watch it", ENTRY + _v(CUR) + _v(OLD),
     _title(CUR, (OLD, RECENT)), {}, [CUR, OLD]),
    ("superseded long ago but written again just now (made current meanwhile)", ENTRY + _v(CUR) + _v(OLD, RECENT),
     _title(CUR, (OLD, LONG_AGO)), {}, [CUR, OLD]),
    ("two superseded, one past the grace", ENTRY + _v(CUR) + _v(OLD) + _v(OLDER),
     _title(CUR, (OLDER, LONG_AGO), (OLD, RECENT)), {OLDER: GcReason.SUPERSEDED}, [CUR, OLD]),
    ("an interrupted publish, old", ENTRY + _v(CUR) + _v(HALF), _title(CUR), {HALF: GcReason.UNNAMED}, [CUR]),
    ("a publish running now", ENTRY + _v(CUR) + _v(HALF, RECENT), _title(CUR), {}, [CUR, HALF]),
    ("a publish running now, one old object in it", ENTRY + _v(CUR) + _v(HALF) + [_obj(f"v/{HALF}/x", RECENT)],
     _title(CUR), {}, [CUR, HALF]),
    ("pre-versioning objects superseded past the grace", ENTRY + _v(CUR) + [_obj("video/r/00001.m4s")],
     _title(CUR, (UNVERSIONED, LONG_AGO)), {UNVERSIONED: GcReason.UNVERSIONED_SUPERSEDED}, [CUR]),
    ("pre-versioning objects superseded within the grace", ENTRY + _v(CUR) + [_obj("video/r/00001.m4s")],
     _title(CUR, (UNVERSIONED, RECENT)), {}, [CUR, UNVERSIONED]),
    ("a pre-versioning title is current: nothing goes", ENTRY + [_obj("video/r/00001.m4s")] + _v(HALF, RECENT),
     _title(None), {}, [UNVERSIONED, HALF]),
    ("a pre-versioning title, an interrupted first versioned publish", ENTRY + [_obj("video/r/00001.m4s")] + _v(HALF),
     _title(None), {HALF: GcReason.UNNAMED}, [UNVERSIONED]),
    ("no title.json: nothing is judged", _v(HALF) + [_obj("video/r/00001.m4s")], None, {}, [HALF, UNVERSIONED]),
    ("a v/ folder that is no version name: left alone", ENTRY + _v(CUR) + [_obj("v/notahash/x")], _title(CUR),
     {}, [CUR]),
    ("another title's keys are not this title's", ENTRY + _v(CUR) +
     [ObjectInfo(key=f"t2/v/{OLD}/x", size_bytes=1, etag="e", last_modified_s=LONG_AGO)], _title(CUR), {}, [CUR]),
]


@pytest.mark.parametrize("name,listing,current,removed,kept", CASES, ids=[c[0] for c in CASES])
def test_plan_gc(name, listing, current, removed, kept):
    plan = plan_gc("t1", listing, current, NOW, GRACE)
    got = {}
    for r in plan.removals:
        assert got.setdefault(r.version, r.reason) == r.reason
    assert got == removed
    assert sorted(plan.kept_versions) == sorted(kept)
    removed_keys = {r.key for r in plan.removals}
    # every object of a removed version goes; never an entry point or the current version
    assert removed_keys == {o.key for o in listing if any(o.key.startswith(f"t1/v/{v}/") for v in removed)
                            or (UNVERSIONED in removed and o.key.startswith("t1/video/"))}
    assert not removed_keys & {"t1/master.m3u8", "t1/title.json", "t1/manifest.mpd"}
    if current is not None:
        assert not any(k.startswith(f"t1/v/{current.version}/") for k in removed_keys)


def test_a_version_another_entry_point_names_is_kept():
    """A publish stopped between title.json and master.m3u8 leaves the master naming the old version:
    it stays as long as the master names it, however long ago title.json superseded it."""
    listing = ENTRY + _v(CUR) + _v(OLD) + _v(HALF)
    plan = plan_gc("t1", listing, _title(CUR, (OLD, LONG_AGO)), NOW, GRACE, named=frozenset({OLD, HALF}))
    assert plan.removals == ()
    assert sorted(plan.kept_versions) == sorted([CUR, OLD, HALF])


def test_versions_named_in_manifests():
    master = (f'#EXTM3U\n#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="a",URI="v/{OLD}/audio/en/index.m3u8"\n'
              f'#EXT-X-STREAM-INF:BANDWIDTH=1\nv/{CUR}/video/r/index.m3u8\n'
              f'#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=1,URI="https://e/t/tok/t1/v/{HALF}/iframes/r.m3u8"\n'
              'video/r/index.m3u8\nxv/0000000000000000/no\n')
    assert versions_named_in(master) == {OLD, CUR, HALF}
    mpd = f'<MPD><Period><BaseURL>v/{OLD}/</BaseURL><SegmentTemplate media="v/{CUR}/video/$Number$.m4s"/></Period></MPD>'
    assert versions_named_in(mpd) == {OLD, CUR}


def test_the_grace_is_a_strict_bound():
    listing = ENTRY + _v(CUR) + _v(OLD, NOW - GRACE)
    assert plan_gc("t1", listing, _title(CUR, (OLD, NOW - GRACE)), NOW, GRACE).removals == ()
    assert plan_gc("t1", listing, _title(CUR, (OLD, NOW - GRACE)), NOW + 0.001, GRACE).removed_versions == (OLD,)


LEFTOVERS = [
    ("writer alive, old", Leftover(path="a", modified_s=LONG_AGO, writer_alive=True), None),
    ("writer alive, new", Leftover(path="a", modified_s=RECENT, writer_alive=True), None),
    ("writer gone, new", Leftover(path="a", modified_s=RECENT, writer_alive=False), LeftoverReason.WRITER_GONE),
    ("writer unknown, new", Leftover(path="a", modified_s=RECENT, writer_alive=None), None),
    ("writer unknown, old", Leftover(path="a", modified_s=LONG_AGO, writer_alive=None),
     LeftoverReason.OLDER_THAN_GRACE),
]


@pytest.mark.parametrize("name,item,reason", LEFTOVERS, ids=[c[0] for c in LEFTOVERS])
def test_leftover_reason(name, item, reason):
    assert leftover_reason(item, NOW, GRACE) is reason
