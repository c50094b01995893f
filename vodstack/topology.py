"""The topology file: regions, each with an origin and edges, one steering service, token keys.

A TOML file (the sample ships as ``vodstack/topologies/sample.toml``)::

    [stack]                      # how `vodstack up` runs it (all keys optional)
    host = "127.0.0.1"
    data_dir = "vodstack-data"   # storage (default), edge caches, run files; relative to the cwd
    storage = ""                 # storage URL of the origins; default {data_dir}/storage
    control_port = 8490          # the supervisor's control endpoint (kill/restart); 0 = any free port
    heartbeat_interval_s = 1.0   # given to every edge (VODSTACK_EDGE_HEARTBEAT_INTERVAL_S)
    ready_timeout_s = 30.0
    edge_args = []               # extra flags for every `vodstack edge`
    tls_cert = ""                # PEM chain: every server serves HTTPS with it (one certificate naming
    tls_key = ""                 #   every host), URLs are https://; its unencrypted key
    tls_ca = ""                  # PEM CA the servers (and `up`) verify each other with; "": system store
    workers = 1                  # worker processes of every origin and edge (0: one per core); 1 (the
                                 #   default here: nine servers on one machine) is one process each;
                                 #   above 1 each runs under its master and `vodstack up --reload` works

    [keys]
    active = "k1"                # signs new tokens; every key is given to every edge (rotation)
    [keys.secrets]
    k1 = "..."

    [steering]                   # SteeringConfig (edge/steering/config.py): port, admin_key, ...
    port = 8400
    host = "10.0.0.2"            # optional, as for every server: the address it binds and is reached at

    [regions.us-east-1]
    preference = ["us-west-2", "eu-west-1"]      # fallback regions, best first
    origin = { name = "origin-us-east-1", port = 8101 }   # storage = "...", host = "..." to override
    [[regions.us-east-1.edges]]
    name = "edge-us-east-1a"
    port = 8201                  # 0 = any free port (chosen by `vodstack up` before starting)
    host = "127.0.0.2"           # optional: its own address (default: the stack's host)
    ram_mb = 64
    disk_mb = 512
    capacity_mbps = 1000         # weight in the steering's rendezvous hash
    peers = ["edge-us-east-1b"]  # edge names; parents likewise
    args = []                    # extra flags for this edge

Across hosts, each host runs its share (``Topology.share``: ``vodstack up --only REGION,steering`` or
``--host ADDRESS``); servers on different hosts may share a port number.

``load_topology`` checks everything and raises ConfigError naming the bad key, e.g.
``regions.us-east-1.edges[0].rammb: unknown key (known: ...)``.
"""
from __future__ import annotations

import dataclasses
import os
import typing
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

from edge.steering.config import PATHWAY_ID, EdgeEntry, RegionEntry, SigningKeys, SteeringConfig, SteeringInputs

from .config import coerce, load_config, read_toml
from .errors import ConfigError

SAMPLE_TOPOLOGY = Path(__file__).with_name("topologies") / "sample.toml"


@dataclass(frozen=True, kw_only=True)
class OriginSpec:
    name: str
    region: str
    host: str
    port: int
    storage: str
    scheme: str = "http"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"


@dataclass(frozen=True, kw_only=True)
class EdgeSpec:
    name: str
    region: str
    host: str
    port: int
    ram_mb: float = 64.0
    disk_mb: float = 512.0
    capacity_mbps: float = 1000.0
    parents: tuple[str, ...] = ()
    peers: tuple[str, ...] = ()
    args: tuple[str, ...] = ()
    scheme: str = "http"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"


@dataclass(frozen=True, kw_only=True)
class RegionSpec:
    name: str
    preference: tuple[str, ...]
    origin: OriginSpec
    edges: tuple[EdgeSpec, ...]


@dataclass(frozen=True, kw_only=True)
class StackSpec:
    host: str = "127.0.0.1"
    data_dir: Path = Path("vodstack-data")
    storage: str = ""
    control_port: int = 8490
    heartbeat_interval_s: float = 1.0
    ready_timeout_s: float = 30.0
    edge_args: tuple[str, ...] = ()
    tls_cert: str = ""
    tls_key: str = ""
    tls_ca: str = ""
    workers: int = 1

    @property
    def worker_args(self) -> list[str]:
        """``--workers N`` for origins and edges, always said (the servers' own default is one per core;
        a lab stack's is one process each)."""
        return ["--workers", str(self.workers)]

    @property
    def scheme(self) -> str:
        """``https`` when the stack serves TLS, else ``http``."""
        return "https" if self.tls_cert else "http"

    def tls_args(self, *, upstream: bool) -> list[str]:
        """The TLS flags of a server of this stack (``--upstream-ca`` too for one with upstreams)."""
        if not self.tls_cert:
            return []
        args = ["--tls-cert", self.tls_cert, "--tls-key", self.tls_key]
        return args + ["--upstream-ca", self.tls_ca] if upstream and self.tls_ca else args


