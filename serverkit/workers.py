"""Every core: a master process and N worker processes serving one port, as nginx runs its workers.

``vodstack edge --workers N`` (and ``vodstack origin``) starts a **master** (:func:`run_master`): it
binds the listening sockets, starts N workers (the same command line, told by ``VODSTACK_WORKER``
which slot they fill and which inherited descriptors are theirs), prints the one ready line once
every worker listens, and supervises them:

* **Sockets.** One listening socket per worker slot, all on the same port with ``SO_REUSEPORT``
  (the kernel spreads new connections over them), bound by the master and kept open by it for its
  whole life; worker ``i`` inherits socket ``i``. So a worker that dies, or one retiring at a reload,
  never resets the connections waiting in its socket's queue: its successor accepts them.
  (Workers binding their own ``SO_REUSEPORT`` sockets would lose that queue when they close.)
* **A dead worker** is logged and replaced in its slot (after 0.1 s, doubling to 5 s while
  replacements keep dying within 2 s of their start).
* **SIGHUP** (``vodstack up --reload NAME``): a new generation of N workers starts on the same
  sockets and reads the config file and certificates afresh; once all of them listen, the old
  ones get ``SIGUSR2`` and **retire** (:func:`retire_connections`): they stop accepting, answer
  every further request on their connections with ``Connection: close``, close connections that stay
  idle for ``idle_grace_s``, finish what is in flight and exit. If the new generation cannot start
  (a bad config, a bad certificate) the master says so in one line and keeps the old one.
* **SIGTERM/SIGINT**: every worker gets SIGTERM (its own drain: an edge tells the steering
  service it is draining), the master waits up to ``drain_timeout_s`` + 5 s, then SIGKILLs what is
  left, and exits 0.

A worker's stdout goes to the master, which forwards it but for the worker's own "listening on"
line (that is the master's readiness signal); its stderr (the logs) is the master's.
"""
from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import socket
import sys
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator

from aiohttp import hdrs, web

from .listen import ListenError, listen_error_message

__all__ = ["ENV", "RELOADED", "RETIRE_KEY", "MasterSpec", "RetireState", "WorkerRole", "install_retire_hook", "retire_connections",
           "retire_on_signal", "retire_runner", "reuseport_group", "run_master", "stop_or_retire", "worker_argv",
           "worker_role"]

log = logging.getLogger(__name__)

#: ``slot/count/fd,fd,.../generation``: set by the master in each worker's environment.
ENV = "VODSTACK_WORKER"
RETIRE_SIGNAL = signal.SIGUSR2
#: What a master prints on stdout once a reload's new workers all listen (``vodstack up --reload`` waits for it).
RELOADED = "reloaded: generation"
#: A retiring worker closes a connection once it has been idle this long (a busy one after its next answer).
RETIRE_IDLE_GRACE_S = 1.0
#: A retiring worker exits once no connection has been open for this long.
SETTLE_S = 0.3


@dataclass(frozen=True)
class WorkerRole:
    """What a worker process was told by its master."""

    slot: int
    count: int
    fds: tuple[int, ...]  #: inherited listening sockets: the main one, then the plain HTTP one if any
    generation: int

    def sockets(self) -> list[socket.socket]:
        return [socket.socket(fileno=fd) for fd in self.fds]


def worker_role(env: dict[str, str] | None = None) -> WorkerRole | None:
    """The role this process was given by a master, or None (it is no worker)."""
    text = (os.environ if env is None else env).get(ENV, "")
    if not text:
        return None
    slot, count, fds, generation = text.split("/")
    return WorkerRole(int(slot), int(count), tuple(int(f) for f in fds.split(",") if f), int(generation))


