"""Table tests of the edge's pure cores: freshness, slices, upstream order, pacing, admission, title.json."""
from __future__ import annotations

import json

import pytest
from hypothesis import given, strategies as st

from edge.freshness import Freshness, freshness, parse_max_age
from edge.ram import RamTier, admit
from edge.ratelimit import Bucket, in_window, minutes_until_open, take
from edge.slices import locate_body, parse_content_range, slice_bounds, slices_covering
from edge.titlejson import TitleJsonError, prefill_items, read_title
from edge.upstreams import UpstreamKind, build_upstreams, upstream_order


@pytest.mark.parametrize("fetched, max_age, now, sie, want", [
    (0, 10, 5, 100, Freshness.FRESH), (0, 10, 10, 100, Freshness.STALE), (0, 10, 109, 100, Freshness.STALE),
    (0, 10, 110, 100, Freshness.EXPIRED), (0, 0, 0, 0, Freshness.EXPIRED)])
def test_freshness(fetched, max_age, now, sie, want):
    assert freshness(fetched, max_age, now, sie) is want


@pytest.mark.parametrize("header, want", [
    (None, 7.0), ("public, max-age=2", 2.0), ("max-age=5, s-maxage=9", 9.0), ("no-cache", 0.0),
    ("public", 7.0), ('max-age="3"', 3.0), ("max-age=abc", 7.0)])
def test_parse_max_age(header, want):
    assert parse_max_age(header, 7.0) == want


@pytest.mark.parametrize("start, end, size, want", [
    (0, 1, 10, range(0, 1)), (0, 10, 10, range(0, 1)), (9, 11, 10, range(0, 2)), (10, 20, 10, range(1, 2)),
    (5, 5, 10, range(0)), (25, 31, 10, range(2, 4))])
def test_slices_covering(start, end, size, want):
    assert slices_covering(start, end, size) == want


@given(size=st.integers(1, 10**7), slice_bytes=st.integers(4096, 10**6), data=st.data())
def test_slices_cover_exactly(size, slice_bytes, data):
    a = data.draw(st.integers(0, size - 1))
    b = data.draw(st.integers(a + 1, size))
    covered = [slice_bounds(n, size, slice_bytes) for n in slices_covering(a, b, slice_bytes)]
    assert covered[0][0] <= a and covered[-1][1] >= b
    assert all(x[1] == y[0] for x, y in zip(covered, covered[1:]))


@pytest.mark.parametrize("value, want", [
    ("bytes 0-9/100", (0, 10, 100)), ("bytes 5-4/100", None), ("bytes 0-100/100", None), ("items 0-1/2", None),
    (None, None)])
def test_parse_content_range(value, want):
    assert parse_content_range(value) == want


def test_locate_body():
    assert locate_body(200, "10", None).size_bytes == 10
    assert locate_body(200, None, None).size_bytes is None
    assert locate_body(206, None, "bytes 2-3/9").start == 2
    assert locate_body(206, None, None) is None
    assert locate_body(500, "1", None) is None


def test_upstream_order_is_the_configured_one():
    ups = build_upstreams(["http://p1"], ["http://a1/", "http://a2"], "http://o")
    assert [u.kind for u in ups] == [UpstreamKind.PEER, UpstreamKind.PARENT, UpstreamKind.PARENT, UpstreamKind.ORIGIN]
    assert ups[1].base_url == "http://a1"
    assert upstream_order(ups) == list(ups)  # which may be asked now is the circuit breakers' call
    assert [u.base_url for u in upstream_order(ups, include_peers=False)] == ["http://a1", "http://a2", "http://o"]


def test_token_bucket_paces_to_the_rate():
    b, now, slept = Bucket(0.0, 0.0), 0.0, 0.0
    for _ in range(100):
        b, delay = take(b, 10_000, 100_000.0, 20_000.0, now)
        now += delay
        slept += delay
    assert abs(now - 10.0) < 0.01  # 1 MB at 100 kB/s


@pytest.mark.parametrize("window, minute, open_, wait", [
    (None, 5, True, 0), ((60, 120), 90, True, 0), ((60, 120), 120, False, 1380), ((1380, 60), 10, True, 0),
    ((1380, 60), 600, False, 780), ((0, 0), 77, True, 0)])
def test_window(window, minute, open_, wait):
    assert in_window(window, minute) is open_
    assert minutes_until_open(window, minute) == wait


@pytest.mark.parametrize("seen, size, limit, hits, want", [
    (0, 10**9, 100, 1, True), (1, 10, 8000, 2, False), (2, 10, 8000, 2, True), (5, 2000, 8000, 2, False)])
def test_admission(seen, size, limit, hits, want):
    assert admit(seen, size, limit, hits) is want


class _P:
    def __init__(self, n: int) -> None:
        self.nbytes = n


@given(ops=st.lists(st.tuples(st.integers(0, 30), st.integers(0, 5000)), max_size=300),
       policy=st.sampled_from(["lru", "lfu", "lru+2hit", "fifo"]))
def test_ram_tier_never_exceeds_its_bound(ops, policy):
    tier = RamTier(20_000, policy)
    for key, size in ops:
        if tier.get(str(key)) is None:
            tier.put(str(key), _P(size))
        assert tier.used_bytes <= 20_000


def _video_track(playlist: str, init: dict, segments: list) -> dict:
    return {"id": "v1", "codec": "avc1.64001f", "codec_family": "h264", "width": 640, "height": 360,
            "frame_rate": 25.0, "bandwidth_bps": 1, "average_bandwidth_bps": 1, "nominal_bitrate_kbps": 1,
            "playlist": playlist, "init": init, "segments": segments}


def _title_json(**tracks) -> str:
    return json.dumps({"format": "vodstack-title/1", "title": "t1", "duration_s": 4.0, "segment_duration_s": 2.0,
                       "layout": "byterange", "video": [], "audio": [], "subtitles": [], "iframes": [], **tracks})


def test_prefill_items_dedupes_and_orders():
    doc = _title_json(
        video=[_video_track("video/v1/index.m3u8", {"path": "video/v1/all.mp4", "size_bytes": 100, "offset_bytes": 0},
                            [{"path": "video/v1/all.mp4", "duration_s": 2.0, "size_bytes": 50, "offset_bytes": 100},
                             {"path": "video/v1/all.mp4", "duration_s": 2.0, "size_bytes": 70, "offset_bytes": 150}])],
        subtitles=[{"id": "en", "language": "en", "name": "English", "playlist": "subs/en/index.m3u8",
                    "segments": [{"path": "subs/en/00001.vtt", "duration_s": 4.0, "size_bytes": 10}]}],
        iframes=[{"rendition": "v1", "playlist": "iframes/v1.m3u8", "bandwidth_bps": 1}])
    items = prefill_items(read_title(doc, "t1"), "t1")
    assert [i.path for i in items] == ["master.m3u8", "video/v1/index.m3u8", "video/v1/all.mp4",
                                       "subs/en/index.m3u8", "subs/en/00001.vtt", "iframes/v1.m3u8"]
    assert items[2].size_bytes == 220
    with pytest.raises(TitleJsonError):
        read_title(json.dumps({"format": "other"}), "t1")
    with pytest.raises(TitleJsonError):
        read_title("{not json", "t1")
    with pytest.raises(TitleJsonError):
        read_title(json.dumps({"format": "vodstack-title/1", "video": [{"playlist": "x"}]}), "t1")
    with pytest.raises(TitleJsonError):
        prefill_items(read_title(_title_json(video=[_video_track("../x", {"path": "i.mp4", "size_bytes": 1}, [])]),
                                 "t1"), "t1")
