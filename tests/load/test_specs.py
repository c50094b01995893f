"""The load tester's spec parsers: mixes, chaos schedules, SLOs, popularity."""
from __future__ import annotations

import math

import pytest
from hypothesis import given, strategies as st

from client.load.specs import (ChaosEvent, Slo, SpecError, parse_chaos, parse_duration_s, parse_mix,
                               parse_popularity, parse_slos)

DEVICES = ("iphone", "tv-4k", "laptop-chrome")


def test_mix_normalises_weights():
    mix = parse_mix("iphone:1,tv-4k:3", what="devices", known=DEVICES)
    assert [(e.name, e.weight) for e in mix] == [("iphone", 0.25), ("tv-4k", 0.75)]


def test_mix_with_trace_paths_keeps_the_colons_in_the_name():
    mix = parse_mix("3g:0.3,trace:/data/traces:0.7", what="networks", known=("3g",), allow_prefix=("trace:",))
    assert [e.name for e in mix] == ["3g", "trace:/data/traces"]
    assert math.isclose(sum(e.weight for e in mix), 1.0)


@pytest.mark.parametrize("text, needle", [
    ("", "empty mix"),
    ("iphone:abc", "bad weight"),
    ("iphone:0", "positive"),
    ("iphone:-1", "positive"),
    ("iphone:nan", "positive"),
    ("fridge:1", "unknown 'fridge'"),
    ("iphone:1,iphone:2", "listed twice"),
])
def test_bad_mixes_name_the_problem(text, needle):
    with pytest.raises(SpecError) as e:
        parse_mix(text, what="devices", known=DEVICES)
    assert needle in str(e.value) and str(e.value).startswith("devices:")


@given(st.lists(st.tuples(st.sampled_from(DEVICES), st.floats(0.001, 1000)), min_size=1, max_size=3,
                unique_by=lambda t: t[0]))
def test_mix_weights_always_sum_to_one(entries):
    mix = parse_mix(",".join(f"{n}:{w!r}" for n, w in entries), what="devices", known=DEVICES)
    assert math.isclose(sum(e.weight for e in mix), 1.0)


@pytest.mark.parametrize("text, seconds", [("500ms", 0.5), ("30s", 30), ("30", 30), ("2m", 120), ("1.5s", 1.5)])
def test_durations(text, seconds):
    assert parse_duration_s(text, what="x") == seconds


def test_chaos_schedule_sorted_by_time():
    events = parse_chaos("restart:edge-a@60s,kill:edge-a@30s,evacuate:us-west-2@90s,origin-slow:500ms@40s")
    assert events == (
        ChaosEvent(30, "kill", "edge-a"), ChaosEvent(40, "origin-slow", "", 0.5),
        ChaosEvent(60, "restart", "edge-a"), ChaosEvent(90, "evacuate", "us-west-2"))


@pytest.mark.parametrize("text, needle", [
    ("kill:edge-a", "has no time"),
    ("explode:edge-a@3s", "unknown action 'explode'"),
    ("kill@3s", "names no target"),
    ("kill:edge-a@soon", "bad duration"),
])
def test_bad_chaos(text, needle):
    with pytest.raises(SpecError, match=needle):
        parse_chaos(text)


def test_slos():
    assert parse_slos("startup_p95=2s,rebuffer_ratio=0.01,failed=0") == (
        Slo("startup_p95", 2.0), Slo("rebuffer_ratio", 0.01), Slo("failed", 0.0))
    assert Slo("failed", 0).missed(1) and not Slo("failed", 0).missed(0)


@pytest.mark.parametrize("text, needle", [
    ("startup_p95", "is not NAME=VALUE"), ("speed=3", "unknown 'speed'"),
    ("failed=many", "needs a number"), ("failed=-1", ">= 0"), ("startup_p95=fast", "bad duration"),
])
def test_bad_slos(text, needle):
    with pytest.raises(SpecError, match=needle):
        parse_slos(text)


def test_zipf_popularity_prefers_the_first_titles():
    w = parse_popularity("zipf:0.9").weights(10)
    assert math.isclose(sum(w), 1.0) and all(a > b for a, b in zip(w, w[1:]))
    assert parse_popularity("uniform").weights(4) == [0.25] * 4
    for bad in ("zipf", "zipf:x", "zipf:9", "pareto:1"):
        with pytest.raises(SpecError):
            parse_popularity(bad)