def reuseport_group(host: str, port: int, count: int, *, backlog: int) -> list[socket.socket]:
    """``count`` listening sockets on one port with ``SO_REUSEPORT`` (port 0: the first picks it)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    group: list[socket.socket] = []
    try:
        for _ in range(count):
            s = socket.socket(family, socket.SOCK_STREAM)
            group.append(s)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            s.bind((host, port))
            port = s.getsockname()[1]
            s.listen(backlog)
            s.set_inheritable(True)
    except OSError as e:
        for s in group:
            s.close()
        raise ListenError(listen_error_message(host, port, e.errno, e.strerror or str(e))) from None
    return group


@dataclass
class MasterSpec:
    """What a master runs: ``argv`` (the worker command), ``count`` workers, one socket group per
    listener (each ``count`` sockets: see :func:`reuseport_group`), and the ready line."""

    name: str
    argv: list[str]
    count: int
    groups: list[list[socket.socket]]
    announce: Callable[[], None]
    drain_timeout_s: float = 30.0
    ready_timeout_s: float = 60.0
    env: dict[str, str] = field(default_factory=dict)


def die_with_parent() -> None:
    """In a child between fork and exec: SIGTERM when the parent dies (``PR_SET_PDEATHSIG``, Linux)."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


@dataclass(eq=False)
class _Worker:
    slot: int
    generation: int
    proc: asyncio.subprocess.Process
    started_s: float
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    retiring: bool = False
    pump: asyncio.Task[None] | None = None


class _Master:
    def __init__(self, spec: MasterSpec) -> None:
        self.spec = spec
        self.generation = 0
        self.current: dict[int, _Worker] = {}
        self.retired: set[_Worker] = set()
        self.stopping = False
        self.failures: dict[int, int] = {}
        self.wake = asyncio.Event()
        self.reload_asked = False
        self.tasks: set[asyncio.Task[None]] = set()

    async def _spawn(self, slot: int, generation: int) -> _Worker:
        fds = [group[slot].fileno() for group in self.spec.groups]
        env = {**os.environ, **self.spec.env,
               ENV: f"{slot}/{self.spec.count}/{','.join(map(str, fds))}/{generation}"}
        proc = await asyncio.create_subprocess_exec(*self.spec.argv, env=env, pass_fds=fds,
                                                    stdin=asyncio.subprocess.DEVNULL,
                                                    stdout=asyncio.subprocess.PIPE, stderr=None,
                                                    preexec_fn=die_with_parent)
        worker = _Worker(slot, generation, proc, time.monotonic())
        worker.pump = asyncio.get_running_loop().create_task(self._pump(worker))
        log.info("worker started", extra={"kv": {"server": self.spec.name, "slot": slot, "pid": proc.pid,
                                                 "generation": generation}})
        return worker

    async def _pump(self, worker: _Worker) -> None:
        """Forward the worker's stdout; its "listening on" line marks it ready."""
        assert worker.proc.stdout is not None
        async for raw in worker.proc.stdout:
            line = raw.decode(errors="replace")
            if not worker.ready.is_set() and "listening on" in line:
                worker.ready.set()
                continue
            sys.stdout.write(line)
            sys.stdout.flush()
        await worker.proc.wait()
        self.wake.set()

    async def _start_generation(self) -> dict[int, _Worker] | str:
        """A new worker in every slot, all listening; or why not (the new ones are killed)."""
        self.generation += 1
        workers = {slot: await self._spawn(slot, self.generation) for slot in range(self.spec.count)}
        problem = await self._wait_ready(list(workers.values()))
        if problem:
            for w in workers.values():
                with contextlib.suppress(ProcessLookupError):
                    w.proc.kill()
                await w.proc.wait()
            return problem
        return workers

    async def _wait_ready(self, workers: list[_Worker]) -> str:
        deadline = time.monotonic() + self.spec.ready_timeout_s
        for w in workers:
            exited = asyncio.ensure_future(w.proc.wait())
            ready = asyncio.ensure_future(w.ready.wait())
            try:
                await asyncio.wait({exited, ready}, timeout=max(0.0, deadline - time.monotonic()),
                                   return_when=asyncio.FIRST_COMPLETED)
            finally:
                exited.cancel()
                ready.cancel()
            if not w.ready.is_set():
                code = w.proc.returncode
                return (f"worker {w.slot} exited with code {code} before listening" if code is not None
                        else f"worker {w.slot} did not listen within {self.spec.ready_timeout_s:g} s")
        return ""

    def _signal(self, sig: signal.Signals) -> None:
        if sig == signal.SIGHUP:
            self.reload_asked = True
        else:
            self.stopping = True
        self.wake.set()

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.add_signal_handler(sig, self._signal, sig)
        first = await self._start_generation()
        if isinstance(first, str):
            print(f"vodstack: error: {self.spec.name}: {first}", file=sys.stderr, flush=True)
            return 1
        self.current = first
        self.spec.announce()
        try:
            while not self.stopping:
                await self.wake.wait()
                self.wake.clear()
                if self.stopping:
                    break
                if self.reload_asked:
                    self.reload_asked = False
                    await self._reload()
                await self._replace_dead()
        finally:  # a stop, or a bug of the master's: no worker outlives it
            code = await self._stop()
        return code

    async def _reload(self) -> None:
        log.info("reloading", extra={"kv": {"server": self.spec.name, "generation": self.generation + 1}})
        new = await self._start_generation()
        if isinstance(new, str):
            log.error("reload failed, the running workers stay", extra={"kv": {"server": self.spec.name,
                                                                              "why": new}})
            print(f"vodstack: error: {self.spec.name}: reload failed ({new}); the running workers stay",
                  file=sys.stderr, flush=True)
            return
        old, self.current = self.current, new
        for w in old.values():
            w.retiring = True
            self.retired.add(w)
            with contextlib.suppress(ProcessLookupError):
                w.proc.send_signal(RETIRE_SIGNAL)
        log.info("reloaded", extra={"kv": {"server": self.spec.name, "generation": self.generation}})
        print(f"{self.spec.name} {RELOADED} {self.generation} listening", flush=True)

    async def _replace_dead(self) -> None:
        for w in [w for w in self.retired if w.proc.returncode is not None]:
            self.retired.discard(w)
            log.info("worker retired", extra={"kv": {"server": self.spec.name, "slot": w.slot, "pid": w.proc.pid,
                                                     "code": w.proc.returncode}})
        for slot, w in list(self.current.items()):
            if w.proc.returncode is None or self.stopping:
                continue
            quick = time.monotonic() - w.started_s < 2.0
            self.failures[slot] = self.failures.get(slot, 0) + 1 if quick else 0
            delay = min(5.0, 0.1 * 2 ** self.failures[slot])
            log.warning("worker exited; replacing it", extra={"kv": {
                "server": self.spec.name, "slot": slot, "pid": w.proc.pid, "code": w.proc.returncode,
                "after_s": round(delay, 2)}})
            await asyncio.sleep(delay)
            if self.stopping:
                return
            self.current[slot] = await self._spawn(slot, self.generation)
            task = asyncio.get_running_loop().create_task(self._watch_ready(self.current[slot]))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def _watch_ready(self, worker: _Worker) -> None:
        problem = await self._wait_ready([worker])
        if problem:
            log.warning("replacement worker failed", extra={"kv": {"server": self.spec.name, "why": problem}})

    async def _stop(self) -> int:
        workers = [*self.current.values(), *self.retired]
        for w in workers:
            with contextlib.suppress(ProcessLookupError):
                w.proc.send_signal(signal.SIGTERM)
        waits = [asyncio.ensure_future(w.proc.wait()) for w in workers]
        done, pending = await asyncio.wait(waits, timeout=self.spec.drain_timeout_s + 5.0) if waits else (set(), set())
        for w in workers:
            if w.proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    w.proc.kill()
        await asyncio.gather(*(w.proc.wait() for w in workers))
        for w in workers:
            if w.pump is not None:
                await asyncio.gather(w.pump, return_exceptions=True)
        for group in self.spec.groups:
            for s in group:
                s.close()
        log.info("stopped", extra={"kv": {"server": self.spec.name}})
        return 0


