"""The fill tier's circuit bookkeeping: one breaker per upstream (``breaker.py``, pure), its metrics and log.

:class:`Circuits` holds the breakers' states and applies the pure transitions to them; the fill's attempt
loop (``fill.py``) asks it whether an upstream may be asked and tells it how each attempt ended.
"""
from __future__ import annotations

import logging
from typing import Callable, Sequence

from .breaker import CLOSED, Admit, Breaker, BreakerConfig, Phase, admit, on_abandon, on_failure, on_success, transition
from .metrics import EdgeMetrics
from .upstreams import Upstream

log = logging.getLogger("edge.fill")


class Circuits:
    """The circuit breaker of every upstream, by label."""

    def __init__(self, upstreams: Sequence[Upstream], cfg: BreakerConfig, metrics: EdgeMetrics,
                 clock: Callable[[], float]) -> None:
        self.upstreams = upstreams
        self.cfg = cfg
        self.metrics = metrics
        self.breakers: dict[str, Breaker] = {}
        self._clock = clock

    def state(self, upstream: Upstream) -> Breaker:
        return self.breakers.get(upstream.label, CLOSED)

    def admit(self, upstream: Upstream) -> Admit:
        """May ``upstream`` be asked now (closed, or the one half-open probe)?"""
        after, verdict = admit(self.state(upstream), self.cfg, self._clock())
        self._set(upstream, after)
        return verdict

    def answered(self, upstream: Upstream) -> None:
        """The upstream answered (the object, a 304, a 4xx, a peer's "not here")."""
        self._set(upstream, on_success(self.state(upstream)))

    def failed(self, upstream: Upstream, *, timeout: bool) -> None:
        self._set(upstream, on_failure(self.state(upstream), self.cfg, self._clock(), timeout=timeout))

    def abandoned(self, upstream: Upstream) -> None:
        """An attempt ended without a verdict (cancelled, crashed): a half-open probe slot is freed."""
        self._set(upstream, on_abandon(self.state(upstream)))

    def _set(self, upstream: Upstream, after: Breaker) -> None:
        label = upstream.label
        before = self.breakers.get(label, CLOSED)
        self.breakers[label] = after
        phase = transition(before, after)
        if phase is None:
            return
        self.metrics.breaker_transitions.labels(label, phase.value).inc()
        level = logging.WARNING if phase is Phase.OPEN else logging.INFO
        log.log(level, "circuit %s", phase.value, extra={"kv": {
            "upstream": label, "failures": after.failures,
            "open_s": self.cfg.open_s if phase is Phase.OPEN else None}})

    def phases(self) -> dict[str, str]:
        """Each upstream's circuit phase, by label (health, tests)."""
        return {u.label: self.breakers.get(u.label, CLOSED).phase.value for u in self.upstreams}