@dataclass(frozen=True, kw_only=True)
class Topology:
    """A whole stack: what `vodstack up` starts and what the steering service steers over."""

    stack: StackSpec
    keys: SigningKeys
    steering: SteeringConfig
    regions: tuple[RegionSpec, ...]
    steering_table: Mapping[str, Any] = field(default_factory=dict)
    """The ``[steering]`` table as written (kept so a resolved copy can be written back)."""

    @property
    def edges(self) -> tuple[EdgeSpec, ...]:
        return tuple(e for r in self.regions for e in r.edges)

    @property
    def origins(self) -> tuple[OriginSpec, ...]:
        return tuple(r.origin for r in self.regions)

    @property
    def steering_url(self) -> str:
        return f"{self.stack.scheme}://{self.steering.host}:{self.steering.port}"

    def edge(self, name: str) -> EdgeSpec:
        for e in self.edges:
            if e.name == name:
                return e
        raise KeyError(name)

    def region(self, name: str) -> RegionSpec:
        for r in self.regions:
            if r.name == name:
                return r
        raise KeyError(name)

    def url_of(self, name: str) -> str:
        """Base URL of any server by name (``steering``, an origin's or an edge's name)."""
        if name == "steering":
            return self.steering_url
        for o in self.origins:
            if o.name == name:
                return o.url
        return self.edge(name).url

    def server_names(self) -> list[str]:
        return [o.name for o in self.origins] + ["steering"] + [e.name for e in self.edges]

    def host_of(self, name: str) -> str:
        """The address a server binds and is reached at."""
        if name == "steering":
            return self.steering.host
        for o in self.origins:
            if o.name == name:
                return o.host
        return self.edge(name).host

    def share(self, *, only: Sequence[str] = (), host: str | None = None) -> frozenset[str]:
        """The servers one ``vodstack up`` starts when the topology spans hosts: those of the regions
        ``only`` names (its origin and edges; ``steering`` for the steering service) and those whose
        host is ``host``. Neither given: all of them. ConfigError for a name that is neither."""
        if not only and host is None:
            return frozenset(self.server_names())
        chosen: set[str] = set()
        regions = {r.name for r in self.regions}
        for name in only:
            if name == "steering":
                chosen.add("steering")
            elif name in regions:
                r = self.region(name)
                chosen |= {r.origin.name, *(e.name for e in r.edges)}
            else:
                raise ConfigError(f"--only: {name!r} is neither a region ({', '.join(sorted(regions))}) nor steering")
        if host is not None:
            on_host = {n for n in self.server_names() if self.host_of(n) == host}
            if not on_host:
                hosts = sorted({self.host_of(n) for n in self.server_names()})
                raise ConfigError(f"--host: no server of the topology is on {host} (hosts: {', '.join(hosts)})")
            chosen |= on_host
        return frozenset(chosen)

    def steering_inputs(self) -> SteeringInputs:
        """What the steering service steers over."""
        return SteeringInputs(
            regions=tuple(RegionEntry(name=r.name, origin_urls=(r.origin.url,), preference=r.preference)
                          for r in self.regions),
            edges=tuple(EdgeEntry(name=e.name, region=e.region, url=e.url, capacity_mbps=e.capacity_mbps)
                        for e in self.edges),
            keys=self.keys)

    def with_ports(self, ports: Mapping[str, int], control_port: int | None = None) -> Topology:
        """A copy with some servers' ports replaced (``ports`` by server name)."""
        regions = []
        for r in self.regions:
            origin = replace(r.origin, port=ports.get(r.origin.name, r.origin.port))
            edges = tuple(replace(e, port=ports.get(e.name, e.port)) for e in r.edges)
            regions.append(replace(r, origin=origin, edges=edges))
        steering = replace(self.steering, port=ports.get("steering", self.steering.port))
        table = dict(self.steering_table, port=steering.port)
        stack = self.stack if control_port is None else replace(self.stack, control_port=control_port)
        return replace(self, regions=tuple(regions), steering=steering, steering_table=table, stack=stack)

    def to_toml(self) -> str:
        """This topology as a TOML file that ``load_topology`` reads back to an equal value."""
        s = self.stack
        doc: dict[str, Any] = {
            "stack": {"host": s.host, "data_dir": str(s.data_dir), "storage": s.storage,
                      "control_port": s.control_port, "heartbeat_interval_s": s.heartbeat_interval_s,
                      "ready_timeout_s": s.ready_timeout_s, "edge_args": list(s.edge_args),
                      "tls_cert": s.tls_cert, "tls_key": s.tls_key, "tls_ca": s.tls_ca, "workers": s.workers},
            "keys": {"active": self.keys.active, "secrets": dict(self.keys.secrets)},
            "steering": dict(self.steering_table),
            "regions": {},
        }
        for r in self.regions:
            doc["regions"][r.name] = {
                "preference": list(r.preference),
                "origin": {"name": r.origin.name, "host": r.origin.host, "port": r.origin.port,
                           "storage": r.origin.storage},
                "edges": [{"name": e.name, "host": e.host, "port": e.port, "ram_mb": e.ram_mb, "disk_mb": e.disk_mb,
                           "capacity_mbps": e.capacity_mbps, "parents": list(e.parents),
                           "peers": list(e.peers), "args": list(e.args)} for e in r.edges]}
        return dumps_toml(doc)


