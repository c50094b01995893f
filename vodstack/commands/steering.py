"""``vodstack steering``: the control plane over a topology's edges (playback API, content steering).

    vodstack steering --topology vodstack/topologies/sample.toml --port 0

Reads the regions, edges, origins and keys of the topology file, and its ``[steering]`` table
(overridden by ``VODSTACK_STEERING_*`` and by the flags). Prints
``steering listening on http://HOST:PORT`` once bound; serves until SIGTERM/SIGINT.
Device classes come from the player's devices table when there is one.
"""
from __future__ import annotations

import argparse
import dataclasses
import tomllib
from pathlib import Path

from edge.steering.app import build_app, run_steering
from edge.steering.config import LOOPS, MANIFEST_FORMATS, device_formats
from serverkit.listen import ListenError

from ..errors import ConfigError, UsageError
from .origin import add_tls_flags, tls_flags
from ..topology import SAMPLE_TOPOLOGY, load_topology


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "steering", help="run the steering service (playback API, content steering, evacuation)",
        description="Steer players across a topology's edges: GET /play/{title}, steered playlists, "
                    "HLS content steering, edge heartbeats, region evacuation.")
    p.add_argument("--topology", metavar="FILE", default=str(SAMPLE_TOPOLOGY),
                   help="topology TOML file (default: the sample shipped with vodstack)")
    p.add_argument("--host", help="address to listen on (default: the topology's)")
    p.add_argument("--port", type=int, help="port to listen on; 0 picks a free one (default: the topology's)")
    p.add_argument("--public-url", help="base URL players use to reach this service")
    p.add_argument("--admin-key", help="X-Admin-Key for evacuate/restore (default: the topology's)")
    p.add_argument("--loop", choices=LOOPS, help="event loop (default uvloop)")
    add_tls_flags(p, upstream="origins (title.json)")
    p.set_defaults(run=run)


def load_device_classes(devices_file: str) -> dict[str, tuple[str, ...]] | None:
    """Device classes and the manifest formats each plays (``formats``, preferred first; the
    defaults of ``edge.steering.config.device_formats`` where a table does not say) from a devices
    table (the player's ``client/devices.toml`` by default)."""
    path: Path | None = Path(devices_file) if devices_file else None
    if path is None:
        try:
            from client.devices import SHIPPED_DEVICES_FILE
        except ImportError:
            return None
        path = Path(SHIPPED_DEVICES_FILE)
        if not path.exists():
            return None
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise ConfigError(f"steering.devices_file: cannot read {path}: {e}") from None
    table = data.get("devices", data)
    out = {}
    for name, entry in table.items():
        if not isinstance(entry, dict):
            continue
        formats = entry.get("formats", device_formats([name])[name])
        if (not isinstance(formats, list | tuple) or not formats
                or any(f not in MANIFEST_FORMATS for f in formats)):
            raise ConfigError(f"steering.devices_file: {path}: {name}.formats must list some of "
                              f"{', '.join(MANIFEST_FORMATS)}, got {formats!r}")
        out[name] = tuple(formats)
    return out or None


def run(args: argparse.Namespace) -> int:
    topology = load_topology(args.topology)
    flags = {"host": args.host, "port": args.port, "public_url": args.public_url,
             "admin_key": args.admin_key, "loop": args.loop, **tls_flags(args)}
    try:
        cfg = dataclasses.replace(topology.steering, **{k: v for k, v in flags.items() if v is not None})
    except ValueError as e:
        raise ConfigError(f"steering: {e}") from None
    devices = load_device_classes(cfg.devices_file) or device_formats(cfg.devices)
    app = build_app(cfg, topology.steering_inputs(), devices=devices)
    try:
        run_steering(app)
    except ListenError as e:
        raise UsageError(str(e)) from None
    return 0
