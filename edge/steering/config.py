"""SteeringConfig and the steering service's inputs: edges, regions, origins, signing keys.

The steering service knows nothing of TOML files: ``vodstack steering`` reads the topology
(``vodstack.topology``) and builds these values; tests build them directly. Settings are loaded
by ``vodstack.config.load_config(SteeringConfig, section="steering", ...)``: defaults < the
``[steering]`` table of the topology file < ``VODSTACK_STEERING_{FIELD}`` < flags.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Iterable

from serverkit.tls import TlsSettings

#: Event loops the steering service can run on; chosen by bench/steering (see docs/steering.md).
LOOPS = ("asyncio", "uvloop")

#: Device classes accepted when no devices table (``client/devices.toml``) is found.
DEFAULT_DEVICES = ("iphone", "android-phone", "tv-4k", "laptop-chrome", "low-end")
#: Manifest formats ``/play`` hands out: ``master.m3u8`` and ``manifest.mpd``.
MANIFEST_FORMATS = ("hls", "dash")
#: The formats a device class plays, preferred first, when its table does not say (``formats``).
DEFAULT_DEVICE_FORMATS = MappingProxyType({"iphone": ("hls",), "android-phone": ("dash", "hls"),
                                           "tv-4k": ("dash", "hls")})
#: ... and for any other device class.
FALLBACK_FORMATS = ("hls", "dash")


def device_formats(names: Iterable[str]) -> dict[str, tuple[str, ...]]:
    """Each device class with the formats it plays by default."""
    return {n: DEFAULT_DEVICE_FORMATS.get(n, FALLBACK_FORMATS) for n in names}

#: Pathway IDs are edge names, so edge names must be legal Pathway IDs (rfc8216bis §7.1).
PATHWAY_ID = re.compile(r"^[A-Za-z0-9._-]+$")


@dataclass(frozen=True, kw_only=True)
class SteeringConfig(TlsSettings):
    """Settings of the steering service."""

    host: str = "127.0.0.1"
    """Address to listen on."""
    port: int = 8400
    """TCP port to listen on; 0 picks a free one (the actual port is printed)."""
    public_url: str = ""
    """Base URL players use to reach this service; default ``http://{host}:{port}`` (``https://`` with TLS)."""
    admin_key: str = ""
    """Secret expected in the ``X-Admin-Key`` header of admin calls; empty disables them (403)."""
    heartbeat_timeout_s: float = 3.0
    """An edge whose last heartbeat is older than this leaves rotation."""
    steering_ttl_s: int = 5
    """``TTL`` of content-steering manifests: how often players ask again (whole seconds)."""
    token_ttl_s: int = 6 * 3600
    """Lifetime of the playback tokens handed out by ``/play``."""
    max_pathways: int = 8
    """At most this many pathways (edges) in one steered multivariant playlist; later ones are
    reached through ``PATHWAY-CLONES``."""
    overload_fraction: float = 0.9
    """An edge reporting load at or above this fraction of its capacity goes last in its region."""
    title_cache_s: float = 5.0
    """How long a title's ``title.json`` and ``master.m3u8`` fetched from an origin are reused."""
    title_miss_cache_s: float = 1.0
    """How long "no such title" answered by an origin is reused."""
    origin_timeout_s: float = 3.0
    """Bound on one request to an origin."""
    sweep_interval_s: float = 0.5
    """How often rotation changes are looked for, logged and counted (answers never wait for it)."""
    devices: tuple[str, ...] = DEFAULT_DEVICES
    """Device classes accepted by ``/play`` when no devices table is found."""
    devices_file: str = ""
    """A devices table (TOML, one table per device class); default: ``client/devices.toml`` if
    the client package ships one."""
    loop: str = "uvloop"
    """Event loop: ``uvloop`` (default, measured faster for small JSON answers) or ``asyncio``."""
    backlog: int = 2048
    """Listen backlog of the server socket."""

    def __post_init__(self) -> None:
        if self.loop not in LOOPS:
            raise ValueError(f"loop must be one of {', '.join(LOOPS)}, got {self.loop!r}")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be 0..65535, got {self.port}")
        if self.heartbeat_timeout_s <= 0:
            raise ValueError(f"heartbeat_timeout_s must be positive, got {self.heartbeat_timeout_s}")
        if self.steering_ttl_s < 1:
            raise ValueError(f"steering_ttl_s must be at least 1, got {self.steering_ttl_s}")
        if self.token_ttl_s < 1:
            raise ValueError(f"token_ttl_s must be at least 1, got {self.token_ttl_s}")
        if self.max_pathways < 1:
            raise ValueError(f"max_pathways must be at least 1, got {self.max_pathways}")
        if not 0 < self.overload_fraction <= 1:
            raise ValueError(f"overload_fraction must be in (0, 1], got {self.overload_fraction}")
        if self.sweep_interval_s <= 0:
            raise ValueError(f"sweep_interval_s must be positive, got {self.sweep_interval_s}")


@dataclass(frozen=True, kw_only=True)
class EdgeEntry:
    """One edge appliance the service may steer players to."""

    name: str
    """Also its Pathway ID in steered playlists."""
    region: str
    url: str
    """Base URL, e.g. ``http://127.0.0.1:8201`` (no trailing slash)."""
    capacity_mbps: float = 1000.0
    """Egress capacity: the weight of the edge in the rendezvous hash."""

    def __post_init__(self) -> None:
        if not PATHWAY_ID.match(self.name):
            raise ValueError(f"edge name {self.name!r}: only letters, digits, '.', '-' and '_' allowed")
        if self.capacity_mbps <= 0:
            raise ValueError(f"edge {self.name}: capacity_mbps must be positive")
        object.__setattr__(self, "url", self.url.rstrip("/"))


@dataclass(frozen=True, kw_only=True)
class RegionEntry:
    """One region: its origin(s), and which regions to fall back to, best first."""

    name: str
    origin_urls: tuple[str, ...]
    preference: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class SigningKeys:
    """Token keys by key id; ``active`` signs new tokens, the others stay known for rotation."""

    active: str
    secrets: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.active not in self.secrets:
            known = ", ".join(sorted(self.secrets)) or "none"
            raise ValueError(f"active key id {self.active!r} has no secret (known: {known})")


@dataclass(frozen=True, kw_only=True)
class SteeringInputs:
    """Everything the service steers over, as read from a topology."""

    regions: tuple[RegionEntry, ...]
    edges: tuple[EdgeEntry, ...]
    keys: SigningKeys

    def __post_init__(self) -> None:
        names = [r.name for r in self.regions]
        if not names:
            raise ValueError("at least one region is needed")
        if len(set(names)) != len(names):
            raise ValueError("region names must be unique")
        seen: set[str] = set()
        for e in self.edges:
            if e.region not in names:
                raise ValueError(f"edge {e.name}: unknown region {e.region!r} (known: {', '.join(names)})")
            if e.name in seen:
                raise ValueError(f"edge name {e.name!r} used twice")
            seen.add(e.name)
        for r in self.regions:
            for p in r.preference:
                if p not in names:
                    raise ValueError(f"region {r.name}: unknown preferred region {p!r}")
