"""The steering service: the edges' control plane (registry, playback API, content steering, evacuation).

Pure cores: ``registry`` (in rotation or not), ``ranking`` (pathways for a session),
``content_steering`` (steering manifests), ``multivariant`` (steered playlists). The shell:
``titles`` (origin look-ups), ``playback`` and ``app`` (aiohttp handlers), ``metrics``.
See docs/steering.md.
"""
from .app import build_app, serve
from .config import EdgeEntry, RegionEntry, SigningKeys, SteeringConfig, SteeringInputs

__all__ = ["build_app", "serve", "EdgeEntry", "RegionEntry", "SigningKeys", "SteeringConfig", "SteeringInputs"]
