"""Prometheus metrics of one steering app, in its own registry (never the process-global one).

    steering_sessions_started_total{region,device}   /play answers with a playlist
    steering_steer_requests_total{region,outcome}    /steer answers: ok | degraded (nothing in rotation)
    steering_edges_in_rotation{region}               edges answers may name now
    steering_edges_out_of_rotation{region}           edges known but not named now
    steering_rotation_changes_total{edge,to}         an edge entering (to="in") or leaving ("out") rotation
    steering_heartbeats_total{outcome}               heartbeats received: ok | refused
    steering_evacuations_total{region}               evacuations ordered
    steering_region_evacuated{region}                1 while a region is evacuated
"""
from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, generate_latest

from .registry import Snapshot


class SteeringMetrics:
    """The counters and gauges the handlers update; ``render(snapshot)`` gives the text format."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self, regions: list[str]) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.sessions_started = Counter("steering_sessions_started", "Playback sessions started.",
                                        ("region", "device"), registry=r)
        self.steer_requests = Counter("steering_steer_requests", "Content-steering manifests served.",
                                      ("region", "outcome"), registry=r)
        self.in_rotation = Gauge("steering_edges_in_rotation", "Edges in rotation.", ("region",), registry=r)
        self.out_of_rotation = Gauge("steering_edges_out_of_rotation", "Edges out of rotation.",
                                     ("region",), registry=r)
        self.rotation_changes = Counter("steering_rotation_changes", "Edges entering or leaving rotation.",
                                        ("edge", "to"), registry=r)
        self.heartbeats = Counter("steering_heartbeats", "Heartbeats received.", ("outcome",), registry=r)
        self.evacuations = Counter("steering_evacuations", "Region evacuations ordered.", ("region",), registry=r)
        self.evacuated = Gauge("steering_region_evacuated", "1 while the region is evacuated.",
                               ("region",), registry=r)
        for region in regions:
            self.in_rotation.labels(region=region).set(0)
            self.out_of_rotation.labels(region=region).set(0)
            self.evacuated.labels(region=region).set(0)
            self.evacuations.labels(region=region)

    def observe(self, snapshot: Snapshot) -> None:
        """Set the gauges from one snapshot."""
        counts: dict[str, list[int]] = {}
        for view in snapshot.edges:
            counts.setdefault(view.region, [0, 0])[0 if view.in_rotation else 1] += 1
        for region, (n_in, n_out) in counts.items():
            self.in_rotation.labels(region=region).set(n_in)
            self.out_of_rotation.labels(region=region).set(n_out)

    def render(self, snapshot: Snapshot) -> bytes:
        self.observe(snapshot)
        return generate_latest(self.registry)
