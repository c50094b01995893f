"""ABR algorithms: pure decision objects shared by the live player, the load tester and the simulator.

How to use one (the same steps in the live player and in `vodstack simulate`)::

    from client.abr import AbrConfig, AbrSnapshot, ThroughputSample, create

    abr = create("default", AbrConfig())          # one object per playback session
    # before each segment request:
    decision = abr.decide(AbrSnapshot(
        buffer_s=..., ladder_bps=(300_000, ...), segment_duration_s=4.0,
        segment_index=k, segments_total=n, samples=recent_samples,
        sizes_ahead_bytes=sizes[k:k + 16], last_index=previous_rung,
        max_buffer_s=60.0, startup=not playing, idle_s=idle_since_last_decision))
    rung = decision.index                          # decision.reason is for the log
    # while the segment downloads, every ~100 ms:
    refetch = abr.abandon(DownloadProgress(...))   # None, or Decision(lower rung, reason)

The contract:

* **Snapshots carry everything.** ``decide`` sees nothing but its snapshot: no clock, no I/O.
  Throughput reaches the algorithm only as `ThroughputSample` objects inside
  ``snapshot.samples``: after each download (abandoned ones too, with ``complete=False``) the
  player appends a sample whose ``seq`` is one more than the previous one, and passes at least
  every sample since the previous ``decide`` (the simulator passes the last 16).
* **State is a function of the snapshots.** Stateful algorithms (EWMA estimators, robust-MPC
  errors, BOLA-E's placeholder, DYNAMIC's mode) take each sample exactly once, by ``seq``
  (`estimator.SampleCursor`); so a fresh object fed the same snapshots (and the same
  ``abandon`` calls) in the same order makes the same decisions. A live session that logs its
  snapshots can be replayed through the simulator's objects decision for decision.
* ``idle_s`` is the time spent waiting with a full buffer since the previous decision (BOLA-E
  counts it); ``sizes_ahead_bytes`` may be None when sizes are unknown (nominal sizes are used).
* ``abandon`` may be called any number of times per download; `should_abandon` is the pure
  rule behind the default, usable on its own.

Algorithms (`ALGORITHMS`, by name): ``throughput`` (Sabre's throughput rule on a dual EWMA),
``bba`` (BBA-0), ``bola`` (BOLA-E), ``bola_basic``, ``dynamic`` (Sabre's DYNAMIC), ``mpc``
(robust MPC as in Pensieve), ``horizon`` (robust MPC with a buffer-sized horizon,
abandonment, a value on the buffer the plan leaves and a capped error discount) and
``default`` (an alias of the best on the benchmark, now ``horizon``).
"""
from __future__ import annotations

from collections.abc import Callable

from .abandon import should_abandon
from .base import Abr
from .bba import Bba
from .bola import BolaBasic, BolaE
from .config import AbrConfig
from .dynamic import Dynamic
from .estimator import DualEwmaEstimator, SampleCursor
from .horizon import HorizonMpc
from .mpc import RobustMpc
from .snapshot import AbrSnapshot, Decision, DownloadProgress, ThroughputSample
from .throughput import ThroughputRule

__all__ = [
    "ALGORITHMS", "DEFAULT", "Abr", "AbrConfig", "AbrSnapshot", "Decision", "DownloadProgress",
    "DualEwmaEstimator", "SampleCursor", "ThroughputSample", "UnknownAlgorithm", "create",
    "should_abandon",
]

DEFAULT = "horizon"

#: Algorithm factories by name; ``default`` is the one the player uses unless told otherwise.
ALGORITHMS: dict[str, Callable[[AbrConfig], Abr]] = {
    "throughput": ThroughputRule,
    "bba": Bba,
    "bola": BolaE,
    "bola_basic": BolaBasic,
    "dynamic": Dynamic,
    "mpc": RobustMpc,
    "horizon": HorizonMpc,
    "default": HorizonMpc,
}


class UnknownAlgorithm(KeyError):
    """`create` was given a name that is not in `ALGORITHMS`; the message lists the valid names."""

    def __str__(self) -> str:
        return str(self.args[0])


def create(name: str, cfg: AbrConfig | None = None) -> Abr:
    """A fresh ABR object (one per session) for ``name``."""
    try:
        factory = ALGORITHMS[name]
    except KeyError:
        raise UnknownAlgorithm(f"unknown ABR {name!r}; valid: {', '.join(ALGORITHMS)}") from None
    return factory(cfg if cfg is not None else AbrConfig())
