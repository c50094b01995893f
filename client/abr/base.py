"""The `Abr` protocol every algorithm implements, and small helpers shared by the rules."""
from __future__ import annotations

from typing import Protocol, runtime_checkable

from .snapshot import AbrSnapshot, Decision, DownloadProgress


@runtime_checkable
class Abr(Protocol):
    """An ABR algorithm: one object per playback session.

    ``decide`` is called once before each segment request with a fresh snapshot; an algorithm may
    keep state between calls, but that state must be a function of the snapshots it has been given
    (samples are taken once each by ``seq``): the same object fed the same snapshots in the same
    order makes the same decisions. ``abandon`` is asked while a download is in flight.
    """

    name: str

    def decide(self, snapshot: AbrSnapshot) -> Decision: ...

    def abandon(self, progress: DownloadProgress) -> Decision | None: ...



def quality_from_throughput(ladder_bps: tuple[int, ...], segment_duration_s: float,
                            throughput_bps: float, latency_s: float) -> int:
    """Sabre's rule: highest rung whose segment arrives within one segment duration
    (``latency + duration * bitrate / throughput <= duration``)."""
    if throughput_bps <= 0:
        return 0
    index = 0
    for i in range(1, len(ladder_bps)):
        if latency_s + segment_duration_s * ladder_bps[i] / throughput_bps <= segment_duration_s:
            index = i
        else:
            break
    return index
