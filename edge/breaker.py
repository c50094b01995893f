"""A circuit breaker per upstream, as a pure state machine: ``closed -> open -> half-open``.

After ``failures_to_open`` failures in a row (a timeout, a refused connection, a 5xx, a broken
body) an upstream's circuit opens: fills skip it (the next upstream is asked, or the request goes
straight to a stale copy or a 502/504) without waiting on it. After ``open_s`` the circuit is
half-open: exactly one request is let through as a probe while the others still skip; the probe's
success closes the circuit, its failure opens it again for another ``open_s``. (ATS marks a parent
down after ``fail_threshold`` failures and retries it after ``retry_time``; Envoy's outlier
detection ejects a host after consecutive 5xx for ``base_ejection_time``: the same idea.)

Everything that affects the state lives here, with the clock passed in; the fill shell
(``fill.py``) calls :func:`admit` before an attempt and :func:`on_success` / :func:`on_failure` /
:func:`on_abandon` after it, and logs and counts the :func:`transition` it gets back.

    phase      admit(now)                         on_success   on_failure(now)        on_abandon
    CLOSED     TRY                                CLOSED       CLOSED, or OPEN when    CLOSED
                                                               failures reach the bound
    OPEN       SKIP; PROBE once open_s has        CLOSED       OPEN (from now)         OPEN
               passed (-> HALF_OPEN, probing)
    HALF_OPEN  PROBE if no probe is out (->       CLOSED       OPEN (from now)         HALF_OPEN,
               probing), else SKIP                                                     no probe out
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, replace


class Phase(enum.Enum):
    CLOSED = "closed"        # requests go through
    OPEN = "open"            # requests skip this upstream
    HALF_OPEN = "half_open"  # one probe goes through, the others skip


class Admit(enum.Enum):
    TRY = "try"      # closed: go ahead
    PROBE = "probe"  # half-open: this request is the one probe
    SKIP = "skip"    # open (or a probe is already out): do not ask this upstream


@dataclass(frozen=True, kw_only=True)
class BreakerConfig:
    failures_to_open: int = 1
    """Failures in a row that open the circuit."""
    open_s: float = 5.0
    """How long an open circuit skips its upstream before letting one probe through."""


@dataclass(frozen=True, kw_only=True)
class Breaker:
    """One upstream's circuit."""

    phase: Phase = Phase.CLOSED
    failures: int = 0
    """Failures in a row (reset by a success)."""
    opened_at_s: float = 0.0
    probing: bool = False
    """Half-open: the probe is out."""
    last_failure_timeout: bool = False
    """Whether the failure that opened it was a timeout (a request skipped everywhere is then a 504, else 502)."""


CLOSED = Breaker()


def admit(b: Breaker, cfg: BreakerConfig, now_s: float) -> tuple[Breaker, Admit]:
    """May a request ask this upstream now? The new state (a probe takes the half-open slot)."""
    if b.phase is Phase.CLOSED:
        return b, Admit.TRY
    if b.phase is Phase.OPEN:
        if now_s - b.opened_at_s < cfg.open_s:
            return b, Admit.SKIP
        return replace(b, phase=Phase.HALF_OPEN, probing=True), Admit.PROBE
    if b.probing:
        return b, Admit.SKIP
    return replace(b, probing=True), Admit.PROBE


def on_success(b: Breaker) -> Breaker:
    """The upstream answered (any answer that is not a failure: 2xx, 304, a 4xx, a peer's 404)."""
    return CLOSED


def on_failure(b: Breaker, cfg: BreakerConfig, now_s: float, *, timeout: bool) -> Breaker:
    """The upstream timed out, refused, answered 5xx or broke a body."""
    if b.phase is Phase.CLOSED:
        failures = b.failures + 1
        if failures < cfg.failures_to_open:
            return replace(b, failures=failures, last_failure_timeout=timeout)
    return Breaker(phase=Phase.OPEN, failures=b.failures + 1, opened_at_s=now_s, last_failure_timeout=timeout)


def on_abandon(b: Breaker) -> Breaker:
    """An admitted request ended without a verdict (cancelled at shutdown): its probe slot is free again."""
    return replace(b, probing=False) if b.probing else b


def transition(before: Breaker, after: Breaker) -> Phase | None:
    """The phase entered, if it changed (for the log line and the transitions counter)."""
    return after.phase if after.phase is not before.phase else None