# -- loading ----------------------------------------------------------------------------------

_STACK_KEYS = {f.name for f in dataclasses.fields(StackSpec)}
_ORIGIN_KEYS = {"name", "host", "port", "storage"}
_EDGE_KEYS = {"name", "host", "port", "ram_mb", "disk_mb", "capacity_mbps", "parents", "peers", "args"}
_REGION_KEYS = {"preference", "origin", "edges"}
_TOP_KEYS = {"stack", "keys", "steering", "regions"}


def _table(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: expected a table")
    return value


def _known(table: Mapping[str, Any], known: set[str], where: str) -> None:
    for key in table:
        if key.replace("-", "_") not in known:
            raise ConfigError(f"{where}.{key}: unknown key (known: {', '.join(sorted(known))})")


def _typed(table: Mapping[str, Any], key: str, hint: Any, default: Any, where: str) -> Any:
    if key not in table:
        return default
    return coerce(table[key], hint, f"{where}.{key}")


def _port(value: int, where: str) -> int:
    if not 0 <= value <= 65535:
        raise ConfigError(f"{where}: expected a port 0..65535, got {value}")
    return value


def load_topology(path: str | os.PathLike[str], *, env: Mapping[str, str] | None = None,
                  data_dir: str | os.PathLike[str] | None = None) -> Topology:
    """Read and check a topology file (relative paths in it are relative to the cwd);
    ``data_dir`` overrides ``[stack] data_dir`` (and so the default storage under it)."""
    data = read_toml(path)
    if data_dir is not None:
        stack = data.get("stack")
        data = {**data, "stack": {**(stack if isinstance(stack, dict) else {}), "data_dir": str(data_dir)}}
    return parse_topology(data, path=path, env=os.environ if env is None else env)


def parse_topology(data: Mapping[str, Any], *, path: str | os.PathLike[str] | None = None,
                   env: Mapping[str, str] | None = None) -> Topology:
    _known(data, _TOP_KEYS, "topology")
    stack_t = _table(data.get("stack", {}), "stack")
    _known(stack_t, _STACK_KEYS, "stack")
    stack = StackSpec(
        host=_typed(stack_t, "host", str, "127.0.0.1", "stack"),
        data_dir=Path(_typed(stack_t, "data_dir", str, "vodstack-data", "stack")).absolute(),
        storage=_typed(stack_t, "storage", str, "", "stack"),
        control_port=_port(_typed(stack_t, "control_port", int, 8490, "stack"), "stack.control_port"),
        heartbeat_interval_s=_typed(stack_t, "heartbeat_interval_s", float, 1.0, "stack"),
        ready_timeout_s=_typed(stack_t, "ready_timeout_s", float, 30.0, "stack"),
        edge_args=tuple(_typed(stack_t, "edge_args", list[str], [], "stack")),
        workers=_typed(stack_t, "workers", int, 1, "stack"),
        **{k: _absolute(_typed(stack_t, k, str, "", "stack")) for k in ("tls_cert", "tls_key", "tls_ca")})
    if stack.heartbeat_interval_s <= 0 or stack.ready_timeout_s <= 0:
        raise ConfigError("stack.heartbeat_interval_s and stack.ready_timeout_s must be positive")
    if stack.workers < 0:
        raise ConfigError(f"stack.workers: expected 0 (one per core) or more, got {stack.workers}")
    if bool(stack.tls_cert) != bool(stack.tls_key):
        raise ConfigError("stack.tls_cert and stack.tls_key: give both (HTTPS) or neither (plain HTTP)")
    storage = stack.storage or str(stack.data_dir / "storage")

    keys_t = _table(data.get("keys", {}), "keys")
    _known(keys_t, {"active", "secrets"}, "keys")
    secrets = _typed(keys_t, "secrets", dict[str, str], {}, "keys")
    if not secrets:
        raise ConfigError("keys.secrets: at least one KID = \"SECRET\" is needed")
    for kid, secret in secrets.items():
        if not kid or any(c in kid for c in ' ."\\=') or not secret:
            raise ConfigError(f"keys.secrets.{kid}: key ids are words without dots or spaces, secrets non-empty")
    active = _typed(keys_t, "active", str, sorted(secrets)[0], "keys")
    if active not in secrets:
        raise ConfigError(f"keys.active: {active!r} is not in keys.secrets (known: {', '.join(sorted(secrets))})")
    keys = SigningKeys(active=active, secrets=dict(secrets))

    steering_t = dict(_table(data.get("steering", {}), "steering"))
    steering_t.setdefault("host", stack.host)
    if stack.tls_cert:  # the steering service serves the stack's certificate and trusts its CA
        for key, value in (("tls_cert", stack.tls_cert), ("tls_key", stack.tls_key), ("upstream_ca", stack.tls_ca)):
            steering_t.setdefault(key, value)
    steering = _load_steering(steering_t, env)

    regions_t = _table(data.get("regions", {}), "regions")
    if not regions_t:
        raise ConfigError("regions: at least one region is needed")
    names: dict[str, str] = {"steering": "steering"}
    ports: dict[tuple[str, int], str] = {}  # (host, port): servers on different hosts may share a port

    def claim(name: str, host: str, port: int, where: str) -> None:
        if not PATHWAY_ID.match(name):
            raise ConfigError(f"{where}.name: {name!r}: only letters, digits, '.', '-' and '_' allowed")
        if name in names:
            raise ConfigError(f"{where}.name: {name!r} is used twice")
        names[name] = where
        if port:
            if (host, port) in ports:
                raise ConfigError(f"{where}.port: {port} on {host} is also the port of {ports[(host, port)]}")
            ports[(host, port)] = name

    if steering.port:
        ports[(steering.host, steering.port)] = "steering"
    if stack.control_port:
        if (stack.host, stack.control_port) in ports:
            raise ConfigError(f"stack.control_port: {stack.control_port} is also the port of "
                              f"{ports[(stack.host, stack.control_port)]}")
        ports[(stack.host, stack.control_port)] = "the supervisor's control endpoint"

    regions = []
    for rname, rt in regions_t.items():
        where = f"regions.{rname}"
        if not PATHWAY_ID.match(rname):
            raise ConfigError(f"{where}: region names are letters, digits, '.', '-' and '_'")
        rt = _table(rt, where)
        _known(rt, _REGION_KEYS, where)
        preference = tuple(_typed(rt, "preference", list[str], [], where))
        for p in preference:
            if p not in regions_t or p == rname:
                raise ConfigError(f"{where}.preference: {p!r} is not another region "
                                  f"(known: {', '.join(sorted(regions_t))})")
        if "origin" not in rt:
            raise ConfigError(f"{where}.origin: missing (a table with name and port)")
        ot = _table(rt["origin"], f"{where}.origin")
        _known(ot, _ORIGIN_KEYS, f"{where}.origin")
        origin = OriginSpec(name=_typed(ot, "name", str, f"origin-{rname}", f"{where}.origin"), region=rname,
                            host=_typed(ot, "host", str, stack.host, f"{where}.origin"),
                            port=_port(_typed(ot, "port", int, 0, f"{where}.origin"),
                                                        f"{where}.origin.port"),
                            storage=_typed(ot, "storage", str, "", f"{where}.origin") or storage,
                            scheme=stack.scheme)
        claim(origin.name, origin.host, origin.port, f"{where}.origin")
        edges_t = rt.get("edges", [])
        if not isinstance(edges_t, list) or not edges_t:
            raise ConfigError(f"{where}.edges: expected at least one [[{where}.edges]] table")
        edges = []
        for i, et in enumerate(edges_t):
            ew = f"{where}.edges[{i}]"
            et = _table(et, ew)
            _known(et, _EDGE_KEYS, ew)
            if "name" not in et:
                raise ConfigError(f"{ew}.name: missing")
            edge = EdgeSpec(
                name=_typed(et, "name", str, "", ew), region=rname, host=_typed(et, "host", str, stack.host, ew),
                port=_port(_typed(et, "port", int, 0, ew), f"{ew}.port"),
                ram_mb=_typed(et, "ram_mb", float, 64.0, ew), disk_mb=_typed(et, "disk_mb", float, 512.0, ew),
                capacity_mbps=_typed(et, "capacity_mbps", float, 1000.0, ew),
                parents=tuple(_typed(et, "parents", list[str], [], ew)),
                peers=tuple(_typed(et, "peers", list[str], [], ew)),
                args=tuple(_typed(et, "args", list[str], [], ew)), scheme=stack.scheme)
            for key in ("ram_mb", "disk_mb", "capacity_mbps"):
                if getattr(edge, key) <= 0:
                    raise ConfigError(f"{ew}.{key}: expected a positive number")
            claim(edge.name, edge.host, edge.port, ew)
            edges.append(edge)
        regions.append(RegionSpec(name=rname, preference=preference, origin=origin, edges=tuple(edges)))

    edge_names = {e.name for r in regions for e in r.edges}
    for r in regions:
        for i, e in enumerate(r.edges):
            for key in ("parents", "peers"):
                for other in getattr(e, key):
                    if other not in edge_names or other == e.name:
                        raise ConfigError(f"regions.{r.name}.edges[{i}].{key}: {other!r} is not another edge")
    if steering.heartbeat_timeout_s <= stack.heartbeat_interval_s:
        raise ConfigError(f"steering.heartbeat_timeout_s ({steering.heartbeat_timeout_s}) must be longer than "
                          f"stack.heartbeat_interval_s ({stack.heartbeat_interval_s})")
    return Topology(stack=stack, keys=keys, steering=steering, regions=tuple(regions),
                    steering_table=steering_t)


def _absolute(path: str) -> str:
    """A file path from the topology made absolute (relative to the cwd, as the module says); "" stays."""
    return str(Path(path).absolute()) if path else ""


def _load_steering(table: dict[str, Any], env: Mapping[str, str] | None) -> SteeringConfig:
    """``[steering]`` read like ``load_config`` reads a file table (unknown keys and bad values
    name the key), then ``VODSTACK_STEERING_*`` from ``env`` over it."""
    hints = typing.get_type_hints(SteeringConfig)
    fields = {f.name for f in dataclasses.fields(SteeringConfig)}
    values = {}
    for key, raw in table.items():
        name = key.replace("-", "_")
        if name not in fields:
            raise ConfigError(f"steering.{key}: unknown key (known: {', '.join(sorted(fields))})")
        values[name] = coerce(raw, hints[name], f"steering.{key}")
    try:
        base = SteeringConfig(**values)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"steering: {e}") from None
    if not env:
        return base
    overrides = load_config(SteeringConfig, section="steering", env=env)
    changed = {f: getattr(overrides, f) for f in fields
               if f"VODSTACK_STEERING_{f.upper()}" in env}
    try:
        return dataclasses.replace(base, **changed)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"steering: {e}") from None


# -- writing ----------------------------------------------------------------------------------

def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, (str, Path)):
        text = str(v).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'"{text}"'
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{_key(k)} = {_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(f"cannot write {v!r} as TOML")


def _key(k: str) -> str:
    return k if k and all(c.isalnum() or c in "-_" for c in k) else _value(k)


def dumps_toml(doc: Mapping[str, Any], prefix: str = "") -> str:
    """A small TOML writer for plain data (tables, arrays of tables, scalars, lists)."""
    lines: list[str] = []
    subtables: list[tuple[str, Mapping[str, Any]]] = []
    arrays: list[tuple[str, list[Mapping[str, Any]]]] = []
    for k, v in doc.items():
        name = f"{prefix}.{_key(k)}" if prefix else _key(k)
        if isinstance(v, dict):
            subtables.append((name, v))
        elif isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
            arrays.append((name, v))
        else:
            lines.append(f"{_key(k)} = {_value(v)}")
    out = "\n".join(lines) + ("\n" if lines else "")
    for name, table in subtables:
        out += f"\n[{name}]\n" + dumps_toml(table, name)
    for name, items in arrays:
        for item in items:
            out += f"\n[[{name}]]\n" + dumps_toml(item, name)
    return out