def run_master(spec: MasterSpec) -> int:
    """Blocking: run the master (module docstring) until SIGTERM/SIGINT; its exit code."""
    return asyncio.run(_Master(spec).run())


def worker_argv() -> list[str]:
    """The command line that started this process, as a worker's (``python -m vodstack ...``)."""
    return [sys.executable, "-m", "vodstack", *sys.argv[1:]]


# ---------------------------------------------------------------- the worker side of a retire
@dataclass
class RetireState:
    """``app[RETIRE_KEY]``: set when the worker retires; every answer from then on closes its connection."""

    retiring: bool = False


RETIRE_KEY = web.AppKey("retire_state", RetireState)


def install_retire_hook(app: web.Application) -> None:
    """Give ``app`` its retire state and the hook that says ``Connection: close`` once it retires."""
    app[RETIRE_KEY] = RetireState()
    app.on_response_prepare.append(_close_when_retiring)


async def _close_when_retiring(request: web.Request, response: web.StreamResponse) -> None:
    if request.app[RETIRE_KEY].retiring:
        # aiohttp has chosen the Connection header before this hook runs: say it, or the client would
        # send its next request into a connection that closes under it (measured: wrk's read errors)
        response.headers[hdrs.CONNECTION] = "close"
        response.force_close()


@contextlib.contextmanager
def retire_on_signal(retire: asyncio.Event) -> Iterator[asyncio.Event]:
    """SIGUSR2 (the master's "retire") sets ``retire`` while the block runs."""
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(RETIRE_SIGNAL, retire.set)
    try:
        yield retire
    finally:
        loop.remove_signal_handler(RETIRE_SIGNAL)


