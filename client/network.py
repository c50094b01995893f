"""Network shaping inside the client: a media clock, bandwidth schedules, and a paced link.

* `Clock` is the session's media clock: virtual seconds that run ``speed`` times faster than
  real time (``--speed 10`` plays a minute in six seconds). The shaper, the buffer model, every
  timeout and the steering TTL all read and sleep on the same clock, so compressing time changes
  nothing but the wall-clock duration.
* `BandwidthSchedule` is a piecewise-constant rate (bits/s) and latency (s) over virtual time,
  looped when it runs out. It comes from a named `NetworkProfile` (``3g``, ``4g``, ``wifi``,
  ``cable``, ``fiber``) or a trace file (Pensieve ``time_s<TAB>Mbps`` or Sabre JSON, read by
  ``client.traces``), and answers "when does a transfer of N bytes that starts at t end?" with
  the same trace-integration core as the simulator (`traceclock.LoopedRate`).
* `ShapedLink` applies a schedule to the bytes a session reads: one link per session, shared
  by its concurrent downloads (video, audio, subtitles), so they split the bandwidth. It is a
  pacer: after each chunk is read from the socket the link's "busy until" time advances by the
  chunk's transmission time and the reader sleeps until then (only when the debt is worth a
  sleep, so small chunks cost no timer). Each request first waits one round trip
  (``latency_at(now)``). TCP flow control does the rest: a paced reader stops draining its
  socket, and a loopback server is held to the shaped rate.
* `UnshapedLink` is the same interface that never waits (``--network none``).
"""
from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol

from .errors import ProfileError
from .traceclock import LoopedRate

__all__ = ["Clock", "NetworkProfile", "PROFILES", "BandwidthSchedule", "Link", "ShapedLink", "UnshapedLink",
           "make_link", "parse_network"]


class Clock:
    """Media-clock seconds since the clock was made, running ``speed`` times faster than real time."""

    __slots__ = ("speed", "min_timeout_real_s", "_t0", "_real")

    def __init__(self, speed: float = 1.0, real: Callable[[], float] = time.monotonic,
                 min_timeout_real_s: float = 0.5) -> None:
        if not (speed > 0 and math.isfinite(speed)):
            raise ProfileError(f"speed must be a positive number, got {speed!r}")
        self.speed = float(speed)
        self.min_timeout_real_s = min_timeout_real_s
        self._real = real
        self._t0 = real()

    def now_s(self) -> float:
        return (self._real() - self._t0) * self.speed

    def real_s(self, media_s: float) -> float:
        """Real seconds that ``media_s`` media seconds take."""
        return max(media_s, 0.0) / self.speed

    async def sleep(self, media_s: float) -> None:
        await asyncio.sleep(self.real_s(media_s))

    async def sleep_until(self, t_s: float) -> None:
        await asyncio.sleep(self.real_s(t_s - self.now_s()))

    def timeout(self, media_s: float) -> asyncio.Timeout:
        """``async with clock.timeout(s):`` a media-time timeout, never shorter than
        ``min_timeout_real_s`` of real time (so a compressed clock on a busy machine does not
        turn CPU delays into failures)."""
        return asyncio.timeout(max(self.real_s(media_s), self.min_timeout_real_s))


@dataclass(frozen=True)
class NetworkProfile:
    """A named access network: downlink rate and round-trip time."""

    name: str
    down_kbps: float
    rtt_ms: float
    description: str = ""


#: Constant-rate profiles. 3G is HSDPA-like (Riiser et al.'s commute traces have a median of
#: ~1.2 Mbps); use ``trace:FILE`` for the real variability.
PROFILES: dict[str, NetworkProfile] = {p.name: p for p in (
    NetworkProfile("3g", 1_000, 150, "HSDPA-like 3G: 1 Mbps, 150 ms RTT"),
    NetworkProfile("4g", 12_000, 60, "LTE: 12 Mbps, 60 ms RTT"),
    NetworkProfile("wifi", 30_000, 20, "home Wi-Fi: 30 Mbps, 20 ms RTT"),
    NetworkProfile("cable", 50_000, 15, "DOCSIS cable: 50 Mbps, 15 ms RTT"),
    NetworkProfile("fiber", 300_000, 5, "FTTH: 300 Mbps, 5 ms RTT"),
)}


