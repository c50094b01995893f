"""`LoadConfig`: everything one load run needs, in one frozen value (the CLI builds it from flags).

Time units: ``ramp_s``, ``arrival_rate`` (sessions per second), the chaos times and
``time_limit_s`` are *scenario* seconds, the media clock the sessions play on; ``--speed X`` runs
the whole scenario X times faster than real time (viewers' start-up and stall times are still
media seconds). ``stats_interval_s`` and ``scrape_interval_s`` are wall-clock seconds.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from .specs import ChaosEvent, MixEntry, Popularity, Slo

__all__ = ["LoadConfig", "DEFAULT_TIME_LIMIT_S"]

#: Scenario seconds after the last arrival at which a run stops even if sessions still play.
DEFAULT_TIME_LIMIT_S = 6 * 3600.0


@dataclass(frozen=True, kw_only=True)
class LoadConfig:
    steering_url: str | None
    """The steering service the sessions ask ``/play`` of; None: ``titles`` are stream URLs (``--url``),
    played directly, no vodstack stack needed (no edges scraped, no chaos)."""
    titles: tuple[str, ...]
    """The catalogue, most popular first (titles, or HLS/DASH URLs without ``steering_url``)."""
    title_weights: tuple[float, ...] | None = None
    """Explicit weights of ``titles`` (a catalogue file's second column); None: ``popularity``."""
    players: int
    devices: tuple[MixEntry, ...]
    networks: tuple[MixEntry, ...]
    formats: tuple[MixEntry, ...] = (MixEntry("device", 1.0),)
    """Manifest formats asked of ``/play``: ``hls``, ``dash``, ``device`` (the device's first)."""
    regions: tuple[MixEntry, ...] | None = None
    """None: every region the steering service has edges in, evenly."""
    popularity: Popularity = Popularity("zipf", 0.9)
    ramp_s: float = 0.0
    arrival_rate: float | None = None
    """Sessions per scenario second, Poisson; None: ``players`` spread evenly over ``ramp_s``."""
    watch_s: float | None = None
    """Media seconds each session plays (None: the whole title)."""
    speed: float = 1.0
    workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    """Load workers; 0 with ``scheduler``: one per worker of the Dask cluster."""
    behaviour: str | None = None
    """Viewer behaviour profiles (``--behaviour``): a TOML file, ``default`` (the shipped
    ``client/load/behaviour.toml``) or ``play-from-0``; None: every session plays from 0 to the end."""
    scheduler: str | None = None
    """A Dask scheduler (``tcp://HOST:PORT``): the load workers run as tasks on its cluster
    (`dask_workers`); None: local worker processes."""
    chaos: tuple[ChaosEvent, ...] = ()
    control_url: str | None = None
    """The supervisor's control endpoint; None: read ``{data_dir}/run/up.json`` if chaos needs it."""
    data_dir: Path = Path("vodstack-data")
    admin_key: str | None = None
    slos: tuple[Slo, ...] = ()
    seed: int = 0
    abr: str = "default"
    cmcd: str = "query"
    """CMCD on the sessions' media requests: ``query``, ``header`` or ``off`` (``client/cmcd.py``)."""
    cmsd_mb: bool = False
    """Sessions honour the edges' CMSD max suggested bitrate (``mb``)."""
    record_requests: bool = False
    """Workers send each session's media requests back (``--report``: joined with the edges' logs)."""
    edge_logs: tuple[str, ...] = ()
    """Edge access-log files (globs) to join with the sessions by CMCD ``sid`` for the report; empty: the
    running stack's (``{data_dir}/logs/*.access.log``) when there is one."""
    p1203: bool = False
    """Workers send each session's ITU-T P.1203 mode 0 input (``client/p1203.py``) with its result."""
    verify_fraction: float = 0.0
    """The share of sessions that decode what they download (``client/verify.py``; 0: none)."""
    verify_every: int = 1
    """A verifying session checks every Nth segment of each track."""
    time_limit_s: float | None = None
    """Scenario seconds from the start; None: last arrival + DEFAULT_TIME_LIMIT_S."""
    allow_remote: bool = False
    """Allow a steering service (and edges) off loopback."""
    ca_file: str | None = None
    """PEM CA certificates HTTPS servers are verified with (``--ca``); None: the system's store. The
    runner sends the PEM text to its workers, so a worker on another host needs no copy of the file."""
    loop: str = "uvloop"
    """The workers' event loop: ``uvloop`` or ``asyncio``."""
    devices_file: str | None = None
    stats_interval_s: float = 0.5
    scrape_interval_s: float = 1.0
    min_real_timeout_s: float = 1.0
    """Request timeouts are at least this many wall-clock seconds (times the speed on the media clock),
    so that compressing time does not turn a busy machine's scheduling delays into timeouts."""
    worker_log_level: str = "error"
    worker_ready_timeout_s: float = 60.0

    def describe(self) -> dict[str, object]:
        """The config as plain JSON values (for report.json)."""
        return {
            "steering_url": self.steering_url, "titles": list(self.titles), "players": self.players,
            "title_weights": None if self.title_weights is None else list(self.title_weights),
            "devices": {e.name: round(e.weight, 6) for e in self.devices},
            "networks": {e.name: round(e.weight, 6) for e in self.networks},
            "formats": {e.name: round(e.weight, 6) for e in self.formats},
            "regions": None if self.regions is None else {e.name: round(e.weight, 6) for e in self.regions},
            "popularity": f"{self.popularity.kind}:{self.popularity.exponent:g}" if self.popularity.kind == "zipf"
            else self.popularity.kind,
            "ramp_s": self.ramp_s, "arrival_rate": self.arrival_rate, "watch_s": self.watch_s, "speed": self.speed,
            "workers": self.workers, "chaos": [{"at_s": c.at_s, "action": c.action, "target": c.target,
                                                "value_s": c.value_s} for c in self.chaos],
            "slos": [{"metric": s.metric, "limit": s.limit} for s in self.slos], "seed": self.seed, "abr": self.abr,
            "time_limit_s": self.time_limit_s, "loop": self.loop, "scheduler": self.scheduler,
            "behaviour": self.behaviour,
            "verify_fraction": self.verify_fraction, "verify_every": self.verify_every,
        }
