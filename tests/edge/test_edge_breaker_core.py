"""Pure cores of the edge's upstream handling, table-driven: the circuit breaker (clock passed in), the
freshness decision with stale-while-revalidate / stale-if-error, the Cache-Control stale windows, a 416's
``Content-Range``."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.breaker import CLOSED, Admit, Breaker, BreakerConfig, Phase, admit, on_abandon, on_failure, on_success, \
    transition
from edge.freshness import Freshness, StaleWindows, freshness, parse_stale_windows
from edge.slices import parse_unsatisfied_range

CFG = BreakerConfig(failures_to_open=2, open_s=10.0)

# (event, time, expected verdict or None, expected phase after)
#   event: "admit" | "ok" | "fail" | "timeout" | "abandon"
SCRIPTS = {
    "closed stays closed below the bound, a success resets the count": [
        ("admit", 0, Admit.TRY, Phase.CLOSED), ("fail", 0, None, Phase.CLOSED), ("ok", 1, None, Phase.CLOSED),
        ("fail", 2, None, Phase.CLOSED), ("admit", 3, Admit.TRY, Phase.CLOSED),
    ],
    "two failures in a row open it; open skips until open_s has passed": [
        ("fail", 0, None, Phase.CLOSED), ("timeout", 1, None, Phase.OPEN),
        ("admit", 1, Admit.SKIP, Phase.OPEN), ("admit", 10.9, Admit.SKIP, Phase.OPEN),
        ("admit", 11, Admit.PROBE, Phase.HALF_OPEN),
    ],
    "half-open lets exactly one probe through; its success closes": [
        ("fail", 0, None, Phase.CLOSED), ("fail", 0, None, Phase.OPEN),
        ("admit", 10, Admit.PROBE, Phase.HALF_OPEN), ("admit", 10, Admit.SKIP, Phase.HALF_OPEN),
        ("admit", 50, Admit.SKIP, Phase.HALF_OPEN), ("ok", 51, None, Phase.CLOSED),
        ("admit", 51, Admit.TRY, Phase.CLOSED),
    ],
    "a failed probe opens it again, from the time of the failure": [
        ("fail", 0, None, Phase.CLOSED), ("fail", 0, None, Phase.OPEN),
        ("admit", 10, Admit.PROBE, Phase.HALF_OPEN), ("fail", 12, None, Phase.OPEN),
        ("admit", 21, Admit.SKIP, Phase.OPEN), ("admit", 22, Admit.PROBE, Phase.HALF_OPEN),
    ],
    "an abandoned probe frees the slot for the next request": [
        ("fail", 0, None, Phase.CLOSED), ("fail", 0, None, Phase.OPEN),
        ("admit", 10, Admit.PROBE, Phase.HALF_OPEN), ("abandon", 10, None, Phase.HALF_OPEN),
        ("admit", 10, Admit.PROBE, Phase.HALF_OPEN),
    ],
    "a late failure of a request let in before it opened keeps it open, from then": [
        ("fail", 0, None, Phase.CLOSED), ("fail", 0, None, Phase.OPEN), ("fail", 5, None, Phase.OPEN),
        ("admit", 14, Admit.SKIP, Phase.OPEN), ("admit", 15, Admit.PROBE, Phase.HALF_OPEN),
    ],
}


@pytest.mark.parametrize("name", list(SCRIPTS))
def test_breaker_scripts(name: str) -> None:
    b = CLOSED
    for event, now_s, verdict, phase in SCRIPTS[name]:
        if event == "admit":
            b, got = admit(b, CFG, now_s)
            assert got is verdict, (name, event, now_s)
        elif event == "ok":
            b = on_success(b)
        elif event in ("fail", "timeout"):
            b = on_failure(b, CFG, now_s, timeout=event == "timeout")
        else:
            b = on_abandon(b)
        assert b.phase is phase, (name, event, now_s, b)


def test_breaker_remembers_what_opened_it_and_reports_transitions() -> None:
    one = BreakerConfig(failures_to_open=1, open_s=5.0)
    opened = on_failure(CLOSED, one, 100.0, timeout=True)
    assert opened.phase is Phase.OPEN and opened.last_failure_timeout and opened.opened_at_s == 100.0
    assert transition(CLOSED, opened) is Phase.OPEN
    assert transition(opened, opened) is None
    probing, _ = admit(opened, one, 105.0)
    assert transition(opened, probing) is Phase.HALF_OPEN
    assert transition(probing, on_success(probing)) is Phase.CLOSED
    assert not on_failure(CLOSED, one, 0.0, timeout=False).last_failure_timeout


@settings(max_examples=200, derandomize=True)
@given(st.lists(st.tuples(st.sampled_from(["admit", "ok", "fail", "abandon"]), st.floats(0, 5)), max_size=40))
def test_breaker_never_lets_two_probes_out_at_once(events: list[tuple[str, float]]) -> None:
    """Whatever happens, while half-open at most one request is admitted until a verdict comes back,
    and an open circuit never admits anything before open_s has passed since it opened."""
    b, now_s, probes_out = CLOSED, 0.0, 0
    for event, dt in events:
        now_s += dt
        if event == "admit":
            before = b
            b, verdict = admit(b, CFG, now_s)
            if before.phase is Phase.OPEN and now_s - before.opened_at_s < CFG.open_s:
                assert verdict is Admit.SKIP
            if verdict is Admit.PROBE:
                probes_out += 1
                assert probes_out == 1
        elif event == "ok":
            b, probes_out = on_success(b), 0
        elif event == "fail":
            b, probes_out = on_failure(b, CFG, now_s, timeout=False), 0
        else:
            b, probes_out = on_abandon(b), 0
        assert isinstance(b, Breaker)


# (age, max_age, stale-if-error, stale-while-revalidate) -> Freshness
FRESHNESS = [
    (0.0, 2.0, 10.0, 3.0, Freshness.FRESH),
    (1.99, 2.0, 10.0, 3.0, Freshness.FRESH),
    (2.0, 2.0, 10.0, 3.0, Freshness.REVALIDATING),
    (4.99, 2.0, 10.0, 3.0, Freshness.REVALIDATING),
    (5.0, 2.0, 10.0, 3.0, Freshness.STALE),
    (11.99, 2.0, 10.0, 3.0, Freshness.STALE),
    (12.0, 2.0, 10.0, 3.0, Freshness.EXPIRED),
    (2.0, 2.0, 10.0, 0.0, Freshness.STALE),       # no stale-while-revalidate: revalidate first
    (2.0, 2.0, 0.0, 0.0, Freshness.EXPIRED),      # must-revalidate: never stale
    (6.0, 2.0, 1.0, 5.0, Freshness.REVALIDATING),  # swr longer than sie: served while revalidating
    (7.0, 2.0, 1.0, 5.0, Freshness.EXPIRED),
]


@pytest.mark.parametrize(("age_s", "max_age_s", "sie_s", "swr_s", "want"), FRESHNESS)
def test_freshness_table(age_s: float, max_age_s: float, sie_s: float, swr_s: float, want: Freshness) -> None:
    assert freshness(1000.0, max_age_s, 1000.0 + age_s, sie_s, swr_s) is want


@pytest.mark.parametrize(("cache_control", "want"), [
    (None, StaleWindows()),
    ("public, max-age=2", StaleWindows()),
    ("public, max-age=2, stale-while-revalidate=30, stale-if-error=600",
     StaleWindows(while_revalidate_s=30.0, if_error_s=600.0)),
    ("max-age=2,Stale-If-Error=\"60\"", StaleWindows(if_error_s=60.0)),
    ("max-age=2, must-revalidate, stale-if-error=60", StaleWindows(while_revalidate_s=0.0, if_error_s=0.0)),
    ("no-cache", StaleWindows(while_revalidate_s=0.0, if_error_s=0.0)),
    ("max-age=2, proxy-revalidate", StaleWindows(while_revalidate_s=0.0, if_error_s=0.0)),
    ("max-age=2, stale-while-revalidate=abc", StaleWindows()),
])
def test_stale_windows_from_cache_control(cache_control: str | None, want: StaleWindows) -> None:
    assert parse_stale_windows(cache_control) == want


@pytest.mark.parametrize(("value", "want"), [
    ("bytes */0", 0), ("bytes */1234", 1234), (" BYTES */7 ", 7), (None, None), ("", None),
    ("bytes 0-1/2", None), ("bytes */", None), ("bytes */-1", None),
])
def test_unsatisfied_content_range(value: str | None, want: int | None) -> None:
    assert parse_unsatisfied_range(value) == want


_ORDER = [Freshness.FRESH, Freshness.REVALIDATING, Freshness.STALE, Freshness.EXPIRED]


@settings(max_examples=300, derandomize=True)
@given(st.floats(0, 1e6), st.floats(0, 1e4), st.floats(0, 1e4), st.floats(0, 1e4), st.floats(0, 1e4),
       st.floats(0, 1e4))
def test_freshness_only_ever_ages(fetched_at_s: float, max_age_s: float, sie_s: float, swr_s: float,
                                  age1_s: float, extra_s: float) -> None:
    """An older copy is never in an earlier state; within the stale-while-revalidate window it is never
    anything but fresh or revalidating; without a window it is never served while revalidating."""
    a = freshness(fetched_at_s, max_age_s, fetched_at_s + age1_s, sie_s, swr_s)
    b = freshness(fetched_at_s, max_age_s, fetched_at_s + age1_s + extra_s, sie_s, swr_s)
    assert _ORDER.index(a) <= _ORDER.index(b)
    if (fetched_at_s + age1_s) - fetched_at_s < max_age_s + swr_s:  # the age as the core computes it
        assert a in (Freshness.FRESH, Freshness.REVALIDATING)
    if swr_s == 0:
        assert a is not Freshness.REVALIDATING