class BandwidthSchedule:
    """Piecewise-constant rate and latency over media time, looped; transfers integrate over it
    with the client's one trace-integration core (`traceclock.LoopedRate`, as the simulator does)."""

    __slots__ = ("name", "_rate", "_latencies")

    def __init__(self, durations_s: tuple[float, ...], rates_bps: tuple[float, ...],
                 latencies_s: tuple[float, ...], name: str = "") -> None:
        if not durations_s or not (len(durations_s) == len(rates_bps) == len(latencies_s)):
            raise ProfileError(f"schedule {name}: periods, rates and latencies must be equally long, non-empty")
        if any(d <= 0 or not math.isfinite(d) for d in durations_s):
            raise ProfileError(f"schedule {name}: period durations must be positive")
        if any(r < 0 or not math.isfinite(r) for r in rates_bps) or any(x < 0 for x in latencies_s):
            raise ProfileError(f"schedule {name}: rates and latencies must be >= 0")
        if not any(r > 0 for r in rates_bps):
            raise ProfileError(f"schedule {name}: carries no data (every rate is 0)")
        self.name = name
        self._rate = LoopedRate(tuple(float(d) for d in durations_s), tuple(float(r) / 8.0 for r in rates_bps))
        self._latencies = tuple(float(x) for x in latencies_s)

    @classmethod
    def constant(cls, rate_bps: float, latency_s: float, name: str = "constant") -> BandwidthSchedule:
        return cls((3600.0,), (rate_bps,), (latency_s,), name=name)

    @classmethod
    def from_profile(cls, profile: NetworkProfile) -> BandwidthSchedule:
        return cls.constant(profile.down_kbps * 1000.0, profile.rtt_ms / 1000.0, name=profile.name)

    @classmethod
    def from_trace_file(cls, path: str | Path, default_latency_s: float = 0.08) -> BandwidthSchedule:
        """A Pensieve or Sabre trace (``client.traces.load_trace``); Pensieve traces carry no
        latency, so ``default_latency_s`` (Pensieve's 80 ms) is used."""
        from .traces import TraceError, load_trace

        try:
            trace = load_trace(path)
        except TraceError as e:
            raise ProfileError(str(e)) from None
        latencies = trace.latencies_s or (default_latency_s,) * len(trace.durations_s)
        return cls(trace.durations_s, trace.bandwidths_bps, latencies, name=f"trace:{Path(path).name}")

    @property
    def mean_rate_bps(self) -> float:
        return 8.0 * self._rate.loop_bytes / self._rate.period_s

    def rate_at(self, t_s: float) -> float:
        return 8.0 * self._rate.rates_Bps[self._rate.index_at(t_s)]

    def latency_at(self, t_s: float) -> float:
        return self._latencies[self._rate.index_at(t_s)]

    def transmit_end(self, start_s: float, nbytes: float) -> float:
        """Media time at which ``nbytes`` starting at ``start_s`` have crossed the link."""
        return self._rate.transfer_end(start_s, nbytes)


class Link(Protocol):
    """What the fetcher needs from a network: a round trip before each request, pacing per chunk."""

    clock: Clock

    async def round_trip(self) -> None: ...

    async def consume(self, nbytes: int, continuing: bool = False) -> None: ...

    def chunk_bytes(self) -> int: ...


class UnshapedLink:
    """No shaping: requests go as fast as the machine does."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock

    async def round_trip(self) -> None:
        return None

    async def consume(self, nbytes: int, continuing: bool = False) -> None:
        return None

    def chunk_bytes(self) -> int:
        return 256 * 1024


class ShapedLink:
    """A session's access link: one round trip per request, bytes paced to the schedule.

    Pacing keeps a "link busy until" time. A chunk that starts a response is sent no earlier than
    now; a chunk that continues one may start up to ``max_credit_real_s`` in the past: while the
    reader was late (a sleep that overshot, a busy event loop, the process descheduled), a real
    link would have kept filling the socket buffer, so that time is not lost.
    """

    __slots__ = ("clock", "schedule", "offset_s", "_busy_until_s", "_min_sleep_s", "_credit_s", "bytes_total")

    def __init__(self, schedule: BandwidthSchedule, clock: Clock, *, offset_s: float = 0.0,
                 min_sleep_real_s: float = 0.002, max_credit_real_s: float = 0.25) -> None:
        self.clock = clock
        self.schedule = schedule
        self.offset_s = offset_s
        self._busy_until_s = 0.0
        self._min_sleep_s = min_sleep_real_s * clock.speed
        self._credit_s = max_credit_real_s * clock.speed
        self.bytes_total = 0

    def _t(self, now_s: float) -> float:
        return now_s - self.offset_s

    async def round_trip(self) -> None:
        await self.clock.sleep(self.schedule.latency_at(self._t(self.clock.now_s())))

    async def consume(self, nbytes: int, continuing: bool = False) -> None:
        now = self.clock.now_s()
        start = max(self._busy_until_s, now - self._credit_s if continuing else now)
        self._busy_until_s = busy = self.schedule.transmit_end(self._t(start), nbytes) + self.offset_s
        self.bytes_total += nbytes
        debt = busy - now
        if debt > self._min_sleep_s:
            await self.clock.sleep(debt)

    def chunk_bytes(self) -> int:
        """Read size: about 20 ms (real time) of the current rate, between 4 KiB and 256 KiB."""
        rate = self.schedule.rate_at(self._t(self.clock.now_s()))
        return int(min(max(rate * 0.02 * self.clock.speed / 8.0, 4096), 256 * 1024))


def parse_network(spec: str) -> BandwidthSchedule | None:
    """``3g|4g|wifi|cable|fiber|none|trace:FILE`` -> a schedule (None for ``none``)."""
    spec = spec.strip()
    if spec == "none":
        return None
    if spec.startswith("trace:"):
        path = spec[len("trace:"):]
        if not path:
            raise ProfileError("--network trace:FILE needs a file")
        return BandwidthSchedule.from_trace_file(path)
    profile = PROFILES.get(spec.lower())
    if profile is None:
        raise ProfileError(f"unknown network {spec!r} (known: {', '.join(PROFILES)}, none, trace:FILE)")
    return BandwidthSchedule.from_profile(profile)


def make_link(schedule: BandwidthSchedule | None, clock: Clock, offset_s: float = 0.0) -> Link:
    """A `ShapedLink` over ``schedule``, or an `UnshapedLink` when it is None."""
    return UnshapedLink(clock) if schedule is None else ShapedLink(schedule, clock, offset_s=offset_s)
