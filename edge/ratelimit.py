"""Pacing prefill: a token bucket and a daily time window, as pure functions of the clock."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Bucket:
    """Tokens (bytes) available at ``at_s``; may go negative, which is debt to wait out."""

    tokens_bytes: float
    at_s: float


def take(bucket: Bucket, nbytes: int, rate_bytes_per_s: float, burst_bytes: float,
         now_s: float) -> tuple[Bucket, float]:
    """Spend ``nbytes``: the new bucket and how long to sleep before going on (0 if within the burst)."""
    tokens = min(burst_bytes, bucket.tokens_bytes + (now_s - bucket.at_s) * rate_bytes_per_s) - nbytes
    delay_s = 0.0 if tokens >= 0 else -tokens / rate_bytes_per_s
    return Bucket(tokens, now_s), delay_s


def in_window(window: tuple[int, int] | None, minute_of_day: int) -> bool:
    """Is ``minute_of_day`` (0..1439, local) inside ``(start, end)`` minutes? Windows may wrap midnight;
    None is always open; start == end is the whole day."""
    if window is None:
        return True
    start, end = window
    if start == end:
        return True
    if start < end:
        return start <= minute_of_day < end
    return minute_of_day >= start or minute_of_day < end


def minutes_until_open(window: tuple[int, int] | None, minute_of_day: int) -> int:
    """Whole minutes until the window opens (0 if open)."""
    if in_window(window, minute_of_day):
        return 0
    assert window is not None
    return (window[0] - minute_of_day) % 1440
