"""QoE metrics of one playback session: Pensieve's QoE_lin and the usual companions.

QoE_lin for chunk ``k`` (Pensieve, Mao et al. SIGCOMM 2017)::

    bitrate_Mbps[k] - rebuffer_penalty * rebuffer_s[k] - smooth_penalty * |bitrate_Mbps[k] - bitrate_Mbps[k-1]|

with ``rebuffer_penalty = 4.3`` and ``smooth_penalty = 1``. The first chunk has no previous chunk
(no smoothness term) and its download is start-up time, not rebuffering. The session's score is
the mean over chunks (`QoeSummary.qoe_lin`). Other metrics:

* ``avg_bitrate_kbps``: mean nominal bitrate of the chunks played;
* ``rebuffer_s``: stalls after start-up; ``rebuffer_ratio`` = `rebuffer_ratio` (``rebuffer_s``,
  ``content_s``): the share of the watching time spent stalled, in [0, 1], 0 without stalls, and
  well defined however short the content (a near-zero play time with a stall is 1, not a division
  by zero; NaN or negative inputs count as 0);
* ``switches``: rung changes; ``bitrate_change_kbps``: total |bitrate change| over the number of
  chunks (Sabre's "time average bitrate change" in kbps per chunk);
* ``startup_s``: request of the first chunk to its last byte.

Shared by the simulator and the live player (which feeds it the chunks it played).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import math

REBUFFER_PENALTY = 4.3
SMOOTH_PENALTY = 1.0


def rebuffer_ratio(stall_s: float, played_s: float) -> float:
    """Stall time over stall time plus play time, in [0, 1]: 0 when there was no stall time, 1 when
    there was only stall time; a NaN, infinite or negative input counts as 0. The one definition the
    session report, `QoeSummary` and the load tester's summary all use."""
    stall = stall_s if math.isfinite(stall_s) and stall_s > 0 else 0.0
    played = played_s if math.isfinite(played_s) and played_s > 0 else 0.0
    if stall <= 0.0:
        return 0.0
    return min(1.0, stall / (stall + played))


def qoe_lin_per_chunk(bitrates_bps: Sequence[float], rebuffers_s: Sequence[float],
                      rebuffer_penalty: float = REBUFFER_PENALTY,
                      smooth_penalty: float = SMOOTH_PENALTY) -> list[float]:
    """QoE_lin of each chunk (the first chunk's rebuffer should be 0: its wait is start-up)."""
    out: list[float] = []
    prev: float | None = None
    for rate, stall in zip(bitrates_bps, rebuffers_s, strict=True):
        mbps = rate / 1e6
        change = 0.0 if prev is None else abs(mbps - prev)
        out.append(mbps - rebuffer_penalty * stall - smooth_penalty * change)
        prev = mbps
    return out


@dataclass(frozen=True)
class QoeSummary:
    """Per-session metrics (see the module docstring for definitions)."""

    chunks: int
    qoe_lin: float  # mean per chunk
    qoe_lin_total: float
    avg_bitrate_kbps: float
    rebuffer_s: float
    rebuffer_ratio: float
    rebuffer_events: int
    switches: int
    bitrate_change_kbps: float
    startup_s: float
    content_s: float

    def as_dict(self) -> dict[str, float | int]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def summarize(bitrates_bps: Sequence[float], rebuffers_s: Sequence[float], startup_s: float,
              content_s: float, rebuffer_penalty: float = REBUFFER_PENALTY,
              smooth_penalty: float = SMOOTH_PENALTY) -> QoeSummary:
    """Summarise a session from the nominal bitrate and rebuffer seconds of each chunk played."""
    n = len(bitrates_bps)
    if n == 0:
        raise ValueError("no chunks to summarise")
    per_chunk = qoe_lin_per_chunk(bitrates_bps, rebuffers_s, rebuffer_penalty, smooth_penalty)
    stall = float(sum(rebuffers_s))
    changes = [abs(b - a) for a, b in zip(bitrates_bps, bitrates_bps[1:])]
    return QoeSummary(
        chunks=n,
        qoe_lin=sum(per_chunk) / n,
        qoe_lin_total=sum(per_chunk),
        avg_bitrate_kbps=sum(bitrates_bps) / n / 1e3,
        rebuffer_s=stall,
        rebuffer_ratio=rebuffer_ratio(stall, content_s),
        rebuffer_events=sum(1 for r in rebuffers_s if r > 1e-9),
        switches=sum(1 for c in changes if c > 0),
        bitrate_change_kbps=sum(changes) / n / 1e3,
        startup_s=startup_s,
        content_s=content_s,
    )
