"""The load tester's session plan (pure): who arrives when, on which device, network, region and title.

``plan_sessions(PlanInputs(...), seed)`` is deterministic: the same inputs and seed give the same
plan, session for session. Times are *scenario seconds* (the media clock of the run: with
``--speed 10`` a 60 s ramp takes 6 s of wall-clock time).

* Arrivals: ``players`` sessions spread evenly over ``ramp_s`` (the first at 0), or, with an
  ``arrival_rate`` (sessions per scenario second), a Poisson process (exponential gaps) from 0.
* Device, network and region: independent weighted draws from their mixes.
* Manifest format (``hls``, ``dash``, or ``device``: whatever the device plays first): a weighted
  draw from its own RNG (seeded from ``seed``), so adding a format mix leaves every other draw of a
  seed's plan as it was. A device that does not play the drawn format (``device_formats``: an
  iPhone plays HLS only) asks for its own first format instead, as such a viewer would.
* Network ``trace:DIR``: one trace file of the folder per session (uniform draw from
  ``trace_files[name]``), played from a random offset so sessions on the same file differ.
* Title: a draw from the catalogue (most popular first) with `specs.Popularity` weights, or the
  catalogue's own weights (``title_weights``).
* Verification (``verify_fraction``): a draw per session from its own RNG, like the format's.
* Viewer behaviour (``behaviours``, a `behaviour.BehaviourMix`): a profile and the script drawn from
  it (start position, watch time, seeks, pauses: `client.script.ViewerScript`), from its own RNG
  too; without a mix every session plays from 0 to the end (``play-from-0``).
* Worker: round robin on arrival order, so every worker ramps up at the same pace.
"""
from __future__ import annotations

import bisect
import itertools
import random
from dataclasses import dataclass, field
from typing import Any

from .behaviour import BehaviourMix, draw_script
from .specs import MixEntry, Popularity

__all__ = ["PlanInputs", "PlannedSession", "plan_sessions", "TRACE_OFFSET_MAX_S"]

#: A trace-driven session starts its trace at a random offset in [0, this) seconds (traces loop).
TRACE_OFFSET_MAX_S = 600.0


@dataclass(frozen=True, kw_only=True)
class PlanInputs:
    players: int
    titles: tuple[str, ...]
    devices: tuple[MixEntry, ...]
    networks: tuple[MixEntry, ...]
    regions: tuple[MixEntry, ...]
    formats: tuple[MixEntry, ...] = (MixEntry("device", 1.0),)
    popularity: Popularity = Popularity("uniform")
    title_weights: tuple[float, ...] | None = None
    """Explicit weights of ``titles`` (replacing ``popularity``)."""
    ramp_s: float = 0.0
    arrival_rate: float | None = None
    """Sessions per scenario second (Poisson arrivals); None: even spread over ``ramp_s``."""
    workers: int = 1
    trace_files: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """For each ``trace:DIR`` network name, the trace files found in DIR."""
    device_formats: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """The formats each device plays, preferred first (a device not named here plays any)."""
    verify_fraction: float = 0.0
    """The share of sessions that verify what they download (a draw per session from its own RNG)."""
    behaviours: BehaviourMix | None = None
    """Viewer behaviour profiles to draw each session's script from (None: all play from 0)."""


@dataclass(frozen=True, slots=True)
class PlannedSession:
    index: int
    session_id: str
    at_s: float          # arrival, scenario seconds from the start of the run
    device: str
    network: str         # a profile name, ``none``, or ``trace:FILE`` (one file, chosen here)
    network_mix: str     # the mix entry it came from (``trace:DIR`` for trace files)
    region: str
    title: str
    worker: int
    trace_offset_s: float = 0.0
    format: str = "device"  # asked of /play: hls, dash, or device (the device's first format)
    verify: bool = False  # decodes what it downloads (``--verify-fraction``)
    behaviour: str = "play-from-0"  # the behaviour profile drawn (``--behaviour``)
    script: dict[str, Any] | None = None  # its `client.script.ViewerScript` (as_dict); None: play from 0

    def as_dict(self) -> dict[str, object]:
        return {"index": self.index, "session_id": self.session_id, "at_s": self.at_s, "device": self.device,
                "network": self.network, "network_mix": self.network_mix, "region": self.region,
                "title": self.title, "worker": self.worker, "trace_offset_s": self.trace_offset_s,
                "format": self.format, "verify": self.verify, "behaviour": self.behaviour, "script": self.script}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PlannedSession:
        """From `as_dict` after a JSON round trip (the job a worker process is handed)."""
        return cls(**d)


