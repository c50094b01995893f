"""The steering service's shared state: ``SteeringState``, built once per app by ``app.build_app``
and handed to every handler through ``request.app[STATE]`` (an aiohttp app key; no module-level
state). Imported by ``app.py``, ``playback.py`` and ``pages.py``; imports none of them.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Callable, Mapping

from aiohttp import web

from serverkit.tls import client_context

from .config import SteeringConfig, SteeringInputs
from .metrics import SteeringMetrics
from .registry import Registry
from .titles import TitleCatalog

log = logging.getLogger("edge.steering.app")  # rotation changes log under the app's name, as before


@dataclass
class SteeringState:
    """Everything the handlers share; one per app."""

    config: SteeringConfig
    inputs: SteeringInputs
    devices: Mapping[str, tuple[str, ...]]  #: device class -> the manifest formats it plays, preferred first
    clock: Callable[[], float] = time.monotonic
    wall_clock: Callable[[], float] = time.time
    public_url: str = ""
    registry: Registry = field(init=False)
    catalog: TitleCatalog = field(init=False)
    metrics: SteeringMetrics = field(init=False)
    preference: dict[str, tuple[str, ...]] = field(init=False)
    keys: dict[str, str] = field(init=False)
    active_key: str = field(init=False)
    _in_rotation: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        cfg = self.config
        self.registry = Registry(self.inputs, heartbeat_timeout_s=cfg.heartbeat_timeout_s)
        self.catalog = TitleCatalog({r.name: r.origin_urls for r in self.inputs.regions}, clock=self.clock,
                                    ttl_s=cfg.title_cache_s, miss_ttl_s=cfg.title_miss_cache_s,
                                    timeout_s=cfg.origin_timeout_s, ssl=client_context(cfg.upstream_ca))
        self.metrics = SteeringMetrics([r.name for r in self.inputs.regions])
        self.preference = {r.name: r.preference for r in self.inputs.regions}
        self.keys = dict(self.inputs.keys.secrets)
        self.active_key = self.inputs.keys.active

    def sweep(self) -> None:
        """Log and count rotation changes since the last sweep; set the gauges."""
        snapshot = self.registry.snapshot(self.clock(), reuse=False)
        now_in = frozenset(v.name for v in snapshot.edges if v.in_rotation)
        for view in snapshot.edges:
            was_in = view.name in self._in_rotation
            if view.in_rotation and not was_in:
                self.metrics.rotation_changes.labels(edge=view.name, to="in").inc()
                log.info("edge in rotation", extra={"kv": {"edge": view.name, "region": view.region}})
            elif was_in and not view.in_rotation:
                self.metrics.rotation_changes.labels(edge=view.name, to="out").inc()
                log.warning("edge out of rotation", extra={"kv": {"edge": view.name, "region": view.region,
                                                                  "reason": view.reason}})
        self._in_rotation = now_in
        self.metrics.observe(snapshot)


STATE = web.AppKey("steering_state", SteeringState)
