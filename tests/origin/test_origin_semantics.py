"""The pure RFC 9110 core shared by origin and edge: tables, plus properties of parse_range."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from multidict import CIMultiDict

from httpsem.semantics import (
    RequestRange,
    RangeKind,
    cache_control_for,
    content_type_for,
    http_date,
    parse_http_date,
    parse_range,
    plan_response,
)

NONE, SAT, UNSAT = RangeKind.NONE, RangeKind.SATISFIABLE, RangeKind.UNSATISFIABLE
HUGE = "9" * 40


# ---------------------------------------------------------------- Range
@pytest.mark.parametrize("header, size, expected", [
    (None, 100, RequestRange(NONE)),
    ("bytes=0-0", 100, RequestRange(SAT, 0, 1)),
    ("bytes=0-99", 100, RequestRange(SAT, 0, 100)),
    ("bytes=10-19", 100, RequestRange(SAT, 10, 20)),
    ("bytes=90-200", 100, RequestRange(SAT, 90, 100)),          # last clamped to the end
    ("bytes=90-", 100, RequestRange(SAT, 90, 100)),
    ("bytes=-10", 100, RequestRange(SAT, 90, 100)),
    ("bytes=-1000", 100, RequestRange(SAT, 0, 100)),           # suffix longer than the object
    ("bytes=99-99", 100, RequestRange(SAT, 99, 100)),
    ("bytes=100-", 100, RequestRange(UNSAT)),                  # first past the end
    ("bytes=100-200", 100, RequestRange(UNSAT)),
    ("bytes=-0", 100, RequestRange(UNSAT)),                    # empty suffix
    ("bytes=-000", 100, RequestRange(UNSAT)),
    ("bytes=0-0", 0, RequestRange(UNSAT)),                     # nothing in an empty object
    ("bytes=-5", 0, RequestRange(NONE)),                       # suffix of an empty object: whole (empty)
    (f"bytes=-{HUGE}", 0, RequestRange(NONE)),
    ("bytes=5-3", 100, RequestRange(NONE)),                    # last < first: invalid, ignored
    ("bytes=0-1,5-6", 100, RequestRange(NONE)),                # multi-range: ignored (200 whole)
    ("bytes=0-1, 5-6", 100, RequestRange(NONE)),
    ("bytes=500-600,700-800", 100, RequestRange(NONE)),
    ("bytes=", 100, RequestRange(NONE)),
    ("bytes=-", 100, RequestRange(NONE)),
    ("bytes=a-b", 100, RequestRange(NONE)),
    ("bytes=-5-10", 100, RequestRange(NONE)),
    ("bytes=0x10-", 100, RequestRange(NONE)),
    ("bytes=+1-2", 100, RequestRange(NONE)),
    ("bytes=\u0663-5", 100, RequestRange(NONE)),               # non-ASCII digits are not DIGIT
    ("lines=0-5", 100, RequestRange(NONE)),                    # another unit
    ("bytes 0-5", 100, RequestRange(NONE)),
    ("0-5", 100, RequestRange(NONE)),
    ("BYTES=0-5", 100, RequestRange(SAT, 0, 6)),               # the unit is case-insensitive
    (" bytes = 1 - 2 ", 100, RequestRange(SAT, 1, 3)),         # optional whitespace tolerated
    (f"bytes={HUGE}-", 100, RequestRange(UNSAT)),              # huge first: past any end
    (f"bytes=0-{HUGE}", 100, RequestRange(SAT, 0, 100)),       # huge last: to the end
    (f"bytes=-{HUGE}", 100, RequestRange(SAT, 0, 100)),        # huge suffix: everything
    ("bytes=" + "0" * 30 + "7-9", 100, RequestRange(SAT, 7, 10)),  # leading zeros are not "huge"
    ("bytes=9223372036854775807-", 100, RequestRange(UNSAT)),
    ("bytes=0-5" + " " * 300, 100, RequestRange(NONE)),        # absurdly long header: ignored
])
def test_parse_range(header: str | None, size: int, expected: RequestRange):
    assert parse_range(header, size) == expected


@given(st.text(max_size=60), st.integers(0, 10**7))
def test_parse_range_any_text_stays_within_the_object(header: str, size: int):
    r = parse_range(header, size)
    if r.kind is SAT:
        assert 0 <= r.start < r.end <= size


@settings(max_examples=300)
@given(st.integers(0, 10**6), st.integers(0, 10**6), st.integers(1, 10**6))
def test_parse_range_well_formed_int_ranges(first: int, last: int, size: int):
    r = parse_range(f"bytes={first}-{last}", size)
    if last < first:
        assert r.kind is NONE
    elif first >= size:
        assert r.kind is UNSAT
    else:
        assert (r.kind, r.start, r.end) == (SAT, first, min(last + 1, size))


# ---------------------------------------------------------------- dates, types, caching
LM_S = 784111777  # Sun, 06 Nov 1994 08:49:37 GMT


@pytest.mark.parametrize("value, expected", [
    ("Sun, 06 Nov 1994 08:49:37 GMT", LM_S),       # IMF-fixdate
    ("Sunday, 06-Nov-94 08:49:37 GMT", LM_S),      # obsolete RFC 850
    ("Sun Nov  6 08:49:37 1994", LM_S),            # obsolete asctime: GMT without saying so
    ("Sun, 06 Nov 1994 09:49:37 +0100", LM_S),
    ("garbage", None), ("", None), (None, None),
    ("Sun, 31 Feb 1994 08:49:37 GMT", None),
    ("Sun, 06 Nov 99999 08:49:37 GMT", None),
])
def test_parse_http_date(value: str | None, expected: float | None):
    assert parse_http_date(value) == expected


def test_http_date_round_trips():
    assert http_date(LM_S + 0.9) == "Sun, 06 Nov 1994 08:49:37 GMT"
    assert parse_http_date(http_date(LM_S)) == LM_S


@pytest.mark.parametrize("path, content_type, cache_control", [
    ("t/master.m3u8", "application/vnd.apple.mpegurl", "public, max-age=2"),
    ("t/MASTER.M3U8", "application/vnd.apple.mpegurl", "public, max-age=2"),
    ("t/title.json", "application/json", "public, max-age=2"),
    ("t/manifest.mpd", "application/dash+xml", "public, max-age=2"),
    ("t/v/r/00001.m4s", "video/iso.segment", "public, max-age=31536000, immutable"),
    ("t/v/r/init.mp4", "video/mp4", "public, max-age=31536000, immutable"),
    ("t/a/en/00001.m4a", "audio/mp4", "public, max-age=31536000, immutable"),
    ("t/s/en/00001.vtt", "text/vtt; charset=utf-8", "public, max-age=31536000, immutable"),
    ("t/s/en/x.ts", "video/mp2t", "public, max-age=31536000, immutable"),
    ("t/readme", "application/octet-stream", "public, max-age=31536000, immutable"),
])
def test_content_type_and_cache_control(path: str, content_type: str, cache_control: str):
    assert content_type_for(path) == content_type
    assert cache_control_for(path) == cache_control


# ---------------------------------------------------------------- plan_response
ETAG = "abc-123"
Q = f'"{ETAG}"'
LM = http_date(LM_S)
BEFORE = http_date(LM_S - 60)
AFTER = http_date(LM_S + 60)


def plan(headers: dict[str, str], method: str = "GET", size: int = 100, path: str = "t/v/00001.m4s"):
    return plan_response(method, CIMultiDict(headers), path=path, size_bytes=size, etag=ETAG,
                         last_modified_s=LM_S + 0.5)


@pytest.mark.parametrize("headers, status", [
    ({}, 200),
    # If-Match (strong comparison) comes first
    ({"If-Match": Q}, 200),
    ({"If-Match": "*"}, 200),
    ({"If-Match": '"x", ' + Q}, 200),
    ({"If-Match": '"x"'}, 412),
    ({"If-Match": "W/" + Q}, 412),                                    # weak tags never match strongly
    ({"If-Match": '"x"', "If-None-Match": Q}, 412),                   # If-Match before If-None-Match
    ({"If-Match": Q, "If-None-Match": Q}, 304),
    ({"If-Match": '"x"', "Range": "bytes=0-1"}, 412),                 # preconditions before Range
    # If-Unmodified-Since, only without If-Match
    ({"If-Unmodified-Since": LM}, 200),
    ({"If-Unmodified-Since": AFTER}, 200),
    ({"If-Unmodified-Since": BEFORE}, 412),
    ({"If-Unmodified-Since": BEFORE, "If-Match": Q}, 200),            # ignored when If-Match present
    ({"If-Unmodified-Since": "not a date"}, 200),                     # invalid: ignored
    # If-None-Match (weak comparison)
    ({"If-None-Match": Q}, 304),
    ({"If-None-Match": "W/" + Q}, 304),
    ({"If-None-Match": '"x", W/' + Q}, 304),
    ({"If-None-Match": "*"}, 304),
    ({"If-None-Match": '"x"'}, 200),
    ({"If-None-Match": Q, "Range": "bytes=0-1"}, 304),                # 304 wins over Range
    # If-Modified-Since, only without If-None-Match
    ({"If-Modified-Since": LM}, 304),
    ({"If-Modified-Since": AFTER}, 304),
    ({"If-Modified-Since": BEFORE}, 200),
    ({"If-Modified-Since": "yesterday"}, 200),
    ({"If-Modified-Since": LM, "If-None-Match": '"x"'}, 200),         # ignored when If-None-Match present
    ({"If-Unmodified-Since": BEFORE, "If-None-Match": Q}, 412),       # 412 before 304
    # Range and If-Range
    ({"Range": "bytes=0-9"}, 206),
    ({"Range": "bytes=200-"}, 416),
    ({"Range": "bytes=0-9", "If-Range": Q}, 206),
    ({"Range": "bytes=0-9", "If-Range": '"other"'}, 200),
    ({"Range": "bytes=0-9", "If-Range": "W/" + Q}, 200),             # weak tag: never for If-Range
    ({"Range": "bytes=0-9", "If-Range": LM}, 206),                    # the exact Last-Modified date
    ({"Range": "bytes=0-9", "If-Range": AFTER}, 200),
    ({"Range": "bytes=0-9", "If-Range": BEFORE}, 200),
    ({"Range": "bytes=0-9", "If-Range": "garbage"}, 200),
    ({"Range": "bytes=200-", "If-Range": '"other"'}, 200),            # a failed If-Range drops a 416 too
    ({"If-Range": '"other"'}, 200),                                   # If-Range without Range: ignored
    ({"Range": "bytes=0-1,3-4"}, 200),
])
def test_plan_status(headers: dict[str, str], status: int):
    assert plan(headers).status == status


def test_plan_200_headers_and_body_range():
    p = plan({})
    assert (p.start, p.end, p.length, p.send_body) == (0, 100, 100, True)
    assert p.headers == {"ETag": Q, "Last-Modified": LM, "Accept-Ranges": "bytes",
                         "Cache-Control": "public, max-age=31536000, immutable",
                         "Content-Type": "video/iso.segment", "Content-Length": "100"}


def test_plan_206_and_416_headers():
    p = plan({"Range": "bytes=10-19"})
    assert (p.status, p.start, p.end, p.send_body) == (206, 10, 20, True)
    assert (p.headers["Content-Range"], p.headers["Content-Length"]) == ("bytes 10-19/100", "10")
    p = plan({"Range": "bytes=100-"})
    assert (p.status, p.send_body, p.headers["Content-Range"], p.headers["Content-Length"]) == (
        416, False, "bytes */100", "0")


def test_plan_304_carries_validators_and_no_length():
    p = plan({"If-None-Match": Q})
    assert p.status == 304 and not p.send_body
    assert p.headers["ETag"] == Q and "Content-Length" not in p.headers
    assert p.headers["Cache-Control"].startswith("public")


def test_plan_head_sends_no_body_but_the_same_headers():
    get, head = plan({"Range": "bytes=0-4"}), plan({"Range": "bytes=0-4"}, method="HEAD")
    assert head.status == 206 and not head.send_body and head.headers == get.headers


def test_plan_playlist_max_age_is_configurable():
    p = plan_response("GET", {}, path="t/master.m3u8", size_bytes=1, etag=ETAG, last_modified_s=LM_S,
                      playlist_max_age_s=7)
    assert p.headers["Cache-Control"] == "public, max-age=7"
