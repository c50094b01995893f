"""When to give up on a media transfer whose bytes trickle in: a pure decision over its progress.

A server can answer at once and then send a segment one byte at a time: no TTFB timeout fires, no
stall timeout fires (a byte keeps arriving), and the per-request deadline only ends it after
tens of seconds, once per pathway and retry round. `judge_transfer` is the rule that ends such a
transfer early, so that the session can fail over to the next pathway:

    rate        = received_bytes / body_wait_s          (the server's rate: time the reader spent
                                                          waiting for body bytes, the client's own
                                                          network shaping left out)
    finish_s    = (elapsed_s - link_s) + (expected - received) / rate
                                                         (the transfer's time as the server makes
                                                          it: the reader's own round trip and
                                                          pacing, ``link_s``, left out)
    allowed_s   = max(buffer_s + stall_budget_s, min_budget_s)
    abandon     when body_wait_s >= grace_s and finish_s > allowed_s

``buffer_s`` is the media buffered when the request was sent, so ``buffer_s + stall_budget_s`` is
"the buffer runs dry, then the viewer waits at most ``stall_budget_s``"; at start-up the buffer
is empty and the whole budget is the start-up wait. Rate and finish leave out the time the
reader spent in its own `network.ShapedLink` (the viewer's access network, the same on every
pathway: failing over would not help), so a slow 3G profile never trips it; a server that
trickles does.
``min_budget_s`` is the shell's floor (a compressed media clock on a busy machine must not turn
scheduling delays into failovers). An unknown size (no Content-Length and no hint) is never
judged: the stall timeout and the deadline still bound it.

Defaults, next to what web players do (docs/player.md, *Giving up on a slow server*): hls.js's
``fragLoadPolicy`` gives a fragment 10 s to its first byte and 120 s in all, and its ABR abandons
a fragment whose projected end comes after the buffer runs dry (after 0.5 s of loading) by
switching down; Shaka's ``retryParameters`` end a request after 30 s in all, or after 5 s without
a byte (``stallTimeout``). Here a transfer may cost the viewer at most ``stall_budget_s = 10`` s
of waiting beyond its buffer (hls.js's first-byte limit: the longest it lets a viewer wait on one
request), judged after ``grace_s = 1`` s of waiting on the server (twice hls.js's 0.5 s: a rate
over less is mostly noise).
"""
from __future__ import annotations

import enum
import math
from dataclasses import dataclass

__all__ = ["GiveUpPolicy", "TransferProgress", "TransferAction", "Verdict", "KEEP_GOING", "judge_transfer"]


@dataclass(frozen=True, kw_only=True)
class GiveUpPolicy:
    """How long a trickling transfer may go on; times are media-clock seconds."""

    stall_budget_s: float = 10.0
    """The longest wait beyond the buffered media a transfer may cause (at start-up: the whole
    wait); ``inf`` never gives up."""
    grace_s: float = 1.0
    """Time spent waiting on the server's body bytes before its rate is judged."""


@dataclass(frozen=True, kw_only=True)
class TransferProgress:
    """One transfer as its reader sees it; times are media-clock seconds from the request."""

    received_bytes: int
    expected_bytes: int | None
    """Content-Length (or the caller's hint); None: unknown, never judged."""
    elapsed_s: float
    """Request sent to now, first byte included."""
    body_wait_s: float
    """Time spent waiting for body bytes from the server (not the reader's own pacing)."""
    link_s: float = 0.0
    """Time spent in the reader's own shaped link (round trip, pacing): the viewer's network."""
    buffer_s: float
    """Media buffered when the request was sent (0 at start-up or in a stall)."""
    min_budget_s: float = 0.0
    """A floor for the allowed time (the shell's real-time floor on a compressed clock)."""


class TransferAction(enum.Enum):
    KEEP = "keep"
    ABANDON = "abandon"


@dataclass(frozen=True)
class Verdict:
    """``KEEP`` (``reason`` says why, e.g. ``"size unknown"``) or ``ABANDON`` with the figures."""

    action: TransferAction
    reason: str
    rate_bps: float | None = None
    finish_s: float | None = None
    allowed_s: float | None = None

    @property
    def abandon(self) -> bool:
        return self.action is TransferAction.ABANDON


KEEP_GOING = Verdict(TransferAction.KEEP, "on time")


def judge_transfer(p: TransferProgress, policy: GiveUpPolicy = GiveUpPolicy()) -> Verdict:
    """Keep the transfer going, or abandon it (see the module docstring for the rule)."""
    expected = p.expected_bytes
    if expected is None or expected <= 0:
        return Verdict(TransferAction.KEEP, "size unknown")
    received = max(p.received_bytes, 0)
    if received >= expected:
        return Verdict(TransferAction.KEEP, "complete")
    if not math.isfinite(policy.stall_budget_s):
        return Verdict(TransferAction.KEEP, "no stall budget")
    wait_s = max(p.body_wait_s, 0.0)
    if wait_s < policy.grace_s or wait_s <= 0:  # no wait at all: the server is as fast as the reader
        return Verdict(TransferAction.KEEP, "too early to judge")
    rate_Bps = received / wait_s
    left_s = math.inf if rate_Bps <= 0 else (expected - received) / rate_Bps
    finish_s = max(p.elapsed_s - max(p.link_s, 0.0), 0.0) + left_s
    buffer_s = max(p.buffer_s, 0.0)
    allowed_s = max(buffer_s + policy.stall_budget_s, p.min_budget_s)
    if finish_s <= allowed_s:
        return Verdict(TransferAction.KEEP, "on time", 8 * rate_Bps, finish_s, allowed_s)
    budget = (f"start-up budget {policy.stall_budget_s:g} s" if buffer_s <= 0
              else f"buffer {buffer_s:.1f} s + stall budget {policy.stall_budget_s:g} s")
    more = "forever" if math.isinf(left_s) else f"{left_s:,.0f} s more"
    reason = (f"too slow: {received:,} of {expected:,} bytes in {p.elapsed_s:.1f} s "
              f"({8 * rate_Bps / 1000:,.2f} kb/s from the server), the rest needs {more}, "
              f"past the {allowed_s:.1f} s allowed ({budget})")
    return Verdict(TransferAction.ABANDON, reason, 8 * rate_Bps, finish_s, allowed_s)
