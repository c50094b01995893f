"""The pure ABR rules: BBA's rate map, BOLA's thresholds, the estimator math, the MPC planner,
abandonment, and the registry."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from client.abr import ALGORITHMS, AbrConfig, AbrSnapshot, DownloadProgress, ThroughputSample, create, should_abandon
from client.abr.bba import bba0_index, rate_map_bps
from client.abr.bola import BolaBasic, BolaE, bola_choice, switch_level_s
from client.abr.estimator import DualEwmaEstimator, Ewma, SampleCursor, harmonic_mean
from client.abr.buffer_value import buffer_target_s, buffer_value
from client.abr.mpc import RobustPredictor
from client.abr.planner import best_plan

LADDER = (300_000, 750_000, 1_200_000, 1_850_000, 2_850_000, 4_300_000)


def snap(buffer_s: float = 10.0, samples: tuple[ThroughputSample, ...] = (), last: int | None = 1,
         index: int = 5, total: int = 48, **kw) -> AbrSnapshot:
    return AbrSnapshot(buffer_s=buffer_s, ladder_bps=LADDER, segment_duration_s=4.0, segment_index=index,
                       segments_total=total, samples=samples, last_index=last, max_buffer_s=60.0, **kw)


def steady_samples(bps: float, n: int = 8, latency_s: float = 0.0) -> tuple[ThroughputSample, ...]:
    size = int(bps * 4.0 / 8)  # one 4 s segment's worth at that rate
    return tuple(ThroughputSample(seq=i, size_bytes=size, duration_s=4.0 + latency_s, ttfb_s=latency_s)
                 for i in range(n))


# --- BBA ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("buffer_s, expected_bps", [
    (0.0, 300_000), (5.0, 300_000),            # up to the reservoir: lowest
    (7.5, 300_000 + 0.25 * 4_000_000),          # linear in between
    (10.0, 2_300_000),
    (15.0, 4_300_000), (60.0, 4_300_000),       # from reservoir + cushion: highest
])
def test_bba_rate_map(buffer_s: float, expected_bps: float) -> None:
    assert rate_map_bps(buffer_s, LADDER, 5.0, 10.0) == pytest.approx(expected_bps)


@pytest.mark.parametrize("buffer_s, previous, expected", [
    (3.0, 5, 0),      # in the reservoir: lowest whatever came before
    (16.0, 0, 5),     # above the cushion: highest
    (10.0, 0, 3),     # f = 2.3 Mbps >= next rung up: highest rung strictly below f (1.85 Mbps)
    (10.0, 3, 3),     # between the neighbours of the previous rung: hold
    (6.0, 3, 1),      # f = 0.7 Mbps <= next rung down: lowest rung strictly above f
])
def test_bba0_choice(buffer_s: float, previous: int, expected: int) -> None:
    assert bba0_index(buffer_s, LADDER, previous, 5.0, 10.0) == expected


@given(st.floats(0, 60), st.floats(0, 60))
def test_bba_rate_map_is_monotone(a: float, b: float) -> None:
    lo, hi = sorted((a, b))
    assert rate_map_bps(lo, LADDER, 5.0, 10.0) <= rate_map_bps(hi, LADDER, 5.0, 10.0)


# --- BOLA --------------------------------------------------------------------------------------

def bola_e_params() -> tuple[list[float], float, float]:
    algo = BolaE(AbrConfig())
    return algo.parameters(snap())


def test_bola_e_parameters_follow_sabre() -> None:
    utilities, vp, gp = bola_e_params()
    assert utilities[0] == pytest.approx(1.0)
    assert utilities[-1] == pytest.approx(1.0 + math.log(4300 / 300))
    buffer_s = max(10.0 + 2.0 * len(LADDER), 60.0)
    assert gp == pytest.approx((utilities[-1] - 1.0) / (buffer_s / 10.0 - 1.0))
    assert vp == pytest.approx(10.0 / gp)


def test_bola_switches_exactly_at_the_formula_thresholds() -> None:
    utilities, vp, gp = bola_e_params()
    levels = [switch_level_s(q, LADDER, utilities, vp, gp) for q in range(1, len(LADDER))]
    assert levels == sorted(levels)
    for q, level in enumerate(levels, start=1):
        assert bola_choice(level - 1e-6, LADDER, utilities, vp, gp) == q - 1
        assert bola_choice(level + 1e-6, LADDER, utilities, vp, gp) == q


@given(st.floats(0, 80))
def test_bola_choice_is_the_number_of_thresholds_below_the_buffer(level: float) -> None:
    utilities, vp, gp = bola_e_params()
    below = sum(1 for q in range(1, len(LADDER)) if switch_level_s(q, LADDER, utilities, vp, gp) < level)
    assert bola_choice(level, LADDER, utilities, vp, gp) == below


def test_bola_basic_shrinks_its_buffer_target_near_the_start() -> None:
    algo = BolaBasic(AbrConfig())
    _, vp_early, _ = algo.parameters(snap(index=2))
    _, vp_mid, _ = algo.parameters(snap(index=24))
    assert vp_early < vp_mid


# --- estimators --------------------------------------------------------------------------------

def test_ewma_zero_factor_makes_a_constant_input_exact() -> None:
    e = Ewma(3.0)
    for weight in (0.5, 2.0, 4.0):
        e.add(weight, 2_000_000.0)
        assert e.estimate() == pytest.approx(2_000_000.0)


def test_ewma_weights_by_half_life() -> None:
    e = Ewma(2.0)
    e.add(2.0, 1.0)   # one half-life at value 1
    e.add(2.0, 3.0)   # one half-life at value 3: raw 0.5*0.5*1... computed by hand below
    alpha = 0.5       # alpha ** weight for weight = half-life
    raw = 3.0 * (1 - alpha) + alpha * (1.0 * (1 - alpha))
    assert e.estimate() == pytest.approx(raw / (1 - alpha * alpha))


def test_dual_ewma_takes_the_smaller_and_excludes_latency() -> None:
    est = DualEwmaEstimator(fast_half_life_s=3.0, slow_half_life_s=8.0, default_bps=123.0)
    assert est.estimate_bps() == 123.0
    est.add(ThroughputSample(seq=0, size_bytes=1_000_000, duration_s=4.5, ttfb_s=0.5))  # 2 Mbps transfer
    assert est.estimate_bps() == pytest.approx(2_000_000.0)
    assert est.latency_s() == pytest.approx(0.5)
    est.add(ThroughputSample(seq=1, size_bytes=250_000, duration_s=4.0, ttfb_s=0.0))  # drop to 0.5 Mbps
    assert est.estimate_bps() == pytest.approx(min(est.fast.estimate(), est.slow.estimate()))
    assert est.fast.estimate() < est.slow.estimate()  # the fast one fell further


def test_sample_cursor_takes_each_sample_once() -> None:
    cur = SampleCursor()
    s = steady_samples(1e6, 4)
    assert [x.seq for x in cur.take(s[:2])] == [0, 1]
    assert [x.seq for x in cur.take(s)] == [2, 3]
    assert cur.take(s) == []


def test_harmonic_mean_and_robust_prediction() -> None:
    assert harmonic_mean([1.0, 4.0]) == pytest.approx(1.6)
    p = RobustPredictor(window=5)
    p.add(2e6)
    assert p.predict_bps(0) == pytest.approx(2e6)  # no error yet
    p.add(1e6)  # predicted 2e6, got 1e6: error |2-1|/1 = 1
    assert p.predict_bps(0) == pytest.approx(harmonic_mean([2e6, 1e6]) / 2.0)


def test_error_cap_bounds_completed_downloads_only() -> None:
    """A crawling completed download discounts by at most 1 + cap; an abandoned one in full."""
    capped = RobustPredictor(window=5, error_cap=0.5)
    capped.add(2e6)
    capped.add(0.25e6)  # predicted 2e6, got 0.25e6: error 7, capped to 0.5
    assert capped.predict_bps(0) == pytest.approx(harmonic_mean([2e6, 0.25e6]) / 1.5)
    abandoned = RobustPredictor(window=5, error_cap=0.5)
    abandoned.add(2e6)
    abandoned.add(0.25e6, complete=False)
    assert abandoned.predict_bps(0) == pytest.approx(harmonic_mean([2e6, 0.25e6]) / 8.0)
    # a completed download measures the link again: the abandonment's error is capped from then on
    abandoned.add(1e6)  # its own error (0.44 Mbps predicted) is capped at 0.5 too
    assert abandoned.predict_bps(0) == pytest.approx(harmonic_mean([2e6, 0.25e6, 1e6]) / 1.5)


def test_buffer_value_is_capped_at_the_target_and_shrinks_near_the_end() -> None:
    value = buffer_value(2e6, 4.0, target_s=25.0)
    buf = np.array([0.0, 10.0, 25.0, 50.0])
    assert list(value(buf, np.zeros(4, dtype=int))) == pytest.approx([0.0, 5.0, 12.5, 12.5])
    assert buffer_target_s(25.0, 4.0, None, 0.5) == 25.0  # unbounded stream
    assert buffer_target_s(25.0, 4.0, 40, 0.5) == 25.0
    assert buffer_target_s(25.0, 4.0, 5, 0.5) == 10.0  # 5 segments after the horizon: half of 20 s
    assert buffer_target_s(25.0, 4.0, 0, 0.5) == 0.0  # the plan reaches the end: spend it all


# --- MPC planner -------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["mpc", "horizon"])
@pytest.mark.parametrize("bps, expected", [(900_000, 1), (2_000_000, 3), (5_000_000, 5), (10_000_000, 5)])
def test_mpc_on_a_constant_trace_holds_the_sustainable_rung(name: str, bps: float, expected: int) -> None:
    """The sustainable rung is the highest one below 0.95 x the link (Pensieve's payload share)."""
    from client.sim.manifests import Video
    from client.sim.session import simulate
    from client.sim.setups import PENSIEVE
    from client.traces import Trace

    video = Video("v", LADDER, 4.0, tuple(tuple(r * 4 // 8 for r in LADDER) for _ in range(48)))
    result = simulate(video, Trace.constant(bps), create(name), PENSIEVE)
    steady = [c.rung for c in result.chunks[6:]]
    assert steady.count(expected) >= 0.75 * len(steady), steady
    assert result.qoe.avg_bitrate_kbps * 1e3 <= bps
    assert result.qoe.rebuffer_s == 0


def brute_force(sizes, rates, bw, buffer_s, last, seg):
    """Best QoE over every rung sequence, and the best value reachable from each first rung."""
    by_first: dict[int, float] = {}
    for combo in itertools.product(range(len(rates)), repeat=len(sizes)):
        b, val, prev = buffer_s, 0.0, last
        for k, q in enumerate(combo):
            d = 8 * sizes[k][q] / bw
            val += rates[q] - 4.3 * max(d - b, 0) - (abs(rates[q] - rates[prev]) if prev is not None else 0)
            b = max(b - d, 0) + seg
            prev = q
        by_first[combo[0]] = max(by_first.get(combo[0], -math.inf), val)
    return max(by_first.values()), by_first


@settings(max_examples=40, deadline=None)
@given(st.lists(st.lists(st.integers(50_000, 3_000_000), min_size=4, max_size=4), min_size=1, max_size=4),
       st.floats(200_000, 5_000_000), st.floats(0, 30), st.sampled_from([None, 0, 1, 2, 3]))
def test_pruned_planner_equals_brute_force(sizes, bw, buffer_s, last) -> None:
    sizes = [sorted(row) for row in sizes]
    rates = [0.3, 0.75, 1.2, 1.85]
    plan = best_plan(sizes, rates, [bw] * len(sizes), buffer_s, last, 4.0)
    value, by_first = brute_force(sizes, rates, bw, buffer_s, last, 4.0)
    assert plan.score == pytest.approx(value, abs=1e-9)
    assert by_first[plan.first] == pytest.approx(value, abs=1e-9)  # its first step starts a best plan


# --- abandonment -------------------------------------------------------------------------------

def progress(downloaded: int, elapsed_s: float, buffer_s: float, rung: int = 4) -> DownloadProgress:
    size = LADDER[rung] * 4 // 8
    return DownloadProgress(rung=rung, size_bytes=size, downloaded_bytes=downloaded, elapsed_s=elapsed_s,
                            ttfb_s=0.1, buffer_s=buffer_s, ladder_bps=LADDER, segment_duration_s=4.0)


@pytest.mark.parametrize("downloaded, elapsed_s, buffer_s, abandons", [
    (1_000_000, 2.0, 10.0, False),  # ~4 Mbps: 0.4 s left, long before the buffer drains
    (50_000, 0.3, 1.0, False),      # still in the grace period
    (50_000, 2.0, 20.0, True),      # ~0.2 Mbps: ~52 s left > 0.9 x 20 s of buffer
    (700_000, 2.0, 20.0, False),    # ~2.9 Mbps: ~2 s left
])
def test_should_abandon_only_downloads_that_cannot_finish(downloaded, elapsed_s, buffer_s, abandons) -> None:
    d = should_abandon(progress(downloaded, elapsed_s, buffer_s))
    assert (d is not None) == abandons
    if d is not None:
        assert 0 <= d.index < 4 and "abandon" in d.reason


def test_should_abandon_picks_the_highest_rung_that_fits() -> None:
    # 200 kB in 1.9 s of transfer: ~0.84 Mbps. 8 s of buffer, margin 0.9 -> 7.2 s budget.
    d = should_abandon(progress(200_000, 2.0, 8.0))
    assert d is not None
    rate = 8 * 200_000 / 1.9
    fits = [r for r in range(4) if 0.1 + LADDER[r] * 4 / rate <= 0.9 * 8.0]
    assert d.index == max(fits)


def test_should_abandon_never_goes_below_rung_zero() -> None:
    assert should_abandon(progress(10_000, 2.0, 0.5, rung=0)) is None


# --- registry and replay -----------------------------------------------------------------------

def test_registry_creates_every_algorithm_and_rejects_unknown_names() -> None:
    for name in ALGORITHMS:
        d = create(name).decide(snap(samples=steady_samples(2e6)))
        assert 0 <= d.index < len(LADDER) and d.reason
    with pytest.raises(KeyError, match="valid: .*default"):
        create("nope")


@pytest.mark.parametrize("name", sorted(ALGORITHMS))
def test_same_snapshots_same_decisions(name: str) -> None:
    """A fresh object fed the recorded snapshots replays the decisions exactly."""
    from client.sim.manifests import Video
    from client.sim.session import simulate
    from client.sim.setups import PENSIEVE
    from client.traces import Trace

    video = Video("v", LADDER, 4.0, tuple(tuple(r * 4 // 8 for r in LADDER) for _ in range(20)))
    trace = Trace("t", (7.0, 3.0, 11.0, 5.0), (3e6, 0.4e6, 1.5e6, 6e6))

    class Recorder:
        def __init__(self, inner):
            self.inner, self.log, self.name = inner, [], inner.name

        def decide(self, s):
            d = self.inner.decide(s)
            self.log.append(("decide", s, d))
            return d

        def abandon(self, p):
            d = self.inner.abandon(p)
            self.log.append(("abandon", p, d))
            return d

    rec = Recorder(create(name))
    simulate(video, trace, rec, PENSIEVE)
    fresh = create(name)
    for kind, arg, decision in rec.log:
        assert getattr(fresh, kind)(arg) == decision
