"""Simulation setups: the conventions a simulated session follows (`SimSetup`, `SETUPS`).

``pensieve`` reproduces Pensieve's test environment (``test/fixed_env.py``): every chunk takes
its trace-driven transfer time plus a fixed 80 ms RTT that does *not* advance the trace; only 95 %
of the link carries payload; after a chunk lands, if the buffer exceeds 60 s the player sleeps
in 500 ms steps until it is back under (the trace advances meanwhile); the first chunk is fetched
at rung 1 without asking the ABR and its download is start-up time; the trace starts at t=0 and
loops. Abandonment is offered to the ABR (`SimSetup.abandonment`): Pensieve's own baselines
(``bba``, ``mpc``) never take it, Sabre's (``throughput``, ``bola``, ``dynamic``) use Sabre's rules.

``sabre`` follows Sabre's ``NetworkModel`` and session loop: per-request latency taken from the
trace (80 ms when the trace has none) during which the link idles, full payload, 25 s buffer,
the player waits before a request exactly until one segment fits, the ABR picks the first rung
too, and abandonment is checked while downloading.

``target`` is issue 6's target conventions as Sabre runs them (60 s buffer, fixed 80 ms latency,
full payload, first segment at the lowest rung; after an abandoned download the ABR decides
again, as in Sabre's loop): see ``setup_target.py``.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal


@dataclass(frozen=True)
class SimSetup:
    name: str
    max_buffer_s: float
    payload_factor: float = 1.0
    latency_s: float | None = None
    """Fixed per-request latency; None: the trace's, or ``default_latency_s`` if it has none."""
    default_latency_s: float = 0.08
    latency_idles_link: bool = True
    """True: latency passes on the trace clock before the transfer (Sabre). False: it is added
    on top of the transfer without moving the trace (Pensieve's RTT)."""
    wait: Literal["after_chunk", "before_request"] = "before_request"
    wait_step_s: float = 0.5
    """Granularity of the 'after_chunk' sleep (Pensieve's DRAIN_BUFFER_SLEEP_TIME)."""
    first_rung: int | None = None
    """Rung of the first segment, chosen without the ABR; None: the ABR decides."""
    abandonment: bool = False
    abandon_check_s: float = 0.1
    """How often an in-flight download is offered to the ABR's ``abandon``."""
    reask_after_abandon: bool = False
    """After an abandoned download: True asks the ABR for a fresh decision (buffer drained by the
    time spent, the partial download among the samples), as Sabre's session loop does; False
    refetches at the rung the abandonment named."""

    cmsd_mb_bps: float | None = None
    """A modelled edge's CMSD max suggested bitrate (``mb``), honoured by the simulated player as
    ``--cmsd-mb`` makes the live one honour it (``client.cmcd.cap_to_max_bitrate``); None: no hint."""
    cmsd_window_s: tuple[float, float] | None = None
    """Session seconds ``[from, to)`` during which the edge sends the hint; None: always."""

    def mb_at(self, clock_s: float) -> float | None:
        """The hint of the edge's last answer, at session time ``clock_s``."""
        if self.cmsd_mb_bps is None:
            return None
        window = self.cmsd_window_s
        return self.cmsd_mb_bps if window is None or window[0] <= clock_s < window[1] else None

    def with_(self, **changes: object) -> SimSetup:
        # the ignore: replace() types each field only where it is named; **object cannot be checked
        return replace(self, **changes)  # type: ignore[arg-type]


PENSIEVE = SimSetup(name="pensieve", max_buffer_s=60.0, payload_factor=0.95, latency_s=0.08,
                    latency_idles_link=False, wait="after_chunk", wait_step_s=0.5, first_rung=1,
                    abandonment=True)
SABRE = SimSetup(name="sabre", max_buffer_s=25.0, payload_factor=1.0, latency_s=None,
                 latency_idles_link=True, wait="before_request", first_rung=None, abandonment=True)

#: Issue 6's target conventions as Sabre's simulator runs them (see ``setup_target.py`` for the
#: trace alignment and ``bench/abr/CONVENTIONS.md`` for the calibration against Sabre).
TARGET = SimSetup(name="target", max_buffer_s=60.0, payload_factor=1.0, latency_s=0.08,
                  latency_idles_link=True, wait="before_request", first_rung=0,
                  abandonment=True, abandon_check_s=0.05, reask_after_abandon=True)

SETUPS: dict[str, SimSetup] = {s.name: s for s in (PENSIEVE, SABRE, TARGET)}
