"""The one trace-integration core (`client.traceclock.LoopedRate`) against a brute-force walk,
and both worlds (the live shaper's `BandwidthSchedule`, the simulator's `SimLink`) on it."""
from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from client.network import BandwidthSchedule
from client.sim.network import SimLink
from client.traceclock import LoopedRate
from client.traces import Trace


def walk_end(durations: list[float], rates: list[float], start_s: float, size_bytes: float) -> float:
    """Brute force: step period by period from ``start_s`` (looping), draining ``size_bytes``."""
    if size_bytes <= 0:
        return start_s
    period = sum(durations)
    loops = math.floor(start_s / period)
    t = loops * period
    i = 0
    while t + durations[i] <= start_s:  # find the period playing at start_s
        t += durations[i]
        i = (i + 1) % len(durations)
    now, left = start_s, size_bytes
    # the walk subtracts period after period, so its rounding grows with the size: a transfer that
    # ends on a boundary (up to that rounding) ends there, not after the outage that may follow it
    slack = 1e-12 * size_bytes
    while True:
        end = t + durations[i]
        capacity = rates[i] * (end - now)
        if rates[i] > 0 and left <= capacity + slack:
            return min(now + left / rates[i], end)
        left -= capacity
        now = t = end
        i = (i + 1) % len(durations)


periods = st.lists(st.tuples(st.floats(0.05, 20.0), st.one_of(st.just(0.0), st.floats(1e3, 5e6))),
                   min_size=1, max_size=12).filter(lambda ps: any(r > 0 for _, r in ps))


@settings(max_examples=300, deadline=None)
@given(ps=periods, start_frac=st.floats(0.0, 3.0), loops_of_size=st.floats(0.0, 4.0))
def test_transfer_end_agrees_with_a_brute_force_walk(ps, start_frac, loops_of_size):
    durations = [d for d, _ in ps]
    rates = [r for _, r in ps]
    core = LoopedRate(durations, rates)
    start = start_frac * core.period_s
    size = max(loops_of_size * core.loop_bytes, 1.0)  # whole bytes: a transfer carries at least one
    expected = walk_end(durations, rates, start, size)
    got = core.transfer_end(start, size)
    # the same end, or two ends with no bytes between them: a transfer that ends on a loop boundary
    # up to rounding may end there or past the outage that follows (both carry the same bytes)
    lo, hi = sorted((got, expected))
    assert got == pytest.approx(expected, rel=1e-9, abs=1e-6) or core.bytes_at(hi) - core.bytes_at(lo) <= 1e-3
    assert got >= start
    # and the cumulative curve it inverts says the same bytes crossed
    assert core.bytes_at(got) - core.bytes_at(start) == pytest.approx(size, rel=1e-9, abs=1e-3)


def test_a_transfer_of_exactly_whole_loops_ends_before_the_outage_that_follows():
    # found by hypothesis: three loops of this trace end at the end of the last period, not 1 s later
    ps = [(1.0, 0.0), (11.254, 400463.0), (1.0, 1000.0)]
    core = LoopedRate([d for d, _ in ps], [r for _, r in ps])
    size = 3 * core.loop_bytes
    assert core.transfer_end(0.0, size) == pytest.approx(3 * core.period_s)
    assert walk_end([d for d, _ in ps], [r for _, r in ps], 0.0, size) == pytest.approx(3 * core.period_s)


@settings(max_examples=100, deadline=None)
@given(ps=periods, t=st.floats(0.0, 1e4))
def test_both_worlds_integrate_with_the_core(ps, t):
    durations = tuple(d for d, _ in ps)
    bps = tuple(8.0 * r for _, r in ps)
    core = LoopedRate(durations, [b / 8.0 for b in bps])
    live = BandwidthSchedule(durations, bps, (0.05,) * len(durations))
    sim = SimLink(Trace("t", durations, bps))
    for size in (1.0, 1e5, 3 * core.loop_bytes):
        assert live.transmit_end(t, size) == sim.transfer_end(t, size) == core.transfer_end(t, size)
    assert live.rate_at(t) == bps[core.index_at(t)]


def test_zero_rate_periods_and_exact_loops():
    core = LoopedRate((1.0, 1.0, 2.0), (1e6, 0.0, 5e5))  # 2 MB a 4 s loop, an outage in it
    assert core.transfer_end(0.0, 1e6) == pytest.approx(1.0)
    assert core.transfer_end(0.5, 1e6) == pytest.approx(3.0)
    assert core.transfer_end(0.0, 2e6) == pytest.approx(4.0)
    assert core.transfer_end(1.2, 0) == 1.2
    with pytest.raises(ValueError):
        LoopedRate((1.0,), (0.0,))