def arrival_times(players: int, ramp_s: float, arrival_rate: float | None, rng: random.Random) -> list[float]:
    """``players`` arrival times (scenario seconds, non-decreasing, the first at 0 for a ramp)."""
    if players <= 0:
        return []
    if arrival_rate is not None:
        t, out = 0.0, []
        for _ in range(players):
            out.append(t)
            t += rng.expovariate(arrival_rate)
        return out
    return [ramp_s * i / players for i in range(players)]


class _Draw:
    """Weighted draws over names from one RNG (cumulative weights + bisect)."""

    def __init__(self, names: list[str], weights: list[float]) -> None:
        self.names = names
        self.cum = list(itertools.accumulate(weights))

    def __call__(self, rng: random.Random) -> str:
        x = rng.random() * self.cum[-1]
        return self.names[min(bisect.bisect_right(self.cum, x), len(self.names) - 1)]


def _mix(entries: tuple[MixEntry, ...]) -> _Draw:
    return _Draw([e.name for e in entries], [e.weight for e in entries])


def plan_sessions(inputs: PlanInputs, seed: int = 0) -> tuple[PlannedSession, ...]:
    """The whole run's sessions, in arrival order (see the module docstring)."""
    if not inputs.titles:
        raise ValueError("plan_sessions: no titles")
    rng = random.Random(seed)
    times = arrival_times(inputs.players, inputs.ramp_s, inputs.arrival_rate, rng)
    device, network, region = _mix(inputs.devices), _mix(inputs.networks), _mix(inputs.regions)
    title = _Draw(list(inputs.titles), list(inputs.title_weights) if inputs.title_weights is not None
                  else inputs.popularity.weights(len(inputs.titles)))
    fmt, fmt_rng = _mix(inputs.formats), random.Random(f"formats-{seed}")
    verify_rng = random.Random(f"verify-{seed}")
    behaviour_rng = random.Random(f"behaviour-{seed}")
    workers = max(inputs.workers, 1)
    plan = []
    for i, at_s in enumerate(times):
        net_mix = network(rng)
        net, offset = net_mix, 0.0
        if net_mix.startswith("trace:"):
            files = inputs.trace_files.get(net_mix) or ()
            if not files:
                raise ValueError(f"plan_sessions: no trace files for {net_mix!r}")
            net = "trace:" + files[rng.randrange(len(files))]
            offset = rng.uniform(0.0, TRACE_OFFSET_MAX_S)
        dev, asked = device(rng), fmt(fmt_rng)
        plays = inputs.device_formats.get(dev)
        if plays and asked != "device" and asked not in plays:
            asked = plays[0]
        script = draw_script(inputs.behaviours, behaviour_rng) if inputs.behaviours is not None else None
        drawn = None if script is None or script.plays_from_0 else script.as_dict()
        plan.append(PlannedSession(index=i, session_id=f"load{seed % 10_000:04d}-{i:06d}", at_s=at_s,
                                   device=dev, network=net, network_mix=net_mix, region=region(rng),
                                   title=title(rng), worker=i % workers, trace_offset_s=offset,
                                   format=asked, verify=verify_rng.random() < inputs.verify_fraction,
                                   behaviour=script.name if script is not None else "play-from-0", script=drawn))
    return tuple(plan)
