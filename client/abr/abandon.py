"""Abandonment: whether an in-flight segment download should be dropped and refetched lower.

`should_abandon` is a pure function of a `DownloadProgress`. It measures the rate the download
is getting (bytes so far over transfer time) and projects the time to finish. If the download
will end before the buffer (less a margin) drains, keep it. Otherwise pick the highest lower rung
whose whole segment, fetched again at that rate (latency included), fits before the buffer
drains; if none fits, fall back to the lowest rung when refetching it is still quicker than
finishing. The player then cancels the request and fetches the same segment at the returned rung.
"""
from __future__ import annotations

from .config import AbrConfig
from .snapshot import Decision, DownloadProgress


def should_abandon(progress: DownloadProgress, cfg: AbrConfig = AbrConfig()) -> Decision | None:
    """A `Decision` naming the rung to refetch, or None to let the download finish."""
    p = progress
    if p.rung <= 0 or p.downloaded_bytes <= 0 or p.downloaded_bytes >= p.size_bytes:
        return None
    if p.elapsed_s < cfg.abandon_grace_s:
        return None
    transfer_s = p.elapsed_s - p.ttfb_s
    if transfer_s <= 0:
        return None
    rate_bps = 8.0 * p.downloaded_bytes / transfer_s
    remaining_s = 8.0 * (p.size_bytes - p.downloaded_bytes) / rate_bps
    budget_s = cfg.abandon_margin * p.buffer_s
    if remaining_s <= budget_s:
        return None

    def refetch_s(rung: int) -> float:
        size: float
        if p.sizes_bytes is not None:
            size = p.sizes_bytes[rung]
        else:
            size = p.size_bytes * p.ladder_bps[rung] / p.ladder_bps[p.rung]
        return p.ttfb_s + 8.0 * size / rate_bps

    for rung in range(p.rung - 1, -1, -1):
        t = refetch_s(rung)
        if t <= budget_s and t < remaining_s:
            return Decision(rung, f"abandon: {remaining_s:.1f}s left > buffer {p.buffer_s:.1f}s, "
                                  f"rung {rung} fits in {t:.1f}s")
    t0 = refetch_s(0)
    if t0 < remaining_s:
        return Decision(0, f"abandon: {remaining_s:.1f}s left > buffer {p.buffer_s:.1f}s, "
                           f"lowest rung takes {t0:.1f}s")
    return None
