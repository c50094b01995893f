"""`client.qoe.rebuffer_ratio`: one well-defined ratio for the report, QoE summaries and the load tester."""
from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from client.load.summary import summarize as load_summarize
from client.qoe import rebuffer_ratio, summarize
from client.report import SessionReport, StallRecord

CASES = [
    # stall_s, played_s, ratio
    (0.0, 0.0, 0.0),            # nothing happened
    (0.0, 60.0, 0.0),           # no stall
    (1.0, 0.0, 1.0),            # only stalls: all of the watching time
    (7e-4, 3e-6, 7e-4 / (7e-4 + 3e-6)),  # a near-zero play time: well defined, not a division by ~0
    (2.0, 98.0, 0.02),
    (-1.0, 10.0, 0.0),          # nonsense inputs count as 0
    (float("nan"), 10.0, 0.0),
    (1.0, float("nan"), 1.0),
    (1.0, -5.0, 1.0),
    (float("inf"), 1.0, 0.0),
]


@pytest.mark.parametrize("stall_s, played_s, ratio", CASES)
def test_rebuffer_ratio_table(stall_s, played_s, ratio):
    assert rebuffer_ratio(stall_s, played_s) == pytest.approx(ratio)


finite_or_not = st.floats(allow_nan=True, allow_infinity=True)


@given(stall_s=finite_or_not, played_s=finite_or_not)
def test_ratio_is_always_in_0_1_and_0_without_stall_time(stall_s, played_s):
    r = rebuffer_ratio(stall_s, played_s)
    assert 0.0 <= r <= 1.0 and not math.isnan(r)
    if not stall_s > 0 or not math.isfinite(stall_s):
        assert r == 0.0
    assert rebuffer_ratio(0.0, played_s) == 0.0


@given(stall_s=st.floats(min_value=1e-9, max_value=1e6), played_s=st.floats(min_value=0, max_value=1e6),
       more=st.floats(min_value=0, max_value=1e6))
def test_more_play_time_never_raises_the_ratio(stall_s, played_s, more):
    assert rebuffer_ratio(stall_s, played_s + more) <= rebuffer_ratio(stall_s, played_s) + 1e-12


def test_every_summary_uses_the_same_ratio():
    report = SessionReport(ok=True, error=None, source="x", device="d", network="n", abr="a", speed=1.0,
                           startup_s=0.1, played_s=3e-6, content_s=3e-6, session_s=1.0,
                           stalls=[StallRecord(at_s=0.1, duration_s=7e-4)])
    assert report.stall_ratio == rebuffer_ratio(7e-4, 3e-6)
    assert summarize([1e6, 1e6], [0.0, 7e-4], 0.1, 3e-6).rebuffer_ratio == rebuffer_ratio(7e-4, 3e-6)
    assert summarize([1e6], [0.0], 0.1, 0.0).rebuffer_ratio == 0.0
    s = load_summarize([{"index": 0, "state": "ok", "device": "iphone", "network": "4g", "network_mix": "4g",
                         "startup_s": 0.1, "stall_s": 7e-4, "played_s": 3e-6, "stalls": 1, "avg_bitrate_bps": 1000,
                         "failovers": [], "bytes": 100, "error": None, "error_kind": ""}])
    assert s["rebuffer_ratio"] == round(rebuffer_ratio(7e-4, 3e-6), 6)
