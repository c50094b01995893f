"""`client.giveup.judge_transfer`: when a trickling media transfer is abandoned (table and properties)."""
from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from client.giveup import GiveUpPolicy, TransferAction, TransferProgress, judge_transfer

KEEP, ABANDON = TransferAction.KEEP, TransferAction.ABANDON
POLICY = GiveUpPolicy(stall_budget_s=10.0, grace_s=1.0)


def progress(received: int, expected: int | None, elapsed_s: float, wait_s: float, buffer_s: float = 0.0,
             min_budget_s: float = 0.0, link_s: float = 0.0) -> TransferProgress:
    return TransferProgress(received_bytes=received, expected_bytes=expected, elapsed_s=elapsed_s,
                            body_wait_s=wait_s, link_s=link_s, buffer_s=buffer_s, min_budget_s=min_budget_s)


CASES = [
    # name, progress, action, reason starts with
    ("size unknown is never judged", progress(5, None, 30.0, 30.0), KEEP, "size unknown"),
    ("zero expected is never judged", progress(5, 0, 30.0, 30.0), KEEP, "size unknown"),
    ("complete", progress(1000, 1000, 30.0, 30.0), KEEP, "complete"),
    ("within the grace", progress(1, 100_000, 0.9, 0.9), KEEP, "too early"),
    ("a trickle at start-up", progress(5, 100_000, 1.2, 1.0), ABANDON, "too slow"),
    ("start-up: ends inside the 10 s budget", progress(50_000, 100_000, 4.0, 4.0), KEEP, "on time"),
    ("start-up: ends just past the budget", progress(38_000, 100_000, 4.0, 4.0), ABANDON, "too slow"),
    ("a buffer buys time", progress(38_000, 100_000, 4.0, 4.0, buffer_s=3.0), KEEP, "on time"),
    ("a buffer does not buy forever", progress(5, 100_000, 2.0, 1.5, buffer_s=30.0), ABANDON, "too slow"),
    # 1.5 s waiting on the server, 5.5 s in the viewer's own link: the server would be done in time,
    ("fast server, slow viewer link", progress(40_000, 100_000, 7.0, 1.5, link_s=5.5), KEEP, "on time"),
    ("fast server, very slow viewer link", progress(40_000, 100_000, 60.0, 1.5, link_s=58.5), KEEP, "on time"),
    # ... and a server that is slow itself is too slow however the link behaves
    ("slow server, slow viewer link", progress(5, 100_000, 30.0, 1.5, link_s=28.5), ABANDON, "too slow"),
    ("no byte yet after the grace", progress(0, 100_000, 1.5, 1.5), ABANDON, "too slow"),
    ("the shell's floor", progress(38_000, 100_000, 4.0, 4.0, min_budget_s=20.0), KEEP, "on time"),
    ("an infinite budget never gives up", progress(1, 100_000, 100.0, 100.0), KEEP, "on time"),
]


@pytest.mark.parametrize("name, p, action, reason", CASES, ids=[c[0] for c in CASES])
def test_judge_transfer_table(name, p, action, reason):
    policy = GiveUpPolicy(stall_budget_s=math.inf) if name.startswith("an infinite") else POLICY
    verdict = judge_transfer(p, policy)
    assert verdict.action is action, verdict
    assert verdict.reason.startswith(reason if not name.startswith("an infinite") else "no stall budget")


def test_the_reason_says_what_was_seen_and_what_was_allowed():
    v = judge_transfer(progress(5, 100_000, 1.2, 1.0), POLICY)
    assert v.abandon and v.reason.startswith("too slow: 5 of 100,000 bytes in 1.2 s (0.04 kb/s from the server)")
    assert "start-up budget 10 s" in v.reason and v.allowed_s == 10.0 and v.finish_s > 10.0
    v = judge_transfer(progress(5, 100_000, 2.0, 1.5, buffer_s=30.0), POLICY)
    assert "buffer 30.0 s + stall budget 10 s" in v.reason and v.allowed_s == 40.0
    v = judge_transfer(progress(0, 100_000, 1.5, 1.5), POLICY)
    assert "needs forever" in v.reason


sizes = st.integers(min_value=1, max_value=10**9)
times = st.floats(min_value=0.0, max_value=1e5, allow_nan=False)


@given(received=st.integers(min_value=0, max_value=10**9), expected=sizes, elapsed=times, wait=times,
       buffer_s=times, budget=st.floats(min_value=0.0, max_value=1e4), grace=st.floats(min_value=0.0, max_value=10))
def test_properties(received, expected, elapsed, wait, buffer_s, budget, grace):
    policy = GiveUpPolicy(stall_budget_s=budget, grace_s=grace)
    p = progress(received, expected, max(elapsed, wait), wait, buffer_s)
    v = judge_transfer(p, policy)
    if received >= expected or wait < grace:
        assert not v.abandon  # a finished transfer, or one not yet observed, is never given up
    if v.abandon:
        assert v.finish_s > v.allowed_s >= buffer_s + budget
        # more buffer, or more bytes in the same time, never turns a keep into an abandon
    elif received < expected:
        assert not judge_transfer(progress(received, expected, p.elapsed_s, wait, buffer_s + 1.0), policy).abandon
        more = min(received + 1, expected)
        assert not judge_transfer(progress(more, expected, p.elapsed_s, wait, buffer_s), policy).abandon
