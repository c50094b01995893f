"""The edge's upstreams (peers, parents, origin) and the pure "which upstream next" decision."""
from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Sequence


class UpstreamKind(enum.Enum):
    PEER = "peer"      # same-region edge, asked cache-only: a 404 means "not here", go on
    PARENT = "parent"  # edge one tier up: fills from its own upstreams; 404 is authoritative
    ORIGIN = "origin"  # the origin server: ``/{title}/{path}``; 404 is authoritative


@dataclass(frozen=True)
class Upstream:
    kind: UpstreamKind
    base_url: str

    @property
    def is_edge(self) -> bool:
        return self.kind is not UpstreamKind.ORIGIN

    @property
    def label(self) -> str:
        """Metrics/log label: ``kind:url``."""
        return f"{self.kind.value}:{self.base_url}"


def build_upstreams(peers: Sequence[str], parents: Sequence[str], origin: str) -> tuple[Upstream, ...]:
    """The configured order: peers, then parents, then the origin (without trailing slashes)."""
    return (tuple(Upstream(UpstreamKind.PEER, u.rstrip("/")) for u in peers)
            + tuple(Upstream(UpstreamKind.PARENT, u.rstrip("/")) for u in parents)
            + (Upstream(UpstreamKind.ORIGIN, origin.rstrip("/")),))


def upstream_order(upstreams: Sequence[Upstream], include_peers: bool = True) -> list[Upstream]:
    """Upstreams to ask, in the configured order; ``include_peers=False`` (prefill) leaves peers out.
    Which of them may be asked *now* is each one's circuit breaker's call (``breaker.admit``): one
    whose circuit is open is skipped, not waited on."""
    return [u for u in upstreams if include_peers or u.kind is not UpstreamKind.PEER]
