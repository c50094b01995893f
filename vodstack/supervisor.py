"""The supervisor behind ``vodstack up``: one OS process per server of a topology.

    async with Stack(topology) as stack:        # origins, then steering, then edges; each ready
        stack.url_of("steering")
        await stack.kill("edge-us-east-1a")     # SIGKILL its process group (chaos)
        await stack.restart("edge-us-east-1a")  # start it again on the same port, wait until ready
        await stack.set_origin_delay(500)       # every origin waits 500 ms before each object (chaos)
    # leaving the block stops everything: SIGTERM to each process group, SIGKILL after a grace

Decisions written down here:

* Every server is ``python -m vodstack ... SERVER`` in its own session (its own process group),
  so a kill reaches whatever it started and a Ctrl-C in the terminal reaches only the
  supervisor, which then stops the children in order (edges, steering, origins). Children also
  get ``PR_SET_PDEATHSIG`` (Linux): if the supervisor itself is killed, they get SIGTERM too.
* Ready means: the process printed ``listening on http://...`` and then answered ``/_/health``
  (within ``stack.ready_timeout_s``); the stack is ready when, on top, the steering service has
  every edge in rotation (their heartbeats arrived). A process that exits before is an error
  naming it, with the last lines it wrote.
* Every line a child writes goes to ``sink`` prefixed with its name. Nothing is restarted
  silently: an unexpected exit is reported (``... exited with code N; not restarted``) and
  only ``restart`` starts a process again.
* Ports given as 0 are chosen before anything starts (edges must know each other's URLs); the
  resolved topology is written to ``{data_dir}/run/topology.toml`` for the steering service.
* Every origin gets an admin key (``--admin-key``): the topology's steering admin key, or a
  random one for this run when the topology has none, so that only the supervisor (and whoever
  holds the topology's key) can set an origin's injected delay (``POST /_/delay``).
* ``control=True`` serves ``GET /_/control/status``, ``POST /_/control/kill/{name}``,
  ``POST /_/control/restart/{name}`` and ``POST /_/control/origin-delay?ms=N[&name=ORIGIN]`` on
  ``stack.control_port`` (admin key header when the topology has one), and writes
  ``{data_dir}/run/up.json`` so that a second ``vodstack up --kill EDGE`` finds the running stack.
"""
from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import os
import secrets
import signal
import socket
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import aiohttp
from aiohttp import web

from errorbase import VodstackError
from origin.server.faults import MAX_DELAY_MS
from serverkit.tls import client_context
from serverkit.workers import RELOADED, die_with_parent

from .topology import Topology

log = logging.getLogger(__name__)

LISTENING = "listening on "
STOP_GRACE_S = 10.0
Sink = Callable[[str, str], None]


class StackError(VodstackError):
    """A server could not be started or reached; the message names it (the CLI prints one line)."""


def access_log_path(data_dir: Path, edge: str) -> Path:
    """Where `vodstack up` has edge ``edge`` append its access log (what ``vodstack load --report`` joins)."""
    return data_dir / "logs" / f"{edge}.access.log"


def print_sink(name: str, line: str) -> None:
    """The default sink: ``name | line`` on stdout."""
    sys.stdout.write(f"{name:<18} | {line}\n")
    sys.stdout.flush()