async def stop_or_retire(stop: asyncio.Event, retire: asyncio.Event) -> bool:
    """Wait for either; True if it is a retire (the master's reload), False for a stop."""
    waits = {asyncio.ensure_future(stop.wait()), asyncio.ensure_future(retire.wait())}
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waits:
            w.cancel()
    return retire.is_set() and not stop.is_set()


async def retire_runner(runner: web.BaseRunner, *, idle_grace_s: float, deadline_s: float) -> None:
    """Retire a worker's runner: answers say ``Connection: close`` (the app's retire hook), the sites
    stop accepting (the master keeps the sockets: queued connections go to the new worker), open
    connections get :func:`retire_connections`; the caller then cleans the runner up."""
    app = getattr(runner, "app", None)
    if app is not None and RETIRE_KEY in app:
        app[RETIRE_KEY].retiring = True
    # Stop accepting first, then let the connections accepted in the last reader callback reach the
    # server, then close the sites. Closing at once loses them: asyncio (3.11) finishes an accept in a
    # task of its own, which fails on a closed server (Server._attach asserts) and leaks the socket, so
    # the client's first request waits unread until this process exits and resets it (measured: a few
    # connections per reload under wrk; `ss` showed them ESTAB with the request in Recv-Q).
    loop = asyncio.get_running_loop()
    for site in list(runner.sites):
        server = getattr(site, "_server", None)
        for sock in getattr(server, "sockets", None) or ():
            with contextlib.suppress(Exception):  # uvloop serves without a selector reader: nothing to remove
                loop.remove_reader(sock.fileno())
    await asyncio.sleep(0.05)
    for site in list(runner.sites):
        await site.stop()
    left = await retire_connections(runner.server, idle_grace_s=idle_grace_s, deadline_s=deadline_s)
    log.info("retired", extra={"kv": {"connections_left": left}})


async def retire_connections(server: web.Server | None, *, idle_grace_s: float, deadline_s: float) -> int:
    """After the worker stopped accepting (and set its retire state): give every open connection until it
    has been idle for ``idle_grace_s`` (a busy one closes after its next answer, which says
    ``Connection: close``), up to ``deadline_s`` in all; returns how many were still open then."""
    if server is None:
        return 0
    loop = asyncio.get_running_loop()
    for handler in list(server.connections):
        # aiohttp's own keep-alive timer closes an idle connection; shorten it to the grace
        handler._keepalive_timeout = idle_grace_s  # noqa: SLF001 - aiohttp has no public setter
        if handler._keepalive_handle is None and not handler._request_in_progress:  # noqa: SLF001
            handler._next_keepalive_close_time = loop.time() + idle_grace_s  # noqa: SLF001
            handler._keepalive_handle = loop.call_at(handler._next_keepalive_close_time,  # noqa: SLF001
                                                     handler._process_keepalive)  # noqa: SLF001
    deadline = loop.time() + deadline_s
    # A connection accepted just before the sites stopped reaches the server (connection_made) an event
    # loop turn or a TLS handshake later: it counts only once it is there, so the worker waits until
    # none has been open for SETTLE_S (measured: without this, about one connection per reload was
    # accepted and then reset by the exit, seen as a read error by wrk)
    quiet_since: float | None = None
    while loop.time() < deadline:
        if server.connections:
            quiet_since = None
        elif quiet_since is None:
            quiet_since = loop.time()
        elif loop.time() - quiet_since >= SETTLE_S:
            break
        await asyncio.sleep(0.02)
    return len(server.connections)