def free_ports(host: str, count: int) -> list[int]:
    """``count`` distinct ports free on ``host`` right now (all held open until all are chosen)."""
    socks = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((host, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def resolve_ports(topology: Topology, local: frozenset[str] | None = None) -> Topology:
    """Give every server whose port is 0 a free port on its host (and the control endpoint too).
    ``local``: the servers this machine starts; another host's server must name its port (StackError)."""
    names = [o.name for o in topology.origins if o.port == 0] + [e.name for e in topology.edges if e.port == 0]
    if topology.steering.port == 0:
        names.append("steering")
    remote = [n for n in names if local is not None and n not in local]
    if remote:
        raise StackError(f"{', '.join(remote)} run elsewhere (not in this host's share) and have no port in the "
                         "topology: give every server a port when the topology spans hosts")
    by_host: dict[str, list[str]] = {}
    for n in names:
        by_host.setdefault(topology.host_of(n), []).append(n)
    chosen: dict[str, int] = {}
    for host, group in by_host.items():
        chosen.update(zip(group, free_ports(host, len(group))))
    control = topology.stack.control_port
    control_port = free_ports(topology.stack.host, 1)[0] if control == 0 else None
    return topology.with_ports(chosen, control_port=control_port)


@dataclass
class Child:
    """One supervised server process."""

    name: str
    kind: str  # origin | steering | edge
    argv: list[str]
    env: dict[str, str]
    url: str
    proc: asyncio.subprocess.Process | None = None
    state: str = "stopped"  # starting | running | killed | exited | stopped
    returncode: int | None = None
    tail: collections.deque[str] = field(default_factory=lambda: collections.deque(maxlen=30))
    listening: asyncio.Event = field(default_factory=asyncio.Event)
    expected_exit: bool = False
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    line_count: int = 0  #: lines read from its stdout and stderr

    @property
    def pid(self) -> int | None:
        return None if self.proc is None else self.proc.pid

    def describe(self) -> dict[str, object]:
        return {"name": self.name, "kind": self.kind, "url": self.url, "state": self.state, "pid": self.pid,
                "returncode": self.returncode}


class Stack:
    """A running topology (see the module docstring)."""

    def __init__(self, topology: Topology, *, sink: Sink | None = print_sink, control: bool = False,
                 log_level: str = "info", python: str = sys.executable, local: frozenset[str] | None = None) -> None:
        #: the servers this ``vodstack up`` starts (``Topology.share``); the others run on other hosts
        self.local = frozenset(topology.server_names()) if local is None else local
        self.topology = resolve_ports(topology, self.local)
        self.sink = sink
        self.control = control
        self.log_level = log_level
        self.python = python
        self.children: dict[str, Child] = {}
        self.control_url = ""
        self._control_runner: web.AppRunner | None = None
        self._http: aiohttp.ClientSession | None = None
        self._stopping = False
        self.run_dir = self.topology.stack.data_dir / "run"
        self.origin_admin_key = self.topology.steering.admin_key or secrets.token_urlsafe(18)

    # -- public API -----------------------------------------------------------------------

    async def __aenter__(self) -> Stack:
        try:
            await self.start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def url_of(self, name: str) -> str:
        """Base URL of a server by name (``steering``, an origin's or an edge's name)."""
        return self.topology.url_of(name)

    def status(self) -> list[dict[str, object]]:
        return [c.describe() for c in self.children.values() if c.name in self.local]

    async def start(self) -> None:
        topo = self.topology
        self.run_dir.mkdir(parents=True, exist_ok=True)
        resolved = self.run_dir / "topology.toml"
        resolved.write_text(topo.to_toml())
        for o in topo.origins:
            if o.name not in self.local:
                continue
            if "://" not in o.storage or o.storage.startswith("file://"):
                folder = Path(o.storage.removeprefix("file://"))
                try:
                    folder.mkdir(parents=True, exist_ok=True)
                except OSError as e:
                    raise StackError(f"{o.name}: cannot create storage folder {folder}: {e.strerror}") from None
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2), connector=aiohttp.TCPConnector(
            ssl=client_context(self.topology.stack.tls_ca or None)))
        self._build_children(resolved)
        for group in ("origin", "steering", "edge"):
            await asyncio.gather(*(self._start_child(c) for c in self.children.values()
                                   if c.kind == group and c.name in self.local))
        await self.wait_in_rotation()
        if self.control:
            await self._start_control()

    async def wait_in_rotation(self, names: list[str] | None = None, timeout_s: float | None = None) -> None:
        """Wait until the steering service has every edge (or ``names``) in rotation; StackError
        naming the others and why, after ``timeout_s`` (default ``stack.ready_timeout_s``)."""
        assert self._http is not None
        wanted = set(names if names is not None else (e.name for e in self.topology.edges if e.name in self.local))
        if not wanted:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (timeout_s or self.topology.stack.ready_timeout_s)
        missing: dict[str, str] = {}
        while True:
            try:
                async with self._http.get(f"{self.url_of('steering')}/edges") as resp:
                    edges = (await resp.json())["edges"]
                missing = {e["name"]: e["reason"] for e in edges if e["name"] in wanted and not e["in_rotation"]}
            except (aiohttp.ClientError, asyncio.TimeoutError, ValueError, KeyError) as e:
                missing = {"steering": type(e).__name__}
            if not missing:
                return
            if loop.time() > deadline:
                why = ", ".join(f"{k} ({v})" for k, v in sorted(missing.items()))
                raise StackError(f"not in rotation at the steering service: {why}")
            await asyncio.sleep(0.1)

    async def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Kill a server's process group at once (default SIGKILL: no goodbye, like a crash)."""
        child = self._child(name)
        if child.proc is None or child.proc.returncode is not None:
            return
        child.expected_exit = True
        child.state = "killed"
        self._signal(child, sig)
        await self._reap(child, STOP_GRACE_S)
        self._say(name, f"killed (signal {signal.Signals(sig).name})")

    async def reload(self, name: str, timeout_s: float = 60.0) -> str:
        """SIGHUP to a server's master (``--workers``): its new workers start on the settings and
        certificates as the files hold them now, the old ones finish and exit (serverkit/workers.py).
        Returns the master's line saying how it went; StackError if it has no master or did not say."""
        child = self._child(name)
        if child.kind not in ("origin", "edge") or self.topology.stack.workers == 1:
            raise StackError(f"{name} runs as one process: a reload needs its master ([stack] workers = 0 or "
                             "2 and more); use --restart")
        if child.proc is None or child.proc.returncode is not None:
            raise StackError(f"{name} is not running")
        start = child.line_count
        os.kill(child.proc.pid, signal.SIGHUP)  # the master only: its workers are told by it
        deadline = asyncio.get_running_loop().time() + timeout_s
        while asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
            fresh = list(child.tail)[-min(child.line_count - start, child.tail.maxlen or 0):] \
                if child.line_count > start else []
            for line in fresh:
                if "reload failed" in line:
                    raise StackError(f"{name}: {line.split('error: ', 1)[-1]}")
                if RELOADED in line:
                    return line
        raise StackError(f"{name} did not say it reloaded within {timeout_s:g} s")

    async def restart(self, name: str) -> None:
        """Stop a server if it runs (SIGTERM), start it again with the same flags and port."""
        child = self._child(name)
        if child.proc is not None and child.proc.returncode is None:
            child.expected_exit = True
            self._signal(child, signal.SIGTERM)
            await self._reap(child, STOP_GRACE_S)
        await self._start_child(child)
        if child.kind == "edge":
            await self.wait_in_rotation([name])
        self._say(name, "restarted")

    async def set_origin_delay(self, ms: int, name: str | None = None) -> list[dict[str, object]]:
        """Make every origin (or the one named) wait ``ms`` before each object response; 0 clears.

        One ``{"name", "ok", "delay_ms" | "error"}`` per origin, in topology order; a failed call
        (origin down, refused) is reported there, never raised. StackError for an unknown name."""
        assert self._http is not None
        if name is not None and (name not in self.children or self.children[name].kind != "origin"):
            origins = [c.name for c in self.children.values() if c.kind == "origin"]
            raise StackError(f"no origin named {name!r} (origins: {', '.join(origins)})")
        targets = [c for c in self.children.values() if c.kind == "origin" and name in (None, c.name)]
        results = await asyncio.gather(*(self._post_origin_delay(c, ms) for c in targets))
        for r in results:
            self._say(str(r["name"]), f"injected delay {ms} ms" if r["ok"] else f"delay not set: {r['error']}")
        return list(results)

    async def _post_origin_delay(self, child: Child, ms: int) -> dict[str, object]:
        assert self._http is not None
        try:
            async with self._http.post(f"{child.url}/_/delay", params={"ms": str(ms)},
                                       headers={"X-Admin-Key": self.origin_admin_key}) as resp:
                doc = await resp.json(content_type=None)
                if resp.status == 200 and isinstance(doc, dict):
                    return {"name": child.name, "ok": True, "delay_ms": doc.get("delay_ms")}
                why = doc.get("error") if isinstance(doc, dict) else None
                return {"name": child.name, "ok": False, "error": f"HTTP {resp.status}: {why or ''}".rstrip(": ")}
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as e:
            return {"name": child.name, "ok": False, "error": f"{type(e).__name__}: {e}".rstrip(": ")}

    async def stop(self) -> None:
        """Stop everything: control endpoint, then edges, steering, origins (SIGTERM, then SIGKILL)."""
        if self._stopping:
            return
        self._stopping = True
        if self._control_runner is not None:
            await self._control_runner.cleanup()
            self._control_runner = None
        with contextlib.suppress(FileNotFoundError):
            (self.run_dir / "up.json").unlink()
        for group in ("edge", "steering", "origin"):
            children = [c for c in self.children.values() if c.kind == group]
            for c in children:
                if c.proc is not None and c.proc.returncode is None:
                    c.expected_exit = True
                    self._signal(c, signal.SIGTERM)
            await asyncio.gather(*(self._reap(c, STOP_GRACE_S) for c in children))
            for c in children:
                if c.state != "killed" and c.proc is not None:
                    c.state = "stopped"
        for c in self.children.values():
            for t in c.tasks:
                t.cancel()
            await asyncio.gather(*c.tasks, return_exceptions=True)
            c.tasks.clear()
        if self._http is not None:
            await self._http.close()
            self._http = None

    # -- processes ------------------------------------------------------------------------

    def _child(self, name: str) -> Child:
        if name in self.children and name not in self.local:
            raise StackError(f"{name} runs on another host ({self.topology.host_of(name)}): ask the `vodstack up` "
                             "running there")
        try:
            return self.children[name]
        except KeyError:
            raise StackError(f"no server named {name!r} (known: {', '.join(self.children)})") from None

    def _build_children(self, resolved: Path) -> None:
        (self.topology.stack.data_dir / "logs").mkdir(parents=True, exist_ok=True)
        topo = self.topology
        base = [self.python, "-m", "vodstack", "--log-level", self.log_level]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        for r in topo.regions:
            o = r.origin
            self.children[o.name] = Child(name=o.name, kind="origin", url=o.url, env=env, argv=[
                *base, "origin", "--storage", o.storage, "--host", o.host, "--port", str(o.port),
                "--region", r.name, "--admin-key", self.origin_admin_key, *topo.stack.tls_args(upstream=False),
                *topo.stack.worker_args])
        st = topo.steering
        self.children["steering"] = Child(name="steering", kind="steering", url=topo.steering_url, env=env, argv=[
            *base, "steering", "--topology", str(resolved), "--host", st.host, "--port", str(st.port)])
        keys = topo.keys
        key_args: list[str] = []
        for kid in [keys.active, *sorted(k for k in keys.secrets if k != keys.active)]:
            key_args += ["--token-key", f"{kid}={keys.secrets[kid]}"]
        edge_env = {**env, "VODSTACK_EDGE_HEARTBEAT_INTERVAL_S": str(topo.stack.heartbeat_interval_s)}
        for r in topo.regions:
            for e in r.edges:
                argv = [*base, "edge", "--name", e.name, "--region", r.name, "--origin", r.origin.url,
                        "--cache-dir", str(topo.stack.data_dir / "cache" / e.name),
                        "--ram-mb", str(e.ram_mb), "--disk-mb", str(e.disk_mb), "--host", e.host,
                        "--port", str(e.port), "--steering", topo.steering_url, *key_args,
                        "--access-log", str(access_log_path(topo.stack.data_dir, e.name)),
                        *topo.stack.tls_args(upstream=True), *topo.stack.worker_args]
                for p in e.parents:
                    argv += ["--parent", topo.edge(p).url]
                for p in e.peers:
                    argv += ["--peer", topo.edge(p).url]
                if st.admin_key:
                    argv += ["--admin-key", st.admin_key]
                argv += [*topo.stack.edge_args, *e.args]
                self.children[e.name] = Child(name=e.name, kind="edge", url=e.url, env=edge_env, argv=argv)

    async def _start_child(self, child: Child) -> None:
        for t in child.tasks:
            t.cancel()
        child.tasks.clear()
        child.listening = asyncio.Event()
        child.tail.clear()
        child.expected_exit = False
        child.returncode = None
        child.state = "starting"
        child.proc = await asyncio.create_subprocess_exec(
            *child.argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, env=child.env, start_new_session=True, preexec_fn=die_with_parent,
            limit=1 << 20)
        assert child.proc.stdout is not None and child.proc.stderr is not None
        child.tasks = [asyncio.create_task(self._pump(child, child.proc.stdout)),
                       asyncio.create_task(self._pump(child, child.proc.stderr)),
                       asyncio.create_task(self._watch(child, child.proc))]
        timeout_s = self.topology.stack.ready_timeout_s
        exited = asyncio.create_task(child.proc.wait())
        listening = asyncio.create_task(child.listening.wait())
        try:
            await asyncio.wait({exited, listening}, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
        finally:
            listening.cancel()
            exited.cancel()
        if not child.listening.is_set():
            await asyncio.sleep(0.1)  # let the pumps take the last lines
            last = " / ".join(list(child.tail)[-5:]) or "no output"
            why = (f"exited with code {child.proc.returncode}" if child.proc.returncode is not None
                   else f"did not print '{LISTENING}...' within {timeout_s:g} s")
            raise StackError(f"{child.name} {why}: {last}")
        await self._wait_healthy(child, timeout_s)
        child.state = "running"

    async def _wait_healthy(self, child: Child, timeout_s: float) -> None:
        assert self._http is not None and child.proc is not None
        deadline = asyncio.get_running_loop().time() + timeout_s
        problem = ""
        while asyncio.get_running_loop().time() < deadline and child.proc.returncode is None:
            try:
                async with self._http.get(f"{child.url}/_/health") as resp:
                    if resp.status == 200:
                        return
                    problem = f"HTTP {resp.status}"
            except (aiohttp.ClientError, asyncio.TimeoutError) as e:
                problem = type(e).__name__
            await asyncio.sleep(0.1)
        raise StackError(f"{child.name} is not healthy at {child.url}/_/health: {problem or 'exited'}")

    async def _pump(self, child: Child, stream: asyncio.StreamReader) -> None:
        while True:
            try:
                raw = await stream.readline()
            except ValueError:  # a line longer than the stream's limit: take it in pieces
                raw = await stream.read(1 << 16)
            if not raw:
                return
            line = raw.decode("utf-8", "replace").rstrip("\n")
            child.tail.append(line)
            child.line_count += 1
            if LISTENING in line and f"{LISTENING}{child.url}" in line:
                child.listening.set()
            self._say(child.name, line)

    async def _watch(self, child: Child, proc: asyncio.subprocess.Process) -> None:
        code = await proc.wait()
        child.returncode = code
        if not child.expected_exit and not self._stopping:
            child.state = "exited"
            self._say(child.name, f"exited with code {code}; not restarted")
            log.warning("server exited", extra={"kv": {"name": child.name, "code": code}})

    def _signal(self, child: Child, sig: int) -> None:
        assert child.proc is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.proc.pid, sig)

    async def _reap(self, child: Child, grace_s: float) -> None:
        if child.proc is None:
            return
        try:
            await asyncio.wait_for(child.proc.wait(), grace_s)
        except asyncio.TimeoutError:
            self._say(child.name, f"did not stop within {grace_s:g} s; SIGKILL")
            self._signal(child, signal.SIGKILL)
            await child.proc.wait()
        # whatever else is left in its group goes too
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(child.proc.pid, signal.SIGKILL)
        child.returncode = child.proc.returncode

    def _say(self, name: str, line: str) -> None:
        if self.sink is not None:
            self.sink(name, line)

    # -- control endpoint ------------------------------------------------------------------

    async def _start_control(self) -> None:
        app = web.Application()
        key = self.topology.steering.admin_key

        def refused(request: web.Request) -> web.Response | None:
            if key and request.headers.get("X-Admin-Key") != key:
                return web.json_response({"error": "missing or wrong X-Admin-Key"}, status=403)
            return None

        async def status(request: web.Request) -> web.Response:
            return refused(request) or web.json_response({"servers": self.status()})

        async def act(request: web.Request) -> web.Response:
            bad = refused(request)
            if bad is not None:
                return bad
            name, action = request.match_info["name"], request.match_info["action"]
            if name not in self.children:
                return web.json_response({"error": f"no server named {name!r}",
                                          "known": list(self.children)}, status=404)
            try:
                if action == "reload":
                    await self.reload(name)
                else:
                    await (self.kill(name) if action == "kill" else self.restart(name))
            except StackError as e:
                return web.json_response({"error": str(e)}, status=500)
            return web.json_response(self.children[name].describe())

        async def origin_delay(request: web.Request) -> web.Response:
            bad = refused(request)
            if bad is not None:
                return bad
            try:
                ms = int(request.query.get("ms", ""))
                if not 0 <= ms <= MAX_DELAY_MS:
                    raise ValueError
            except ValueError:
                return web.json_response({"error": f"give ms=N, whole milliseconds in 0..{MAX_DELAY_MS} "
                                                   "(0 clears)"}, status=400)
            try:
                origins = await self.set_origin_delay(ms, request.query.get("name"))
            except StackError as e:
                return web.json_response({"error": str(e)}, status=404)
            ok = all(o["ok"] for o in origins)
            body: dict[str, object] = {"delay_ms": ms, "origins": origins}
            if not ok:
                body["error"] = "; ".join(f"{o['name']}: {o['error']}" for o in origins if not o["ok"])
            return web.json_response(body, status=200 if ok else 502)

        app.router.add_get("/_/control/status", status)
        app.router.add_post("/_/control/origin-delay", origin_delay)
        app.router.add_post("/_/control/{action:kill|restart|reload}/{name}", act)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        host, port = self.topology.stack.host, self.topology.stack.control_port
        try:
            await web.TCPSite(runner, host, port).start()
        except OSError as e:
            await runner.cleanup()
            raise StackError(f"control endpoint cannot listen on {host}:{port}: {e.strerror}") from None
        self._control_runner = runner
        self.control_url = f"http://{host}:{port}"
        (self.run_dir / "up.json").write_text(json.dumps({"pid": os.getpid(), "control_url": self.control_url}))
